"""Real Ray clusters on the process-mode kubelet, with pods written the way KubeRay generates them:
`bash -lc "ulimit -n 65536; ray start ... --block"`, token auth from a Secret, the KubeRay labels, a
headless head Service, and the worker's `wait-gcs-ready` init container. Two clusters run at once (each
pod has its own IP, so both heads bind 6379/8265); deleting the pods ends every process they started."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from tests.support import kube

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root for pod netns")]
BASH_LC = ["/bin/bash", "-lc", "--"]  # KubeRay with ENABLE_LOGIN_SHELL=true
# small enough that two heads and a worker fit on a 2-core CI machine
RAY_PARAMS = (
    "--num-cpus=1 --object-store-memory=80000000 "
    "--dashboard-agent-listen-port=52365 --metrics-export-port=8080"
)


@pytest.fixture(scope="module")
def lk() -> Iterator[LocalKube]:
    with running(kubelet="process", kubelet_options={"restart_backoff": 1.0}) as lk:
        yield lk


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll every 0.5 s; request errors while Ray or localkube is still starting count as "not yet"."""
    return kube.wait_for(check, timeout, what, interval=0.5, ignore=(requests.RequestException, ApiException))


def labels(cluster: str, kind: str) -> dict[str, str]:
    return {
        "ray.io/is-ray-node": "yes",
        "ray.io/cluster": cluster,
        "ray.io/node-type": kind,
        "ray.io/group": "headgroup" if kind == "head" else "workers",
        "ray.io/identifier": f"{cluster}-{kind}",
        "app.kubernetes.io/name": "kuberay",
        "app.kubernetes.io/created-by": "kuberay-operator",
    }


def ray_env(cluster: str, kind: str, fqdn: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "RAY_AUTH_MODE", "value": "token"},
        {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": cluster, "key": "auth_token"}}},
        {
            "name": "RAY_CLUSTER_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ray.io/cluster']"}},
        },
        {"name": "RAY_CLOUD_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {
            "name": "RAY_NODE_TYPE_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ray.io/group']"}},
        },
        {"name": "RAY_PORT", "value": "6379"},
        {"name": "RAY_USAGE_STATS_KUBERAY_IN_USE", "value": "1"},
        {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
        {"name": "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE", "value": "1"},
    ]
    if kind == "head":
        env.append({"name": "RAY_ADDRESS", "value": "127.0.0.1:6379"})
    else:
        env += [
            {"name": "FQ_RAY_IP", "value": fqdn},
            {"name": "RAY_IP", "value": f"{cluster}-head-svc"},
            {"name": "RAY_ADDRESS", "value": f"{fqdn}:6379"},
        ]
    return env


def ray_pod(cluster: str, kind: str) -> dict[str, Any]:
    fqdn = f"{cluster}-head-svc.default.svc.cluster.local"
    if kind == "head":
        start = f"ray start --head --block --dashboard-host=0.0.0.0 {RAY_PARAMS}"
        ports = [{"name": "gcs-server", "containerPort": 6379}, {"name": "dashboard", "containerPort": 8265}]
    else:
        start = f"ray start --address={fqdn}:6379 --block {RAY_PARAMS}"
        ports = []
    probe = {"httpGet": {"path": "/api/healthz", "port": 52365}, "periodSeconds": 2, "failureThreshold": 10}
    env = ray_env(cluster, kind, fqdn)
    container = {
        "name": f"ray-{kind}",
        "image": "rayproject/ray:2.60.0",
        "command": BASH_LC,
        "args": [f"ulimit -n 65536; {start}"],
        "env": [*env, {"name": "KUBERAY_GEN_RAY_START_CMD", "value": start}],
        "ports": [*ports, {"name": "metrics", "containerPort": 8080}],
        "readinessProbe": probe,
        "volumeMounts": [{"name": "shared-mem", "mountPath": "/dev/shm"}],
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Always",
        "containers": [container],
        "volumes": [{"name": "shared-mem", "emptyDir": {"medium": "Memory", "sizeLimit": "200Mi"}}],
    }
    if kind == "worker":
        wait = (
            f"until ray health-check --address {fqdn}:6379 > /dev/null 2>&1; do "
            'echo "Waiting for GCS to be ready."; sleep 1; done; echo "GCS is ready."'
        )
        init = {"name": "wait-gcs-ready", "image": "rayproject/ray:2.60.0", "command": BASH_LC}
        spec["initContainers"] = [{**init, "args": [wait], "env": env}]
    name = f"{cluster}-head" if kind == "head" else f"{cluster}-workers-worker-x1"
    return {
        "metadata": {
            "name": name,
            "labels": labels(cluster, kind),
            "annotations": {"ray.io/ft-enabled": "false"},
        },
        "spec": spec,
    }


