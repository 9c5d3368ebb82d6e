"""Builders of the optional RayCluster children: dashboard Ingress, serve Service, Redis cleanup Job."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ray_operator.builders import (
    BuildSettings,
    ServePortMissing,
    head_ingress,
    head_pod,
    names,
    redis_cleanup_job,
    serve_service,
    wants_ingress,
    wants_serve_service,
)
from ray_operator.models import RayCluster
from rayside.objects import resource_of
from tests.unit.operator.golden import load

SETTINGS = BuildSettings()
OWNER = {
    "apiVersion": "ray.io/v1",
    "kind": "RayCluster",
    "name": "rc",
    "uid": "0b7c6a52-1111-4c1e-9d3e-000000000001",
    "controller": True,
    "blockOwnerDeletion": True,
}


def cluster(
    *, annotations: dict[str, str] | None = None, head: dict[str, Any] | None = None, **spec: Any
) -> RayCluster:
    data = copy.deepcopy(load("raycluster-minimal.yaml"))
    if annotations is not None:
        data["metadata"]["annotations"] = annotations
    data["spec"]["headGroupSpec"].update(head or {})
    data["spec"].update(spec)
    return RayCluster.model_validate(data)


def with_head_ports(*ports: tuple[str, int]) -> dict[str, Any]:
    tmpl = copy.deepcopy(load("raycluster-minimal.yaml")["spec"]["headGroupSpec"]["template"])
    tmpl["spec"]["containers"][0]["ports"] = [{"name": n, "containerPort": p} for n, p in ports]
    return {"template": tmpl}


# -- Ingress ------------------------------------------------------------------------------------------
def test_ingress_defaults() -> None:
    rc = cluster(head={"enableIngress": True})
    assert wants_ingress(rc) and not wants_ingress(cluster())
    ing = head_ingress(rc)
    assert ing["apiVersion"] == "networking.k8s.io/v1" and ing["kind"] == "Ingress"
    assert ing["metadata"] == {
        "name": "rc-head-ingress",
        "namespace": "ns",
        "labels": {
            "ray.io/cluster": "rc",
            "ray.io/identifier": "rc-head",
            "app.kubernetes.io/name": "kuberay",
            "app.kubernetes.io/created-by": "kuberay-operator",
        },
        "ownerReferences": [OWNER],
    }
    backend = {"service": {"name": "rc-head-svc", "port": {"number": 8265}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    assert ing["spec"] == {"rules": [{"http": {"paths": [path]}}]}


def test_ingress_class_annotations_options_and_ports() -> None:
    tls = [{"hosts": ["ray.example.com"], "secretName": "tls"}]
    head = {
        "enableIngress": True,
        "ingressOptions": {"host": "ray.example.com", "path": "/ray", "pathType": "Exact", "tls": tls},
        "headService": {"metadata": {"name": "custom-svc"}},
        **with_head_ports(("dashboard", 9000), ("gcs-server", 6379)),
    }
    annotations = {"kubernetes.io/ingress.class": "nginx", "nginx.ingress.kubernetes.io/rewrite-target": "/"}
    ing = head_ingress(cluster(annotations=annotations, head=head))
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/rewrite-target": "/"}
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "ray.example.com"
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/ray", "Exact")
    assert path["backend"]["service"] == {"name": "custom-svc", "port": {"number": 9000}}
    assert ing["spec"]["tls"] == tls and ing["spec"]["tls"] is not tls


def test_ingress_without_dashboard_port_uses_8265() -> None:
    ing = head_ingress(cluster(head={"enableIngress": True, **with_head_ports(("gcs-server", 6379))}))
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] == {"number": 8265}


def test_long_names_follow_check_name_and_check_label() -> None:
    long = "a" * 60
    assert names.ingress_name(long) == ("a" * 60 + "-head-ingress")[-50:]
    assert names.redis_cleanup_job_name(long) == ("a" * 60 + "-redis-cleanup")[-63:]
    assert names.redis_cleanup_job_name("rc") == "rc-redis-cleanup"


# -- serve Service ------------------------------------------------------------------------------------
def test_serve_service_default_ports() -> None:
    rc = cluster(annotations={"ray.io/enable-serve-service": "true"})
    assert wants_serve_service(rc)
    svc = serve_service(rc, settings=SETTINGS)
    assert svc["metadata"] == {
        "name": "rc-serve-svc",
        "namespace": "ns",
        "labels": {
            "ray.io/originated-from-cr-name": "rc",
            "ray.io/originated-from-crd": "RayCluster",
            "ray.io/serve": "rc-serve",
        },
        "ownerReferences": [OWNER],
    }
    assert svc["spec"] == {"selector": {"ray.io/cluster": "rc"}, "ports": [{"name": "serve", "port": 8000}]}


@pytest.mark.parametrize("value", ["false", "True", ""])
def test_serve_service_needs_exact_true(value: str) -> None:
    assert not wants_serve_service(cluster(annotations={"ray.io/enable-serve-service": value}))
    assert not wants_serve_service(cluster())


def test_serve_service_serve_prefixed_ports_and_type() -> None:
    head = {"serviceType": "NodePort", **with_head_ports(("serve", 8000), ("serve-grpc", 9000), ("x", 1))}
    svc = serve_service(cluster(head=head), settings=SETTINGS)
    assert svc["spec"]["ports"] == [{"name": "serve", "port": 8000}, {"name": "serve-grpc", "port": 9000}]
    assert svc["spec"]["type"] == "NodePort"


def test_serve_service_without_serve_port_raises() -> None:
    with pytest.raises(ServePortMissing, match="no port named 'serve'"):
        serve_service(cluster(head=with_head_ports(("dashboard", 8265))), settings=SETTINGS)


# -- Redis cleanup Job --------------------------------------------------------------------------------
def ft_cluster(**spec: Any) -> RayCluster:
    return cluster(gcsFaultToleranceOptions={"redisAddress": "redis:6379"}, **spec)


def test_redis_cleanup_job_shape() -> None:
    rc = ft_cluster()
    job = redis_cleanup_job(rc, settings=SETTINGS)
    head = head_pod(rc, settings=SETTINGS)
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    meta = job["metadata"]
    assert (meta["name"], meta["namespace"], meta["ownerReferences"]) == ("rc-redis-cleanup", "ns", [OWNER])
    expected_labels = {**head["metadata"]["labels"], "ray.io/node-type": "redis-cleanup"}
    assert meta["labels"] == expected_labels
    assert meta["annotations"] == head["metadata"]["annotations"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 300
    template = job["spec"]["template"]
    assert template["metadata"]["labels"] == expected_labels
    spec = template["spec"]
    assert spec["restartPolicy"] == "Never"
    (ray,) = spec["containers"]
    assert ray["name"] == "ray-head" and ray["image"] == "rayproject/ray:2.46.0"
    quantity = {"cpu": "200m", "memory": "256Mi"}
    assert ray["resources"] == {"limits": quantity, "requests": quantity}
    assert "livenessProbe" not in ray and "readinessProbe" not in ray
    assert ray["command"] == ["/bin/bash", "-c", "--"]
    assert "cleanup_redis_storage" in ray["args"][0] and "ray start" not in ray["args"][0]
    env = {e["name"]: e.get("value") for e in ray["env"]}
    assert env["RAY_REDIS_ADDRESS"] == "redis:6379"
    assert env["RAY_external_storage_namespace"] == "0b7c6a52-1111-4c1e-9d3e-000000000001"
    assert (env["RAY_redis_db_connect_retries"], env["RAY_redis_db_connect_wait_milliseconds"]) == (
        "120",
        "500",
    )


def test_redis_cleanup_job_keeps_only_the_ray_container_and_references_secrets() -> None:
    password = {"valueFrom": {"secretKeyRef": {"name": "redis", "key": "password"}}}
    rc = cluster(
        enableInTreeAutoscaling=True,
        gcsFaultToleranceOptions={"redisAddress": "redis:6379", "redisPassword": password},
        authOptions={"mode": "token"},
        rayVersion="2.52.0",
    )
    assert len(head_pod(rc, settings=SETTINGS)["spec"]["containers"]) == 2
    job = redis_cleanup_job(rc, settings=BuildSettings(enable_login_shell=True))
    (ray,) = job["spec"]["template"]["spec"]["containers"]
    assert ray["command"] == ["/bin/bash", "-cl", "--"]
    env = {e["name"]: e for e in ray["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"] == password["valueFrom"]
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "rc", "key": "auth_token"}
    assert "value" not in env["RAY_AUTH_TOKEN"]


def test_redis_cleanup_job_does_not_mutate_the_cluster() -> None:
    rc = ft_cluster()
    before = rc.model_dump()
    redis_cleanup_job(rc, settings=SETTINGS)
    assert rc.model_dump() == before


def test_rest_paths_of_the_new_kinds() -> None:
    ing = head_ingress(cluster(head={"enableIngress": True}))
    assert resource_of(ing).path("ns") == "/apis/networking.k8s.io/v1/namespaces/ns/ingresses"
    job = redis_cleanup_job(ft_cluster(), settings=SETTINGS)
    assert (
        resource_of(job).path("ns", "rc-redis-cleanup")
        == "/apis/batch/v1/namespaces/ns/jobs/rc-redis-cleanup"
    )
