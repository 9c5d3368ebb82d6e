"""RayJobs on a real, token-authenticated Ray cluster run by localkube's process kubelet.

One Ray head serves every job of the test (the machine is small): the first RayJob (K8sJobMode) creates
the cluster and keeps it (`shutdownAfterJobFinishes: false`); later RayJobs select it with
`clusterSelector`. The submitter Job runs the rayside submitter (`python3.11 -m submitter`, from the
kubelet's PATH since the process kubelet ignores images) against the head Service; the operator (in-process)
polls the dashboard with the cluster's token, its address resolved to the head Pod's IP (the test host has
no cluster DNS; Pods resolve the Service name through the kubelet's /etc/hosts).
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import _client, install_crds
from ray_operator.raycluster.assembly import build_operator
from ray_operator.rayjob.dashboard import DashboardClient
from ray_operator.settings import load_settings
from tests.support import kube

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root for pod netns")]
NS = "default"
RAY_VERSION = "2.60.0"
MARKER = "RAYSIDE-RAYJOB-MARKER-7f3a"


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    return kube.wait_for(check, timeout, what, interval=1.0, ignore=(requests.RequestException, ApiException))


def cluster_spec() -> dict[str, Any]:
    container = {
        "name": "ray-head",
        "image": f"rayproject/ray:{RAY_VERSION}",
        "env": [{"name": "RAY_USAGE_STATS_ENABLED", "value": "0"}],
        "resources": {"limits": {"memory": "2Gi"}, "requests": {"memory": "256Mi"}},
    }
    return {
        "rayVersion": RAY_VERSION,
        "authOptions": {"mode": "token"},
        "headGroupSpec": {
            "rayStartParams": {"object-store-memory": "80000000", "num-cpus": "1"},
            "template": {"spec": {"containers": [container]}},
        },
        "workerGroupSpecs": [],
    }


def rayjob(name: str, entrypoint: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"entrypoint": entrypoint, **spec},
    }


class HeadResolver:
    """`<svc>.<ns>.svc.<domain>:<port>` → `http://<IP of a Pod the Service selects>:<port>`."""

    def __init__(self, core: client.CoreV1Api) -> None:
        self.core = core

    def __call__(self, address: str) -> str:
        host, _, port = address.rpartition(":")
        service, namespace = host.split(".")[:2]
        selector = self.core.read_namespaced_service(service, namespace).spec.selector or {}
        labels = ",".join(f"{k}={v}" for k, v in selector.items())
        pods = [
            p
            for p in self.core.list_namespaced_pod(namespace, label_selector=labels).items
            if p.status.pod_ip
        ]
        return f"http://{pods[0].status.pod_ip}:{port}" if pods else f"http://{host}:{port}"


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running(kubelet="process", kubelet_options={"restart_backoff": 1.0}, controllers=True) as server:
        install_crds(server.kube_client())
        yield server


class Env:
    def __init__(self, lk: LocalKube) -> None:
        api = lk.api_client()
        self.lk = lk
        self.core = client.CoreV1Api(api)
        self.crs = client.CustomObjectsApi(api)

    def create(self, body: dict[str, Any]) -> None:
        self.crs.create_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", body)

    def status(self, name: str) -> dict[str, Any]:
        obj = self.crs.get_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", name)
        return dict(obj.get("status") or {})

    def finished(self, name: str, timeout: float = 300) -> dict[str, Any]:
        def done() -> Any:
            status = self.status(name)
            return status.get("jobDeploymentStatus") in ("Complete", "Failed") and status

        try:
            result: dict[str, Any] = wait_for(done, timeout, f"RayJob {name} finished")
        except AssertionError:
            self.dump(name)
            raise
        return result

    def kubectl_logs(self, target: str) -> str:
        out = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.lk.kubeconfig), "logs", "-n", NS, target],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return out.stdout + out.stderr

    def sidecar_logs(self) -> str:
        """The `ray-job-submitter` container log of the (first) head Pod, or ""."""
        heads = self.core.list_namespaced_pod(NS, label_selector="ray.io/node-type=head").items
        if not heads:
            return ""
        return str(
            self.core.read_namespaced_pod_log(heads[0].metadata.name, NS, container="ray-job-submitter")
        )

    def dump(self, name: str) -> None:
        print("status:", {k: v for k, v in self.status(name).items() if k != "rayClusterStatus"})
        for pod in self.core.list_namespaced_pod(NS).items:
            print(pod.metadata.name, pod.status.phase, pod.status.pod_ip)
            for cs in pod.status.container_statuses or []:
                print(f"  {cs.name}: restarts={cs.restart_count} state={cs.state.to_dict()}")
                print(self.kubectl_logs(f"pod/{pod.metadata.name}")[-2000:])


@pytest.fixture
def env(lk: LocalKube) -> Iterator[tuple[Env, Any]]:
    """The operator (in-process thread) on `lk`, its dashboard client resolving Services to head Pod IPs."""
    env = Env(lk)
    settings = load_settings(
        ["--kubeconfig", str(lk.kubeconfig), "--rayjob-requeue-seconds", "1"], environ={}
    )
    dashboard = DashboardClient(resolve=HeadResolver(env.core))
    operator = build_operator(_client(str(lk.kubeconfig), None), settings, dashboard=dashboard)
    stop = threading.Event()
    thread = threading.Thread(target=operator.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield env, operator
    finally:
        stop.set()
        thread.join(60)
        for pod in env.core.list_namespaced_pod(NS).items:
            env.core.delete_namespaced_pod(pod.metadata.name, NS, grace_period_seconds=5)
        wait_for(lambda: not env.core.list_namespaced_pod(NS).items, 90, "pods gone")


def test_k8s_job_mode_and_selected_cluster_jobs_on_real_ray(env: tuple[Env, Any]) -> None:
    api, operator = env
    api.create(rayjob("ok", f"python -c \"print('{MARKER}')\"", rayClusterSpec=cluster_spec()))
    done = api.finished("ok")
    assert (done["jobDeploymentStatus"], done["jobStatus"]) == ("Complete", "SUCCEEDED"), done
    logs = api.kubectl_logs("job/ok")
    assert MARKER in logs and f"Job '{done['jobId']}' succeeded" in logs, logs
    cluster = done["rayClusterName"]

    selected = {"clusterSelector": {"ray.io/cluster": cluster}}
    failing = "python -c \"import sys; print('about to fail'); sys.exit(3)\""
    api.create(rayjob("bad", failing, **selected))
    failed = api.finished("bad")
    assert (failed["jobDeploymentStatus"], failed["jobStatus"], failed["reason"]) == (
        "Failed",
        "FAILED",
        "AppFailed",
    ), failed
    assert "exit code 3" in failed["message"] and "about to fail" in failed["message"], (
        failed
    )  # the driver's output

    api.create(rayjob("http", f"python -c \"print('{MARKER}-http')\"", submissionMode="HTTPMode", **selected))
    http = api.finished("http")
    assert (http["jobDeploymentStatus"], http["jobStatus"]) == ("Complete", "SUCCEEDED"), http
    assert operator.rayjob is not None and operator.rayjob.reconciler.applier.submissions == 1


def test_sidecar_mode_on_real_ray(env: tuple[Env, Any]) -> None:
    api, _ = env
    body = rayjob(
        "side",
        f"python -c \"print('{MARKER}-sidecar')\"",
        submissionMode="SidecarMode",
        rayClusterSpec=cluster_spec(),
        shutdownAfterJobFinishes=True,
        ttlSecondsAfterFinished=0,
    )
    api.create(body)

    logs = wait_for(lambda: MARKER in (text := api.sidecar_logs()) and text, 300, "the sidecar's log")
    done = api.finished("side")
    assert (done["jobDeploymentStatus"], done["jobStatus"]) == ("Complete", "SUCCEEDED"), done
    assert f"{MARKER}-sidecar" in logs
