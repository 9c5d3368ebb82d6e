"""Custom resources: status/generation/scale, schema validation, pruning, defaulting, printer columns, CRD
deletion."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from tests.api.conftest import WIDGET_CRD, Kubectl, create_widget_crd, wait_for, widget

pytestmark = pytest.mark.api
G, V, P = "example.com", "v1", "widgets"


def test_status_generation_and_scale(widgets: Any) -> None:
    body = widget("w1", color="red", replicas=1)
    body["status"] = {"readyReplicas": 5}
    made = widgets.create_namespaced_custom_object(G, V, "default", P, body)
    assert "status" not in made and made["metadata"]["generation"] == 1
    out = widgets.patch_namespaced_custom_object_status(
        G, V, "default", P, "w1", {"status": {"readyReplicas": 2}, "spec": {"replicas": 9}}
    )
    assert out["status"]["readyReplicas"] == 2 and out["spec"]["replicas"] == 1
    assert out["metadata"]["generation"] == 1
    out = widgets.patch_namespaced_custom_object(G, V, "default", P, "w1", {"status": {"readyReplicas": 7}})
    assert out["status"]["readyReplicas"] == 2
    out = widgets.patch_namespaced_custom_object(G, V, "default", P, "w1", {"spec": {"replicas": 3}})
    assert out["metadata"]["generation"] == 2
    out = widgets.patch_namespaced_custom_object(
        G, V, "default", P, "w1", {"metadata": {"labels": {"a": "b"}}}
    )
    assert out["metadata"]["generation"] == 2
    scale = widgets.get_namespaced_custom_object_scale(G, V, "default", P, "w1")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3 and scale["status"]["replicas"] == 2


def test_kubectl_scale_widget(kubectl: Kubectl, lk_tls: LocalKube) -> None:
    create_widget_crd(lk_tls.api_client())
    kubectl.run("apply", "-f", "-", stdin=json.dumps(widget("w1", color="red", replicas=3)))
    assert "scaled" in kubectl.run("scale", "widget/w1", "--replicas=4").stdout
    got = kubectl.json("get", "widget", "w1")
    assert got["spec"]["replicas"] == 4 and got["metadata"]["generation"] == 2


def test_schema_validation_errors(widgets: Any) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"replicas": "x"}, "spec.replicas in body must be of type integer"),
        ({"color": "green"}, 'Unsupported value: "green"'),
        ({"replicas": -1}, "spec.replicas"),
    ]
    for spec, text in cases:
        with pytest.raises(ApiException) as err:
            widgets.create_namespaced_custom_object(G, V, "default", P, widget("bad", **spec))
        assert err.value.status == 422, spec
        body = json.loads(err.value.body)
        assert body["reason"] == "Invalid" and text in body["message"], body["message"]


def test_pruning_warnings_strict_and_defaults(lk: LocalKube, widgets: Any) -> None:
    url = f"{lk.url}/apis/example.com/v1/namespaces/default/widgets"
    body = widget("w2", color="red", unknown=1, extra={"anything": {"a": 1}})
    resp = requests.post(url, json=body, timeout=10)
    assert resp.status_code == 201
    assert 'unknown field \\"spec.unknown\\"' in resp.headers.get("Warning", "")
    stored = resp.json()["spec"]
    assert "unknown" not in stored and stored["extra"] == {"anything": {"a": 1}}
    assert stored["replicas"] == 1  # defaulted
    body["metadata"]["name"] = "w3"
    strict = requests.post(url, params={"fieldValidation": "Strict"}, json=body, timeout=10)
    assert strict.status_code == 400 and "unknown field" in strict.json()["message"]


def test_printer_columns(kubectl: Kubectl, lk_tls: LocalKube) -> None:
    pytest.importorskip("localkube.table", reason="localkube.table (Table output) has not landed")
    create_widget_crd(lk_tls.api_client())
    kubectl.run("apply", "-f", "-", stdin=json.dumps(widget("w1", color="red")))
    header = kubectl.run("get", "widgets").stdout.splitlines()[0].split()
    assert header == ["NAME", "COLOR"]
    explained = kubectl.run("explain", "widget.spec").stdout
    assert "replicas" in explained and "enum: red, blue" in explained


def test_delete_crd_removes_widgets(lk: LocalKube, api: Any, widgets: Any) -> None:
    widgets.create_namespaced_custom_object(G, V, "default", P, widget("w1", color="red"))
    client.ApiextensionsV1Api(api).delete_custom_resource_definition("widgets.example.com")
    url = f"{lk.url}/apis/example.com/v1/namespaces/default/widgets"
    wait_for(lambda: requests.get(url, timeout=10).status_code == 404, what="widgets endpoint gone")
    # re-creating the CRD serves an empty collection: the old widgets are gone
    create_widget_crd(api)
    assert widgets.list_namespaced_custom_object(G, V, "default", P)["items"] == []


def test_kubectl_patch_widget_needs_merge_type(kubectl: Kubectl, lk_tls: LocalKube) -> None:
    create_widget_crd(lk_tls.api_client())
    kubectl.run("apply", "-f", "-", stdin=json.dumps(widget("w1", color="blue")))
    failed = kubectl.run("patch", "widget", "w1", "-p", '{"spec":{"color":"red"}}', check=False)
    assert failed.returncode != 0
    assert "UnsupportedMediaType" in failed.stderr or "unknown format" in failed.stderr
    kubectl.run("patch", "widget", "w1", "--type", "merge", "-p", '{"spec":{"color":"red"}}')
    assert kubectl.json("get", "widget", "w1")["spec"]["color"] == "red"


def test_kubectl_columns_without_printer_columns(kubectl: Kubectl, lk_tls: LocalKube) -> None:
    crd = json.loads(json.dumps(WIDGET_CRD))
    crd["metadata"]["name"] = "gadgets.example.com"
    crd["spec"]["names"] = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"}
    del crd["spec"]["versions"][0]["additionalPrinterColumns"]
    kubectl.run("apply", "-f", "-", stdin=json.dumps(crd))
    gadget = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {}}
    wait_for(
        lambda: kubectl.run("apply", "-f", "-", stdin=json.dumps(gadget), check=False).returncode == 0,
        what="gadget created",
    )
    assert kubectl.run("get", "gadgets").stdout.splitlines()[0].split() == ["NAME", "AGE"]
    # delete --wait returns once another client removes the finalizer
    api = client.CustomObjectsApi(lk_tls.api_client())
    api.patch_namespaced_custom_object(
        "example.com", "v1", "default", "gadgets", "g1", {"metadata": {"finalizers": ["example.com/hold"]}}
    )
    waiter = kubectl.popen("delete", "gadget", "g1", "--wait=true", "--timeout=60s")
    wait_for(
        lambda: (
            "deletionTimestamp"
            in api.get_namespaced_custom_object("example.com", "v1", "default", "gadgets", "g1")["metadata"]
        ),
        what="deletion started",
    )
    api.patch_namespaced_custom_object(
        "example.com", "v1", "default", "gadgets", "g1", {"metadata": {"finalizers": None}}
    )
    assert waiter.wait(timeout=60) == 0
