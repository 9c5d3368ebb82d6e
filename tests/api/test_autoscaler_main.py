"""`python -m autoscaler_provider` start-up against localkube, and the v1 provider driven the way Ray's v1
autoscaler drives it (config prepared and provider built by Ray's own functions)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest
from ray.autoscaler._private.providers import _get_node_provider
from ray.autoscaler._private.util import prepare_config, validate_config

from autoscaler_provider.__main__ import main, v1_config
from autoscaler_provider.provider import RaysideNodeProvider
from autoscaler_provider.scaler import Scaler
from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import install_crds
from rayside.objects import RAYCLUSTERS
from tests.api.test_autoscaler_provider import Recorder, group, make_cluster, make_pod, spec_of, writes

pytestmark = pytest.mark.api


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running() as server:
        install_crds(server.kube_client())
        yield server


def run_main(lk: LocalKube, name: str) -> subprocess.CompletedProcess[str]:
    argv = ["--cluster-name", name, "--cluster-namespace", "default", "--kubeconfig", str(lk.kubeconfig)]
    return subprocess.run(
        [sys.executable, "-m", "autoscaler_provider", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_cluster_and_bad_config_are_one_line_errors(lk: LocalKube) -> None:
    missing = run_main(lk, "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "autoscaler_provider: error: RayCluster default/nope not found"
    ]
    kc = lk.kube_client()
    no_cpu = group("cpu", 0)
    no_cpu["template"]["spec"]["containers"] = [{"name": "ray", "image": "ray"}]
    make_cluster(kc, no_cpu)
    bad = run_main(lk, "rc")
    assert bad.returncode == 1
    [line] = bad.stderr.strip().splitlines()
    assert "RayCluster default/rc cannot be autoscaled: group cpu: no CPU count" in line


def test_start_hands_the_version_to_the_monitor(lk: LocalKube, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSCALER_MAX_CONCURRENT_LAUNCHES", "10")  # main() only sets a default
    kc = lk.kube_client()
    make_cluster(kc, group("cpu", 0))
    kc.patch(RAYCLUSTERS.path("default", "rc"), {"spec": {"autoscalerOptions": {"version": "v1"}}}, "merge")
    seen: list[tuple[str, str]] = []

    def run(scaler: Scaler, args: argparse.Namespace, version: str) -> None:
        seen.append((scaler.name, version))

    argv = ["--cluster-name", "rc", "--cluster-namespace", "default", "--kubeconfig", str(lk.kubeconfig)]
    assert main(argv, run=run) == 0
    assert seen == [("rc", "v1")]


def test_v1_provider_through_rays_own_loading(lk: LocalKube) -> None:
    rec = Recorder(lk)
    make_cluster(rec.client, group("cpu", 2), group("tpu", 1, hosts=2))
    for name in ("w1", "w2"):
        make_pod(rec.client, name, "cpu")
    for name in ("t0", "t1"):
        make_pod(rec.client, name, "tpu", slice_name="tpu-a")
    scaler = Scaler(rec.client, "rc", "default")
    config = prepare_config(v1_config(scaler, str(lk.kubeconfig))())
    validate_config(config)
    provider = _get_node_provider(config["provider"], "rc", use_cache=False)
    assert isinstance(provider, RaysideNodeProvider)
    provider.scaler = scaler  # share the recording client (Ray built the provider with its own)

    # One v1 update: list, gate, launch 3 cpu pods, terminate one host of the slice.
    assert sorted(provider.non_terminated_nodes({})) == ["rc-head-x", "t0", "t1", "w1", "w2"]
    assert provider.node_tags("t0")["ray-user-node-type"] == "tpu"
    assert provider.safe_to_scale()
    provider.create_node({}, {"ray-user-node-type": "cpu", "ray-node-kind": "worker"}, 3)
    provider.terminate_node("t1")
    provider.post_process()
    assert writes(rec.patches[-1]) == [
        {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 5},
        {"op": "replace", "path": "/spec/workerGroupSpecs/1/replicas", "value": 0},
        {
            "op": "add",
            "path": "/spec/workerGroupSpecs/1/scaleStrategy",
            "value": {"workersToDelete": ["t0", "t1"]},
        },
    ]
    # Next update: the listed hosts are gone for the autoscaler, and scaling waits for the operator.
    assert sorted(provider.non_terminated_nodes({})) == ["rc-head-x", "w1", "w2"]
    assert not provider.safe_to_scale()
    assert spec_of(rec.client)["workerGroupSpecs"][0]["replicas"] == 5
