"""The rayside operator runs rayside's autoscaler provider in the head pod, on localkube's process kubelet,
with a real token-auth Ray cluster (autoscaler v2).

One shared cluster: the head has no CPU and the only worker group is `cpu` (min 0, max 2, 1 CPU each, idle
timeout 15 s). A job whose task needs one CPU and runs 40 s drives `cpu` from 0 to 1 replica; the new pod
joins as a Ray node and the task finishes; while it runs (longer than the idle timeout) the busy worker is
never listed for deletion; once idle the autoscaler removes it through `workersToDelete` and replicas 0.
Then two groups are added to the running cluster: a task needing the custom resource `custom_thing` scales
exactly `custom`, a task whose label selector names `ray.io/node-group: picked` scales exactly `picked`.

The `autoscaler` container authenticates as a real pod does: in-cluster config from the service account
mount the kubelet provides (localkube serves https with token checks, so nothing else would work).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import _client, install_crds
from ray_operator.raycluster.assembly import build_operator
from ray_operator.settings import load_settings
from tests.e2e.test_operator_ray import RAY_VERSION, _dump, container
from tests.support import kube

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root for pod netns")]
NS = "default"
REPO = Path(__file__).resolve().parents[2]
IDLE_S = 15
TASK_S = 40
JOB = f"""python -c '
import time, ray
ray.init()
@ray.remote(num_cpus=1)
def work():
    time.sleep({TASK_S})
    return "task-done"
print(ray.get(work.remote()))
'"""
TWO_TASKS = """python -c '
import ray
ray.init()
@ray.remote(num_cpus=1, resources={"custom_thing": 1})
def custom():
    return "custom-ran"
@ray.remote(num_cpus=1, label_selector={"ray.io/node-group": "picked"})
def picked():
    return "picked-ran"
print(" ".join(ray.get([custom.remote(), picked.remote()])))
'"""


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    return kube.wait_for(
        check, timeout, what, interval=1.0, ignore=(requests.RequestException, ApiException, KeyError)
    )


def raycluster() -> dict[str, Any]:
    params = {"object-store-memory": "80000000"}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "rc", "namespace": NS},
        "spec": {
            "rayVersion": RAY_VERSION,
            "authOptions": {"mode": "token"},
            "enableInTreeAutoscaling": True,
            "autoscalerOptions": {
                "version": "v2",
                "idleTimeoutSeconds": IDLE_S,
                # the process kubelet runs the sidecar from this checkout
                "env": [{"name": "PYTHONPATH", "value": str(REPO)}],
                "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
            },
            "headGroupSpec": {
                "rayStartParams": {**params, "num-cpus": "0"},
                "template": {"spec": {"containers": [container("ray-head")]}},
            },
            "workerGroupSpecs": [
                {
                    "groupName": "cpu",
                    "replicas": 0,
                    "minReplicas": 0,
                    "maxReplicas": 2,
                    "rayStartParams": {**params, "num-cpus": "1"},
                    "template": {"spec": {"containers": [container("ray-worker")]}},
                }
            ],
        },
    }


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running(kubelet="process", https=True, token="e2e-admin-token") as server:
        install_crds(server.kube_client())
        yield server


