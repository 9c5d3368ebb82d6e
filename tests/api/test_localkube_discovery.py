"""Discovery, OpenAPI, transport and authentication."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from localkube.cluster import LocalKube
from tests.api.conftest import Kubectl, create_widget_crd, wait_for

pytestmark = pytest.mark.api


def test_version_and_kubectl_version(lk: LocalKube, kubectl: Kubectl) -> None:
    body = requests.get(f"{lk.url}/version", timeout=10).json()
    assert isinstance(body["major"], str) and isinstance(body["minor"], str)
    assert body["gitVersion"].startswith("v1.")
    out = kubectl.run("version").stdout
    assert "Server Version: v1.32" in out


def test_api_and_group_list(lk: LocalKube) -> None:
    api = requests.get(f"{lk.url}/api", timeout=10).json()
    assert api["kind"] == "APIVersions" and "v1" in api["versions"]
    groups = requests.get(f"{lk.url}/apis", timeout=10).json()
    assert groups["kind"] == "APIGroupList"
    by_name = {g["name"]: g for g in groups["groups"]}
    for name in (
        "apps",
        "batch",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "events.k8s.io",
        "rbac.authorization.k8s.io",
    ):
        assert name in by_name, name
        assert by_name[name]["preferredVersion"] in by_name[name]["versions"]


def test_kubectl_api_resources(kubectl: Kubectl) -> None:
    out = kubectl.run("api-resources").stdout
    lines = [line.split() for line in out.splitlines()]
    assert ["pods", "po", "v1", "true", "Pod"] in lines
    assert any(line[:2] == ["configmaps", "cm"] for line in lines)
    assert any(line[0] == "jobs" and "batch/v1" in line for line in lines)
    assert any(line[0] == "leases" for line in lines)


def test_dynamic_client_finds_pods(api: Any) -> None:
    dyn = DynamicClient(api)
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    assert pods.namespaced is True


def test_crd_is_served_at_once(lk: LocalKube, api: Any, kubectl: Kubectl) -> None:
    crd = create_widget_crd(api)
    assert crd["metadata"]["name"] == "widgets.example.com"
    names = wait_for(
        lambda: {
            r["name"]
            for r in requests.get(f"{lk.url}/apis/example.com/v1", timeout=10).json().get("resources", [])
        },
        what="widgets discovery",
    )
    assert {"widgets", "widgets/status", "widgets/scale"} <= names
    got = client.ApiextensionsV1Api(api).read_custom_resource_definition("widgets.example.com")
    conds = {c.type: c.status for c in got.status.conditions}
    assert conds["Established"] == "True" and conds["NamesAccepted"] == "True"
    # kubectl against the TLS server (a different instance): install the CRD there too.
    kubectl.run("apply", "-f", "-", stdin=json.dumps(crd_manifest(crd)))
    assert "No resources found" in kubectl.run("get", "widgets").stderr


def crd_manifest(crd: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": crd["apiVersion"],
        "kind": crd["kind"],
        "metadata": {"name": crd["metadata"]["name"]},
        "spec": crd["spec"],
    }


def test_kubectl_create_uses_strict_validation(kubectl: Kubectl) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\ndata:\n  a: '1'\n"
    proc = kubectl.run("create", "-f", "-", "-v=6", stdin=manifest)
    assert "configmap/cm1 created" in proc.stdout
    assert "fieldValidation=Strict" in proc.stderr
    assert kubectl.json("get", "cm", "cm1")["data"] == {"a": "1"}


def test_unknown_path_is_404_status(lk: LocalKube) -> None:
    resp = requests.get(f"{lk.url}/apis/nope.io/v1/things", timeout=10)
    assert resp.status_code == 404
    body = resp.json()
    assert body["kind"] == "Status" and body["reason"] == "NotFound"


def test_bad_token_is_401(lk_tls: LocalKube) -> None:
    cfg = client.Configuration()
    cfg.host = lk_tls.url
    cfg.verify_ssl = False
    cfg.api_key = {"authorization": "Bearer wrong"}
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(client.ApiClient(cfg)).list_namespace()
    assert err.value.status == 401
    assert json.loads(err.value.body)["reason"] == "Unauthorized"
    # the kubeconfig's own token works
    names = [n.metadata.name for n in client.CoreV1Api(lk_tls.api_client()).list_namespace().items]
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names)


def test_openapi_v3_documents(lk: LocalKube) -> None:
    index = requests.get(f"{lk.url}/openapi/v3", timeout=10).json()
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    doc = requests.get(f"{lk.url}{url}", timeout=10).json()
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert any(p["name"] == "fieldValidation" for p in patch["parameters"])
    assert requests.get(f"{lk.url}/openapi/v2", timeout=10).status_code == 404


def test_health_and_protobuf(lk: LocalKube) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        resp = requests.get(lk.url + path, timeout=10)
        assert resp.status_code == 200 and resp.text == "ok"
    resp = requests.post(
        f"{lk.url}/api/v1/namespaces/default/configmaps",
        data=b"k8s\x00\x01",
        headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
        timeout=10,
    )
    assert resp.status_code == 415 and resp.json()["reason"] == "UnsupportedMediaType"


def test_chunked_request_body_and_yaml(lk: LocalKube) -> None:
    def body() -> Any:
        yield b'{"metadata":'
        yield b'{"name":"chunky"}}'

    url = f"{lk.url}/api/v1/namespaces/default/configmaps"
    resp = requests.post(url, data=body(), headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 201 and resp.json()["metadata"]["name"] == "chunky"
    resp = requests.post(
        url,
        data="metadata:\n  name: yam\ndata:\n  a: b\n",
        headers={"Content-Type": "application/yaml"},
        timeout=10,
    )
    assert resp.status_code == 201 and resp.json()["data"] == {"a": "b"}


def test_kubectl_imperative_create_protobuf(kubectl: Kubectl) -> None:
    kubectl.run("create", "namespace", "ray")
    kubectl.run("create", "configmap", "cfg", "-n", "ray", "--from-literal=a=1", "--from-literal=b=two")
    kubectl.run("create", "secret", "generic", "sec", "-n", "ray", "--from-literal=token=s3cret")
    kubectl.run("create", "serviceaccount", "bot", "-n", "ray")
    assert kubectl.json("get", "cm", "cfg", "-n", "ray")["data"] == {"a": "1", "b": "two"}
    assert kubectl.json("get", "secret", "sec", "-n", "ray")["data"] == {"token": "czNjcmV0"}
    failed = kubectl.run("create", "deployment", "d", "--image=busybox", check=False)
    assert failed.returncode != 0 and "unknown format" in failed.stderr


def test_aggregated_discovery(lk: LocalKube, kubectl: Kubectl) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    resp = requests.get(f"{lk.url}/apis", headers={"Accept": accept}, timeout=10)
    assert resp.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    groups = {g["metadata"]["name"]: g for g in resp.json()["items"]}
    batch = groups["batch"]["versions"][0]
    jobs = next(r for r in batch["resources"] if r["resource"] == "jobs")
    assert jobs["scope"] == "Namespaced" and jobs["responseKind"]["kind"] == "Job"
    assert [s["subresource"] for s in jobs["subresources"]] == ["status"]
    core = requests.get(f"{lk.url}/api", headers={"Accept": accept}, timeout=10).json()
    assert [g["metadata"]["name"] for g in core["items"]] == [""]
    plain = requests.get(f"{lk.url}/apis", timeout=10).json()
    assert plain["kind"] == "APIGroupList"
    # kubectl discovers with the two aggregated requests only
    log = kubectl.run("get", "pods", "-v=6").stderr
    assert "/apis/batch/v1" not in log and "/apis?timeout" in log