def head_service(cluster: str) -> dict[str, Any]:
    selector = {
        k: v for k, v in labels(cluster, "head").items() if k not in ("ray.io/is-ray-node", "ray.io/group")
    }
    ports = [
        {"name": "dashboard", "port": 8265, "appProtocol": "tcp"},
        {"name": "gcs-server", "port": 6379, "appProtocol": "tcp"},
    ]
    return {
        "metadata": {"name": f"{cluster}-head-svc", "labels": selector},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector, "ports": ports},
    }


def create_cluster(core: client.CoreV1Api, cluster: str, workers: int) -> str:
    token = secrets.token_urlsafe(32)
    core.create_namespaced_secret(
        "default", {"metadata": {"name": cluster}, "stringData": {"auth_token": token}}
    )
    core.create_namespaced_service("default", head_service(cluster))
    core.create_namespaced_pod("default", ray_pod(cluster, "head"))
    for _ in range(workers):
        core.create_namespaced_pod("default", ray_pod(cluster, "worker"))
    return token


def alive_nodes(ip: str, token: str) -> int:
    r = requests.get(
        f"http://{ip}:8265/nodes?view=summary", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    r.raise_for_status()
    summary = r.json()["data"]["summary"]
    return sum(1 for n in summary if n.get("raylet", {}).get("state") == "ALIVE")


def pod_processes(uids: set[str]) -> list[psutil.Process]:
    markers = {f"LOCALKUBE_POD_UID={u}" for u in uids}
    found = []
    for proc in psutil.process_iter():
        try:
            if markers & {f"{k}={v}" for k, v in proc.environ().items() if k == "LOCALKUBE_POD_UID"}:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def pod_logs(core: client.CoreV1Api) -> str:
    """Every Ray pod's log, for failure messages."""
    out = []
    for p in core.list_namespaced_pod("default", label_selector="ray.io/is-ray-node=yes").items:
        for c in [*(p.spec.init_containers or []), *p.spec.containers]:
            try:
                text = core.read_namespaced_pod_log(
                    p.metadata.name, "default", container=c.name, tail_lines=30
                )
            except ApiException as exc:
                text = f"<{exc.status}>"
            out.append(f"--- {p.metadata.name}/{c.name} ({p.status.phase}):\n{text}")
    return "\n".join(out)


def test_two_ray_clusters_with_token_auth(lk: LocalKube) -> None:
    core = client.CoreV1Api(lk.api_client())
    token_a = create_cluster(core, "rc-a", workers=1)
    token_b = create_cluster(core, "rc-b", workers=0)
    ip_a = wait_for(lambda: core.read_namespaced_pod("rc-a-head", "default").status.pod_ip, 60, "head IP")
    ip_b = wait_for(lambda: core.read_namespaced_pod("rc-b-head", "default").status.pod_ip, 60, "head IP")
    assert ip_a != ip_b  # both heads listen on 6379 and 8265, each in its own network namespace
    try:
        wait_for(lambda: alive_nodes(ip_a, token_a) == 2, 300, "2 alive nodes in rc-a")
        assert wait_for(lambda: alive_nodes(ip_b, token_b), 120, "rc-b head alive") == 1
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{pod_logs(core)}") from None
    assert requests.get(f"http://{ip_a}:8265/nodes?view=summary", timeout=10).status_code == 401
    wrong = {"Authorization": f"Bearer {token_b}"}
    assert (
        requests.get(f"http://{ip_a}:8265/nodes?view=summary", headers=wrong, timeout=10).status_code == 403
    )

    worker = core.read_namespaced_pod("rc-a-workers-worker-x1", "default")
    assert worker.status.init_container_statuses[0].state.terminated.exit_code == 0
    assert "GCS is ready." in core.read_namespaced_pod_log(
        worker.metadata.name, "default", container="wait-gcs-ready"
    )
    pods = core.list_namespaced_pod("default", label_selector="ray.io/is-ray-node=yes").items
    uids = {p.metadata.uid for p in pods}
    assert len(uids) == 3
    assert len(pod_processes(uids)) >= 6  # bash/ray start plus raylet, gcs, dashboard, agents ...
    for p in pods:
        core.delete_namespaced_pod(p.metadata.name, "default", grace_period_seconds=10)
    selector = "ray.io/is-ray-node=yes"
    wait_for(lambda: not core.list_namespaced_pod("default", label_selector=selector).items, 60, "pods gone")
    wait_for(lambda: not pod_processes(uids), 20, "every pod process ended")
