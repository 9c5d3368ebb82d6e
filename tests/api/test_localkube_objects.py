"""Deletion, finalizers, propagation, namespaces, pods, bindings, services, jobs and leases
(the API-server side)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube

pytestmark = pytest.mark.api


def pod(name: str, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox:1"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


def test_finalizers(api: Any) -> None:
    core = client.CoreV1Api(api)
    made = core.create_namespaced_config_map(
        "default", {"metadata": {"name": "f", "finalizers": ["example.com/f"]}}
    )
    resp = json.loads(core.delete_namespaced_config_map("f", "default", _preload_content=False).data)
    assert resp["metadata"]["deletionTimestamp"]
    assert core.read_namespaced_config_map("f", "default").metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(
            "f", "default", {"metadata": {"finalizers": ["example.com/f", "x.io/g"]}}
        )
    assert err.value.status == 422
    core.patch_namespaced_config_map("f", "default", [{"op": "remove", "path": "/metadata/finalizers"}])
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("f", "default")
    assert err.value.status == 404
    # replay from the creation revision: the delete marked it, removing the finalizer deleted it
    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        "default",
        resource_version=made.metadata.resource_version,
        timeout_seconds=1,
    )
    assert [e["type"] for e in stream] == ["MODIFIED", "DELETED"]


def test_propagation_finalizers(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "fg"}})
    out = json.loads(
        core.delete_namespaced_config_map(
            "fg", "default", propagation_policy="Foreground", _preload_content=False
        ).data
    )
    assert out["metadata"]["finalizers"] == ["foregroundDeletion"]
    core.create_namespaced_config_map("default", {"metadata": {"name": "or"}})
    out = json.loads(
        core.delete_namespaced_config_map(
            "or", "default", propagation_policy="Orphan", _preload_content=False
        ).data
    )
    assert out["metadata"]["finalizers"] == ["orphan"]
    # Jobs default to orphaning, with a warning
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(
        "default",
        {
            "metadata": {"name": "j"},
            "spec": {
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1"}]}
                }
            },
        },
    )
    resp = requests.delete(f"{lk.url}/apis/batch/v1/namespaces/default/jobs/j", timeout=10)
    assert resp.status_code == 200 and "child pods are preserved" in resp.headers.get("Warning", "")
    assert resp.json()["metadata"]["finalizers"] == ["orphan"]


def test_job_defaults_and_selector(api: Any) -> None:
    job = client.BatchV1Api(api).create_namespaced_job(
        "default",
        {
            "metadata": {"name": "j"},
            "spec": {
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1"}]}
                }
            },
        },
    )
    assert job.spec.completions == 1 and job.spec.parallelism == 1 and job.spec.backoff_limit == 6
    assert job.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": job.metadata.uid}
    assert job.spec.template.metadata.labels["batch.kubernetes.io/job-name"] == "j"
    assert job.metadata.generation == 1


def test_pod_defaults_immutability_and_binding(api: Any) -> None:
    core = client.CoreV1Api(api)
    made = core.create_namespaced_pod("default", pod("p"))
    assert made.spec.restart_policy == "Always" and made.spec.termination_grace_period_seconds == 30
    assert made.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert made.status.phase == "Pending" and made.status.qos_class == "BestEffort"
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_pod("p", "default", {"spec": {"restartPolicy": "Never"}})
    assert err.value.status == 422
    core.patch_namespaced_pod("p", "default", {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}})
    core.create_namespaced_pod_binding(
        "p",
        "default",
        {"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}},
        _preload_content=False,
    )
    bound = core.read_namespaced_pod("p", "default")
    assert bound.spec.node_name == "node-1"
    assert [c.type for c in bound.status.conditions] == ["PodScheduled"]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod_binding(
            "p",
            "default",
            {"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-2"}},
            _preload_content=False,
        )
    assert err.value.status == 409


def test_pod_graceful_deletion(api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod("default", pod("running", node="node-1"))
    out = core.delete_namespaced_pod("running", "default")
    assert out.metadata.deletion_grace_period_seconds == 30
    left = (out.metadata.deletion_timestamp - datetime.now(UTC)).total_seconds()
    assert 20 < left <= 31
    assert core.read_namespaced_pod("running", "default").metadata.deletion_timestamp is not None
    core.delete_namespaced_pod("running", "default", grace_period_seconds=0)
    core.create_namespaced_pod("default", pod("pending"))
    core.delete_namespaced_pod("pending", "default")
    for name in ("running", "pending"):
        with pytest.raises(ApiException) as err:
            core.read_namespaced_pod(name, "default")
        assert err.value.status == 404


def test_services(api: Any) -> None:
    core = client.CoreV1Api(api)
    ports = [{"port": 80}]
    a = core.create_namespaced_service("default", {"metadata": {"name": "a"}, "spec": {"ports": ports}})
    b = core.create_namespaced_service("default", {"metadata": {"name": "b"}, "spec": {"ports": ports}})
    assert a.spec.cluster_ip != b.spec.cluster_ip
    assert all(ip.startswith("10.96.") for ip in (a.spec.cluster_ip, b.spec.cluster_ip))
    assert a.spec.ports[0].target_port == 80 and a.spec.ports[0].protocol == "TCP"
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_service("a", "default", {"spec": {"clusterIP": "10.96.7.7"}})
    assert err.value.status == 422
    np = core.create_namespaced_service(
        "default", {"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": ports}}
    )
    assert 30000 <= np.spec.ports[0].node_port <= 32767
    headless = core.create_namespaced_service(
        "default", {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": ports}}
    )
    assert headless.spec.cluster_ip == "None"


def test_lease_concurrency(api: Any) -> None:
    coord = client.CoordinationV1Api(api)
    body = {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    lease = coord.create_namespaced_lease("default", body)
    with pytest.raises(ApiException) as err:
        coord.create_namespaced_lease("default", body)
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "AlreadyExists"
    lease.spec.holder_identity = "b"
    coord.replace_namespaced_lease("leader", "default", lease)
    lease.spec.holder_identity = "c"
    with pytest.raises(ApiException) as err:
        coord.replace_namespaced_lease("leader", "default", lease)
    assert err.value.status == 409


def test_namespace_termination(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "tmp"}})
    core.create_namespaced_config_map("tmp", {"metadata": {"name": "c"}})
    core.delete_namespace("tmp")
    ns = core.read_namespace("tmp")
    assert ns.status.phase == "Terminating" and ns.metadata.labels["kubernetes.io/metadata.name"] == "tmp"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("tmp", {"metadata": {"name": "d"}})
    assert err.value.status == 403
    # what the namespace controller does: empty the namespace, then finalize
    core.delete_namespaced_config_map("c", "tmp")
    ns.spec.finalizers = []
    core.replace_namespace_finalize("tmp", ns)
    with pytest.raises(ApiException) as err:
        core.read_namespace("tmp")
    assert err.value.status == 404


def test_cluster_scoped_and_delete_collection(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    resp = requests.get(f"{lk.url}/api/v1/namespaces/default/nodes", timeout=10)
    assert resp.status_code == 404
    for i in range(3):
        core.create_namespaced_secret(
            "default", {"metadata": {"name": f"s{i}", "labels": {"del": str(i < 2)}}}
        )
    core.delete_collection_namespaced_secret("default", label_selector="del=True")
    assert [s.metadata.name for s in core.list_namespaced_secret("default").items] == ["s2"]


def test_events_views_and_describe(lk_tls: LocalKube, tmp_path: Any) -> None:
    from tests.api.conftest import Kubectl

    api = lk_tls.api_client()
    core = client.CoreV1Api(api)
    uid = core.create_namespaced_pod("default", pod("p")).metadata.uid
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ev = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "p.1"},
        "regarding": {"kind": "Pod", "namespace": "default", "name": "p", "apiVersion": "v1", "uid": uid},
        "note": "pulled the image",
        "reason": "Pulled",
        "type": "Normal",
        "action": "Pull",
        "eventTime": now,
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
    }
    client.EventsV1Api(api).create_namespaced_event("default", ev)
    listed = core.list_namespaced_event("default", field_selector="involvedObject.name=p").items
    assert [e.message for e in listed] == ["pulled the image"]
    incomplete = {k: v for k, v in ev.items() if k != "action"}
    incomplete["metadata"] = {"name": "p.2"}
    with pytest.raises(ApiException) as err:
        client.EventsV1Api(api).create_namespaced_event("default", incomplete)
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        core.create_namespaced_event(
            "kube-system",
            {
                "metadata": {"name": "x"},
                "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"},
            },
        )
    assert err.value.status == 422
    kubectl = Kubectl(lk_tls.kubeconfig, tmp_path / "home")
    described = kubectl.run("describe", "pod", "p").stdout
    assert "Pulled" in described and "pulled the image" in described


def test_secret_string_data_and_owner_references(api: Any) -> None:
    core = client.CoreV1Api(api)
    made = core.create_namespaced_secret(
        "default", {"metadata": {"name": "s"}, "stringData": {"token": "abc"}, "data": {"x": "eQ=="}}
    )
    assert made.type == "Opaque" and made.data == {"x": "eQ==", "token": "YWJj"} and made.string_data is None
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u1", "controller": True}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(
            "default", {"metadata": {"name": "c", "ownerReferences": [ref, {**ref, "uid": "u2"}]}}
        )
    assert err.value.status == 422
