"""CRUD, metadata, errors, concurrency, patches, apply and dry-run."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from tests.api.conftest import Kubectl, create_widget_crd, widget

pytestmark = pytest.mark.api
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": data}


def error(exc: ApiException) -> dict[str, Any]:
    return dict(json.loads(exc.body))


def test_create_sets_metadata(lk: LocalKube) -> None:
    resp = requests.post(f"{lk.url}/api/v1/namespaces/default/configmaps", json=cm("a", x="1"), timeout=10)
    assert resp.status_code == 201
    meta = resp.json()["metadata"]
    assert UUID.match(meta["uid"])
    assert isinstance(meta["resourceVersion"], str) and meta["resourceVersion"].isdigit()
    assert TS.match(meta["creationTimestamp"])


def test_errors_already_exists_not_found_invalid(api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", cm("dup"))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", cm("dup"))
    body = error(err.value)
    assert err.value.status == 409 and body["reason"] == "AlreadyExists"
    assert body["details"]["name"] == "dup" and body["details"]["kind"] == "configmaps"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("missing", "default")
    assert err.value.status == 404
    assert error(err.value)["message"] == 'configmaps "missing" not found'
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", cm("Bad_Name"))
    body = error(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_generate_name(api: Any) -> None:
    core = client.CoreV1Api(api)
    names = {
        core.create_namespaced_config_map("default", {"metadata": {"generateName": "job-"}}).metadata.name
        for _ in range(2)
    }
    assert len(names) == 2
    assert all(re.match(r"^job-[bcdfghjklmnpqrstvwxz2456789]{5}$", n) for n in names)


def test_missing_namespace_and_empty_list(api: Any) -> None:
    core = client.CoreV1Api(api)
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("ghost", pod)
    assert err.value.status == 404 and error(err.value)["message"] == 'namespaces "ghost" not found'
    listed = core.list_namespaced_pod("default")
    assert listed.items == [] and listed.metadata.resource_version


def test_put_name_mismatch_and_rv_order(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    a = core.create_namespaced_config_map("default", cm("a"))
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("a", "default", cm("b"))
    assert err.value.status == 400 and error(err.value)["reason"] == "BadRequest"
    s = core.create_namespaced_secret("default", {"metadata": {"name": "s"}})
    b = core.create_namespaced_config_map("default", cm("b"))
    rvs = [
        int(a.metadata.resource_version),
        int(s.metadata.resource_version),
        int(b.metadata.resource_version),
    ]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


def test_optimistic_concurrency(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", cm("c", a="1"))
    got = core.read_namespaced_config_map("c", "default")
    rv_a = got.metadata.resource_version
    got.data = {"a": "2"}
    updated = core.replace_namespaced_config_map("c", "default", got)
    assert int(updated.metadata.resource_version) > int(rv_a)
    got.data = {"a": "3"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("c", "default", got)
    assert err.value.status == 409 and error(err.value)["reason"] == "Conflict"
    # an unconditional merge patch wins; a stale RV in the patch is a precondition
    patched = core.patch_namespaced_config_map(
        "c", "default", [{"op": "add", "path": "/data/b", "value": "x"}]
    )
    assert patched.data == {"a": "2", "b": "x"}
    resp = requests.patch(
        f"{lk.url}/api/v1/namespaces/default/configmaps/c",
        json={"metadata": {"resourceVersion": rv_a}},
        headers={"Content-Type": "application/merge-patch+json"},
        timeout=10,
    )
    assert resp.status_code == 409
    # ConfigMap PUT without resourceVersion is unconditional
    core.replace_namespaced_config_map("c", "default", cm("c", a="9"))


def test_strategic_and_json_patch(api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", cm("p", a="1"))
    assert core.patch_namespaced_config_map("p", "default", {"data": {"b": "2"}}).data == {"a": "1", "b": "2"}
    pod = {
        "metadata": {"name": "p1", "labels": {"x": "a"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
    }
    core.create_namespaced_pod("default", pod)
    out = core.patch_namespaced_pod(
        "p1", "default", [{"op": "replace", "path": "/metadata/labels/x", "value": "y"}]
    )
    assert out.metadata.labels == {"x": "y"}
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_pod(
            "p1", "default", [{"op": "test", "path": "/metadata/labels/x", "value": "z"}]
        )
    assert err.value.status == 422


def test_widget_patch_types_and_unconditional_put(lk: LocalKube, widgets: Any) -> None:
    widgets.create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", widget("w1", color="red")
    )
    resp = requests.patch(
        f"{lk.url}/apis/example.com/v1/namespaces/default/widgets/w1",
        data='{"spec":{}}',
        headers={"Content-Type": "application/strategic-merge-patch+json"},
        timeout=10,
    )
    assert resp.status_code == 415 and resp.json()["reason"] == "UnsupportedMediaType"
    out = widgets.patch_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", "w1", {"spec": {"color": "blue"}}
    )
    assert out["spec"]["color"] == "blue"
    with pytest.raises(ApiException) as err:
        widgets.replace_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", "w1", widget("w1", color="red")
        )
    assert err.value.status == 422


def test_server_side_apply(lk: LocalKube, api: Any) -> None:
    url = f"{lk.url}/api/v1/namespaces/default/configmaps/ap"
    body = json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ap"}, "data": {"k": "v"}}
    )
    headers = {"Content-Type": "application/apply-patch+yaml"}
    resp = requests.patch(url, data=body, headers=headers, timeout=10)
    assert resp.status_code == 422 and resp.json()["reason"] == "Invalid"
    first = requests.patch(url, params={"fieldManager": "t"}, data=body, headers=headers, timeout=10)
    assert first.status_code == 201
    rv = first.json()["metadata"]["resourceVersion"]
    again = requests.patch(url, params={"fieldManager": "t"}, data=body, headers=headers, timeout=10)
    assert again.status_code == 200 and again.json()["metadata"]["resourceVersion"] == rv
    stream = watch.Watch().stream(
        client.CoreV1Api(api).list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1
    )
    seen = [ev["type"] for ev in stream]
    assert seen == []
    # another manager changing the field conflicts; force takes ownership
    other = body.replace('"v"', '"w"')
    conflict = requests.patch(url, params={"fieldManager": "o"}, data=other, headers=headers, timeout=10)
    assert conflict.status_code == 409
    forced = requests.patch(
        url, params={"fieldManager": "o", "force": "true"}, data=other, headers=headers, timeout=10
    )
    assert forced.status_code == 200 and forced.json()["data"] == {"k": "w"}


def test_kubectl_server_side_apply_widget(kubectl: Kubectl, lk_tls: LocalKube) -> None:
    create_widget_crd(lk_tls.api_client())
    manifest = json.dumps(widget("w1", color="red", replicas=2))
    assert "serverside-applied" in kubectl.run("apply", "--server-side", "-f", "-", stdin=manifest).stdout
    manifest = json.dumps(widget("w1", color="blue", replicas=2))
    kubectl.run("apply", "--server-side", "-f", "-", stdin=manifest)
    assert kubectl.json("get", "widget", "w1")["spec"] == {"color": "blue", "replicas": 2}


def test_dry_run_create(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    list_rv = core.list_namespaced_config_map("default").metadata.resource_version
    made = core.create_namespaced_config_map("default", cm("dry"), dry_run="All")
    assert made.metadata.name == "dry"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("dry", "default")
    assert err.value.status == 404
    events = [
        e["type"]
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=list_rv, timeout_seconds=1
        )
    ]
    assert events == []


def test_dynamic_client_on_custom_resources(widgets: Any, api: Any) -> None:
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(api)
    res = dyn.resources.get(api_version="example.com/v1", kind="Widget")
    made = res.create(body=widget("d1", color="red"), namespace="default")
    assert made.metadata.name == "d1" and made.spec.replicas == 1
    with pytest.raises(ApiException) as err:
        res.patch(name="d1", namespace="default", body={"spec": {"color": "blue"}})
    assert err.value.status == 415
    patched = res.patch(
        name="d1",
        namespace="default",
        body={"spec": {"color": "blue"}},
        content_type="application/merge-patch+json",
    )
    assert patched.spec.color == "blue"
    applied = res.server_side_apply(body=widget("d2", color="red"), namespace="default", field_manager="t")
    assert applied.metadata.name == "d2"
    names = [e["object"].metadata.name for e in res.watch(namespace="default", timeout=1)]
    assert names == ["d1", "d2"]


def test_pod_log_needs_a_node(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        "default", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}
    )
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("p", "default")
    assert err.value.status == 400
