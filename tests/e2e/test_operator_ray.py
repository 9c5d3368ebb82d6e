"""The operator runs a real Ray cluster on localkube's process kubelet: token auth, top-level group
`resources` and `labels`, head + 2 workers.

The operator (in-process thread) builds every Pod itself; the process kubelet runs them as local processes
in per-pod network namespaces, so the Ray head binds its default ports without disturbing other Ray
processes on the machine. Deleting the Pods at the end stops every process they started.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import _client, get_token_main, install_crds
from ray_operator.raycluster.assembly import build_operator
from ray_operator.settings import load_settings
from tests.support import kube

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root for pod netns")]
NS = "default"
RAY_VERSION = "2.60.0"


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll every second; request errors (and a missing key in a half-written answer) mean "not yet"."""
    return kube.wait_for(
        check, timeout, what, interval=1.0, ignore=(requests.RequestException, ApiException, KeyError)
    )


def container(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": f"rayproject/ray:{RAY_VERSION}",
        "env": [{"name": "RAY_USAGE_STATS_ENABLED", "value": "0"}],
        "resources": {"limits": {"memory": "1Gi"}, "requests": {"memory": "256Mi"}},
    }


def raycluster() -> dict[str, Any]:
    params = {"object-store-memory": "80000000"}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "rc", "namespace": NS},
        "spec": {
            "rayVersion": RAY_VERSION,
            "authOptions": {"mode": "token"},
            "headGroupSpec": {
                "rayStartParams": {**params, "num-cpus": "0"},
                "template": {"spec": {"containers": [container("ray-head")]}},
                "labels": {"role": "head"},
            },
            "workerGroupSpecs": [
                {
                    "groupName": "wg",
                    "replicas": 2,
                    "minReplicas": 0,
                    "maxReplicas": 3,
                    "rayStartParams": params,
                    "resources": {"CPU": "1", "custom_thing": "2"},
                    "labels": {"zone": "zone-a", "tier": "x"},
                    "template": {"spec": {"containers": [container("ray-worker")]}},
                }
            ],
        },
    }


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running(kubelet="process", kubelet_options={"restart_backoff": 1.0}) as server:
        install_crds(server.kube_client())
        yield server


def _nodes(ip: str, token: str) -> list[dict[str, Any]]:
    """ALIVE nodes from the state API (each has `resources_total` and `labels`)."""
    r = requests.get(
        f"http://{ip}:8265/api/v0/nodes?detail=true", headers={"Authorization": f"Bearer {token}"}, timeout=20
    )
    r.raise_for_status()
    return [n for n in r.json()["data"]["result"]["result"] if n.get("state") == "ALIVE"]


def _log_tail(core: client.CoreV1Api, pod: str, container: str, *, previous: bool = False) -> str:
    try:
        return str(core.read_namespaced_pod_log(pod, NS, container=container, previous=previous))[-3000:]
    except ApiException as exc:
        return f"(no log: {exc.status})"


def _dump(core: client.CoreV1Api) -> None:
    """Pod states, why each restarted container last ended and its previous and current logs, printed when
    the cluster does not come up (shown by pytest)."""
    for pod in core.list_namespaced_pod(NS).items:
        name = pod.metadata.name
        print(name, pod.status.phase, pod.status.pod_ip)
        for cs in pod.status.container_statuses or []:
            print(f"  {cs.name}: ready={cs.ready} restarts={cs.restart_count} state={cs.state.to_dict()}")
            if cs.restart_count:
                print(f"  last state: {cs.last_state.to_dict()}")
                print(f"  previous log:\n{_log_tail(core, name, cs.name, previous=True)}")
            print(f"  log:\n{_log_tail(core, name, cs.name)}")


def test_raycluster_with_token_auth_resources_and_labels(lk: LocalKube) -> None:
    settings = load_settings(["--kubeconfig", str(lk.kubeconfig), "--reconcile-concurrency", "2"], environ={})
    operator = build_operator(_client(str(lk.kubeconfig), None), settings)
    stop = threading.Event()
    thread = threading.Thread(target=operator.run, args=(stop,), daemon=True)
    thread.start()
    core = client.CoreV1Api(lk.api_client())
    crs = client.CustomObjectsApi(lk.api_client())
    try:
        crs.create_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", raycluster())
        out = io.StringIO()
        token_argv = ["rc", "-n", NS, "--kubeconfig", str(lk.kubeconfig)]
        wait_for(lambda: get_token_main(token_argv, out=out) == 0, 60, "token")
        token = out.getvalue().strip().splitlines()[-1]

        def head_pod() -> Any:
            heads = core.list_namespaced_pod(NS, label_selector="ray.io/node-type=head").items
            return next((p for p in heads if p.status.pod_ip), None)

        head = wait_for(head_pod, 90, "head pod IP")
        ip = head.status.pod_ip
        try:
            nodes = wait_for(lambda: len(n := _nodes(ip, token)) == 3 and n, 300, "3 alive Ray nodes")
        except AssertionError:
            _dump(core)
            raise
        workers = [n for n in nodes if not n.get("is_head_node")]
        assert len(workers) == 2, nodes
        for node in workers:
            resources, labels = node.get("resources_total") or {}, node.get("labels") or {}
            assert resources.get("CPU") == 1 and resources.get("custom_thing") == 2, resources
            assert labels.get("zone") == "zone-a" and labels.get("tier") == "x", labels
        head_node = next(n for n in nodes if n.get("is_head_node"))
        assert (head_node.get("labels") or {}).get("role") == "head"
        assert not head_node["resources_total"].get("CPU")  # num-cpus=0 on the head
        assert requests.get(f"http://{ip}:8265/nodes?view=summary", timeout=10).status_code == 401
        assert requests.get(f"http://{ip}:8265/api/version", timeout=10).status_code == 401
        ok = requests.get(
            f"http://{ip}:8265/api/version", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert ok.status_code == 200

        def ready_status() -> Any:
            status = (
                crs.get_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", "rc").get("status") or {}
            )
            return status.get("state") == "ready" and status

        status = wait_for(ready_status, 120, "status ready")
        assert status["readyWorkerReplicas"] == 2 and token not in str(status)
    finally:
        stop.set()
        thread.join(60)
        for pod in core.list_namespaced_pod(NS).items:
            core.delete_namespaced_pod(pod.metadata.name, NS, grace_period_seconds=5)
        wait_for(lambda: not core.list_namespaced_pod(NS).items, 90, "pods gone")
