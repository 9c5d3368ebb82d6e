"""Pods of the process-mode kubelet authenticate as real pods do: an HTTPS, token-checking localkube, and a
pod whose python uses the official client's in-cluster config (KUBERNETES_SERVICE_HOST/PORT and the files
at /var/run/secrets/kubernetes.io/serviceaccount) to list pods."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from tests.support import kube

pytestmark = [pytest.mark.api, pytest.mark.skipif(os.geteuid() != 0, reason="process mode tests run as root")]

IN_CLUSTER = """
import sys
from kubernetes import client, config
config.load_incluster_config()
ns = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
pods = client.CoreV1Api().list_namespaced_pod(ns)
print("listed", ns, sorted(p.metadata.name for p in pods.items))
"""
TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
NO_FILES = f"import os, sys; sys.exit(3 if os.path.exists({TOKEN!r}) else 0)"


@pytest.fixture(scope="module")
def lk() -> Iterator[LocalKube]:
    with running(kubelet="process", https=True, token="admin-secret-token") as lk:
        yield lk


@pytest.fixture(scope="module")
def core(lk: LocalKube) -> client.CoreV1Api:
    return client.CoreV1Api(lk.api_client())


def run_pod(core: client.CoreV1Api, name: str, script: str, **spec: Any) -> Any:
    body = {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "python", "command": [sys.executable, "-c", script]}],
            **spec,
        },
    }
    core.create_namespaced_pod("default", body)

    def finished() -> Any:
        pod = core.read_namespaced_pod(name, "default")
        return pod.status.phase in ("Succeeded", "Failed") and pod

    return kube.wait_for(finished, 120, f"pod {name} finished", interval=0.2)


def test_in_cluster_config_lists_pods(lk: LocalKube, core: client.CoreV1Api) -> None:
    pod = run_pod(core, "incluster", IN_CLUSTER)
    logs = core.read_namespaced_pod_log("incluster", "default")
    assert pod.status.phase == "Succeeded", logs
    assert "listed default" in logs and "'incluster'" in logs
    assert "admin-secret-token" not in logs


def client_with_token(lk: LocalKube, token: str) -> client.CoreV1Api:
    cfg = client.Configuration()
    cfg.host, cfg.ssl_ca_cert = lk.url, str(lk.state_dir / "pki" / "ca.crt")
    cfg.api_key = {"authorization": f"Bearer {token}"}
    return client.CoreV1Api(client.ApiClient(cfg))


def test_pod_token_is_accepted_and_not_the_admin_token(lk: LocalKube) -> None:
    assert lk.pod_token and lk.pod_token != "admin-secret-token"
    assert client_with_token(lk, lk.pod_token).list_namespaced_pod("default").kind == "PodList"
    with pytest.raises(ApiException) as err:
        client_with_token(lk, "not-" + lk.pod_token).list_namespaced_pod("default")
    assert err.value.status == 401


def test_automount_false_mounts_nothing(core: client.CoreV1Api) -> None:
    pod = run_pod(core, "no-token", NO_FILES, automountServiceAccountToken=False)
    assert pod.status.phase == "Succeeded", core.read_namespaced_pod_log("no-token", "default")
