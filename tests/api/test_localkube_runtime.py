"""Persistence, fault injection, the CLI, and kubectl paths that need a kubelet (logs, wait, describe,
delete --wait)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from tests.api.conftest import WIDGET_CRD, Kubectl, wait_for, widget

pytestmark = pytest.mark.api
REPO = Path(__file__).resolve().parents[2]


def test_persistence_across_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running(data_dir=data) as lk:
        api = lk.api_client()
        core = client.CoreV1Api(api)
        made = core.create_namespaced_config_map(
            "default", {"metadata": {"name": "keep"}, "data": {"a": "1"}}
        )
        client.ApiextensionsV1Api(api).create_custom_resource_definition(WIDGET_CRD)
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", widget("w", color="red")
        )
        last_rv = int(core.list_namespaced_config_map("default").metadata.resource_version)
    with running(data_dir=data) as lk:
        api = lk.api_client()
        core = client.CoreV1Api(api)
        got = core.read_namespaced_config_map("keep", "default")
        assert got.data == {"a": "1"} and got.metadata.uid == made.metadata.uid
        assert got.metadata.resource_version == made.metadata.resource_version
        w = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", "w"
        )
        assert w["spec"]["color"] == "red"
        after = core.create_namespaced_config_map("default", {"metadata": {"name": "new"}})
        assert int(after.metadata.resource_version) > last_rv


def test_fault_injection(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    lk.faults.set(error_rates={"list": {500: 1.0}})
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("default")
    assert err.value.status == 500
    core.create_namespaced_config_map("default", {"metadata": {"name": "ok"}})  # other verbs unaffected
    # the admin path changes faults at runtime: 429 with Retry-After on every create
    resp = requests.put(
        f"{lk.url}/localkube/faults", json={"error_rates": {"create": {"429": 1.0}}}, timeout=10
    )
    assert resp.status_code == 200 and resp.json()["error_rates"] == {"create": {"429": 1.0}}
    answer = requests.post(
        f"{lk.url}/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "x"}}, timeout=10
    )
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    bad = requests.put(f"{lk.url}/localkube/faults", json={"error_rates": {"fly": {"500": 1}}}, timeout=10)
    assert bad.status_code == 400 and "fly" in bad.json()["message"]
    lk.faults.clear()
    assert len(core.list_namespaced_config_map("default").items) == 1


def test_fault_injection_is_deterministic_with_a_seed(lk: LocalKube) -> None:
    url = f"{lk.url}/api/v1/namespaces/default/configmaps"

    def run() -> list[int]:
        lk.faults.set(error_rates={"get": {500: 0.5}}, seed=7)
        return [requests.get(f"{url}/none", timeout=10).status_code for _ in range(12)]

    first = run()
    assert set(first) == {404, 500}
    assert run() == first


def test_watch_drop(lk: LocalKube) -> None:
    lk.faults.set(watch_drop_after=0.5)
    resp = requests.get(
        f"{lk.url}/api/v1/namespaces/default/configmaps",
        params={"watch": "true", "resourceVersion": "0", "timeoutSeconds": "60"},
        timeout=30,
    )
    assert resp.status_code == 200 and resp.text == ""


def test_cli_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    # run from the checkout (`python -m` puts the working directory first on sys.path once started)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    token = tmp_path / "token"
    token.write_text("cli-token\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localkube",
            "serve",
            "--port",
            "0",
            "--state-dir",
            str(tmp_path / "state"),
            "--token-file",
            str(token),
            "--no-controllers",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("localkube listening on https://127.0.0.1:"), first + (
            proc.stderr.read() if proc.stderr else ""
        )
        kubeconfig = proc.stdout.readline().split(": ", 1)[1].strip()
        core = client.CoreV1Api(LocalKubeConfig(kubeconfig).client())
        assert "default" in {n.metadata.name for n in core.list_namespace().items}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    bad = subprocess.run(
        [sys.executable, "-m", "localkube", "--token-file", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "--token-file" in bad.stderr and "Traceback" not in bad.stderr


class LocalKubeConfig:
    def __init__(self, path: str) -> None:
        self.path = path

    def client(self) -> Any:
        from kubernetes import config

        return config.new_client_from_config(config_file=self.path)


@pytest.fixture
def lk_kubelet() -> Iterator[LocalKube]:
    opts = {"ready_delay": 0.2, "job_run_seconds": 0.3, "simulated_log_text": "hello from localkube\n"}
    with running(https=True, token="kubelet-token", kubelet="simulated", kubelet_options=opts) as server:
        yield server


def test_kubectl_with_kubelet(lk_kubelet: LocalKube, tmp_path: Path) -> None:
    kubectl = Kubectl(lk_kubelet.kubeconfig, tmp_path / "home")
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
    }
    kubectl.run("apply", "-f", "-", stdin=json.dumps(manifest))
    kubectl.run("wait", "--for=condition=Ready", "pod/p", "--timeout=60s")
    logs = kubectl.run("logs", "p").stdout
    assert "hello from localkube" in logs
    tail = kubectl.run("logs", "p", "--tail=1").stdout
    assert tail.strip() == "hello from localkube"
    follower = kubectl.popen("logs", "-f", "p")
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline().strip() == "hello from localkube"
    finally:
        follower.terminate()
        follower.wait(timeout=10)
    described = kubectl.run("describe", "pod", "p").stdout
    assert "Name:" in described and "p" in described
    assert "Running" in kubectl.run("get", "pod", "p").stdout
    kubectl.run("delete", "pod", "p", "--wait=true", "--timeout=60s")
    with pytest.raises(AssertionError):
        kubectl.run("get", "pod", "p")


def test_events_expire_after_ttl() -> None:
    with running(event_ttl=1.0) as lk:
        core = client.CoreV1Api(lk.api_client())
        core.create_namespaced_event(
            "default",
            {
                "metadata": {"name": "e"},
                "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"},
                "reason": "Test",
                "message": "m",
            },
        )
        core.create_namespaced_config_map("default", {"metadata": {"name": "stays"}})
        wait_for(lambda: not core.list_namespaced_event("default").items, what="event expiry")
        assert core.read_namespaced_config_map("stays", "default").metadata.name == "stays"
