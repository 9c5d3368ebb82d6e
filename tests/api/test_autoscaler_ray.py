"""`python -m autoscaler_provider` with a real Ray head (autoscaler v2) against localkube: Ray's own v2
autoscaler decides, this package's provider writes the RayCluster.

The head runs as KubeRay runs it (`--no-monitor`, RAY_CLOUD_INSTANCE_ID = the head pod's name), and demand
is a `request_resources` bundle whose label selector names `ray.io/node-group`: with Ray's built-in
derivation that selector is infeasible; here it must scale exactly the group it names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import install_crds
from tests.api.test_autoscaler_provider import group, make_cluster, spec_of
from tests.support.kube import wait_for
from tests.support.rayhead import RayHead, new_head

pytestmark = [pytest.mark.api, pytest.mark.e2e]


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running() as server:
        install_crds(server.kube_client())
        yield server


@pytest.fixture
def head(monkeypatch: pytest.MonkeyPatch) -> Iterator[RayHead]:
    """A token-auth Ray head started as KubeRay starts a v2 head: no monitor, pod name as instance id."""
    started = new_head()
    popen = subprocess.Popen

    def head_popen(cmd: list[str], env: dict[str, str] | None = None, **kw: Any) -> Any:
        env = {**(env or {}), "RAY_enable_autoscaler_v2": "1"}
        env.update(RAY_CLOUD_INSTANCE_ID="rc-head-x", RAY_NODE_TYPE_NAME="headgroup")
        return popen([*cmd, "--no-monitor"], env=env, **kw)

    with monkeypatch.context() as patched:
        patched.setattr(subprocess, "Popen", head_popen)
        started.start(num_cpus=0)
    try:
        yield started
    finally:
        started.stop()


def test_v2_scales_the_group_a_node_group_selector_names(
    lk: LocalKube, head: RayHead, tmp_path: Path
) -> None:
    kc = lk.kube_client()
    same = {"CPU": "1", "Custom1": "1"}
    make_cluster(kc, group("plain", 0, hi=3, resources=same), group("picked", 0, hi=3, resources=same))
    env = head.client_env()
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=head.token, PYTHONPATH=os.getcwd())
    address = f"127.0.0.1:{head.gcs_port}"
    argv = ["--cluster-name", "rc", "--cluster-namespace", "default", "--kubeconfig", str(lk.kubeconfig)]
    log = (tmp_path / "monitor.log").open("w")
    monitor = subprocess.Popen(
        [sys.executable, "-m", "autoscaler_provider", *argv, "--gcs-address", address],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        demand = (
            "import ray\n"
            f"ray.init(address={address!r})\n"
            "from ray.autoscaler.sdk import request_resources\n"
            "request_resources(bundles=[{'Custom1': 1}] * 2,"
            " bundle_label_selectors=[{'ray.io/node-group': 'picked'}] * 2)\n"
        )
        subprocess.run([sys.executable, "-c", demand], env=env, check=True, capture_output=True, timeout=120)

        def scaled() -> bool:
            assert monitor.poll() is None, (tmp_path / "monitor.log").read_text()[-3000:]
            return bool(spec_of(kc)["workerGroupSpecs"][1].get("replicas"))

        wait_for(scaled, timeout=120, what="the autoscaler to patch group 'picked'", interval=0.5)
        groups = spec_of(kc)["workerGroupSpecs"]
        assert (groups[0]["replicas"], groups[1]["replicas"]) == (0, 2)
    finally:
        monitor.terminate()
        monitor.wait(30)
        log.close()