class History:
    """Every (time, replicas by group, workersToDelete by group) seen on a watch of the RayCluster."""

    def __init__(self, crs: client.CustomObjectsApi) -> None:
        self.crs = crs
        self.seen: list[tuple[float, dict[str, int], dict[str, list[str]]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                lister = self.crs.list_namespaced_custom_object
                stream = watch.Watch().stream(lister, "ray.io", "v1", NS, "rayclusters", timeout_seconds=5)
                for event in stream:
                    groups = event["object"]["spec"]["workerGroupSpecs"]
                    replicas = {g["groupName"]: int(g.get("replicas") or 0) for g in groups}
                    listed = {
                        g["groupName"]: list((g.get("scaleStrategy") or {}).get("workersToDelete") or [])
                        for g in groups
                    }
                    self.seen.append((time.monotonic(), replicas, listed))
            except (ApiException, requests.RequestException, OSError, KeyError):
                time.sleep(0.5)

    def listed(self, group: str) -> set[str]:
        return {name for _, _, listed in self.seen for name in listed.get(group, [])}

    def max_replicas(self, group: str, since: float = 0.0) -> int:
        return max((r.get(group, 0) for t, r, _ in self.seen if t >= since), default=0)


def _job(ip: str, token: str, method: str, path: str, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    r = requests.request(method, f"http://{ip}:8265/api/jobs/{path}", headers=headers, timeout=20, **kw)
    r.raise_for_status()
    return r.json()


def _run_job(ip: str, token: str, job_id: str, entrypoint: str) -> str:
    """Submit, wait until it ends, return its logs (asserting it succeeded)."""
    _job(ip, token, "POST", "", json={"entrypoint": entrypoint, "submission_id": job_id})
    status = wait_for(lambda: _finished(_job(ip, token, "GET", job_id)), 300, f"job {job_id} finished")
    logs = str(_job(ip, token, "GET", f"{job_id}/logs")["logs"])
    assert status == "SUCCEEDED", logs
    return logs


def test_autoscaler_scales_up_on_demand_and_removes_the_idle_worker(lk: LocalKube) -> None:
    settings = load_settings(["--kubeconfig", str(lk.kubeconfig), "--reconcile-concurrency", "2"], environ={})
    operator = build_operator(_client(str(lk.kubeconfig), None), settings)
    stop = threading.Event()
    thread = threading.Thread(target=operator.run, args=(stop,), daemon=True)
    thread.start()
    core = client.CoreV1Api(lk.api_client())
    crs = client.CustomObjectsApi(lk.api_client())
    history = History(crs)
    try:
        crs.create_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", raycluster())
        history.thread.start()

        def head_pod() -> Any:
            heads = core.list_namespaced_pod(NS, label_selector="ray.io/node-type=head").items
            return next((p for p in heads if p.status.pod_ip), None)

        head = wait_for(head_pod, 90, "head pod IP")
        assert [c.name for c in head.spec.containers] == ["ray-head", "autoscaler"]
        ip, token = head.status.pod_ip, _token(core)
        try:
            wait_for(lambda: _job(ip, token, "GET", "") is not None, 240, "the head's job API")
            _cpu_demand_then_idle(core, history, ip, token)
            _custom_resource_and_label_selector(core, crs, history, ip, token)
        except AssertionError:
            _dump(core)
            raise
        sidecar = core.read_namespaced_pod_log(head.metadata.name, NS, container="autoscaler")
        assert token not in sidecar and lk.pod_token not in sidecar
    finally:
        history.stop.set()
        stop.set()
        thread.join(60)
        for pod in core.list_namespaced_pod(NS).items:
            core.delete_namespaced_pod(pod.metadata.name, NS, grace_period_seconds=5)
        wait_for(lambda: not core.list_namespaced_pod(NS).items, 90, "pods gone")


def _cpu_demand_then_idle(core: client.CoreV1Api, history: History, ip: str, token: str) -> None:
    """A 1-CPU task scales `cpu` 0 -> 1; the busy worker stays; once idle it leaves via workersToDelete."""
    start = time.monotonic()
    _job(ip, token, "POST", "", json={"entrypoint": JOB, "submission_id": "demand"})
    worker = wait_for(lambda: _worker_pods(core, "cpu"), 180, "a worker pod")[0]
    scaled_up = time.monotonic() - start
    status = wait_for(lambda: _finished(_job(ip, token, "GET", "demand")), 300, "job finished")
    finished = time.monotonic()
    logs = _job(ip, token, "GET", "demand/logs")["logs"]
    assert status == "SUCCEEDED" and "task-done" in logs, logs
    wait_for(lambda: not _worker_pods(core, "cpu"), IDLE_S + 120, "the idle worker removed")
    removed = time.monotonic()
    # replicas 0 -> 1 (max 2 never needed); the worker went through workersToDelete, only once idle
    assert history.max_replicas("cpu") == 1
    assert history.listed("cpu") == {worker}, history.seen
    first_listed = min(t for t, _, listed in history.seen if worker in listed.get("cpu", []))
    assert first_listed > finished - 5  # never listed while its task ran (longer than the idle timeout)
    assert history.seen[-1][1]["cpu"] == 0
    print(
        f"scale-up to a worker pod {scaled_up:.1f} s; job done {finished - start:.1f} s; "
        f"idle worker listed {first_listed - finished:.1f} s after the job ended, gone after "
        f"{removed - finished:.1f} s"
    )


def _custom_resource_and_label_selector(
    core: client.CoreV1Api, crs: client.CustomObjectsApi, history: History, ip: str, token: str
) -> None:
    """Two groups added to the running cluster: a task needing `custom_thing` scales exactly `custom`, a
    task selecting `ray.io/node-group: picked` scales exactly `picked`; `cpu` (which could run both by CPU
    alone) stays at 0."""
    rc = crs.get_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", "rc")
    groups = rc["spec"]["workerGroupSpecs"]
    memory = {"object-store-memory": "80000000"}
    for name, extra in (
        ("custom", {"rayStartParams": memory, "resources": {"CPU": "1", "custom_thing": "1"}}),
        ("picked", {"rayStartParams": {**memory, "num-cpus": "1"}}),
    ):
        template = {"spec": {"containers": [container("ray-worker")]}}
        group = {"groupName": name, "replicas": 0, "minReplicas": 0, "maxReplicas": 1}
        groups.append({**group, "template": template, **extra})
    crs.patch_namespaced_custom_object(
        "ray.io", "v1", NS, "rayclusters", "rc", {"spec": {"workerGroupSpecs": groups}}
    )
    since = time.monotonic()
    logs = _run_job(ip, token, "groups", TWO_TASKS)
    assert "custom-ran picked-ran" in logs, logs
    assert history.max_replicas("custom", since) == 1 and history.max_replicas("picked", since) == 1
    assert history.max_replicas("cpu", since) == 0, history.seen
    print(f"custom-resource and label-selector tasks done {time.monotonic() - since:.1f} s after the groups")


def _token(core: client.CoreV1Api) -> str:
    import base64

    secret = wait_for(lambda: core.read_namespaced_secret("rc", NS), 60, "auth secret")
    return base64.b64decode(secret.data["auth_token"]).decode()


def _worker_pods(core: client.CoreV1Api, group: str) -> list[str]:
    pods = core.list_namespaced_pod(NS, label_selector=f"ray.io/group={group}").items
    return [p.metadata.name for p in pods if not p.metadata.deletion_timestamp]


def _finished(job: Any) -> str | None:
    return str(job["status"]) if job["status"] in ("SUCCEEDED", "FAILED", "STOPPED") else None
