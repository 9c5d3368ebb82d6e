"""The head Service, the multi-host headless worker Service and the serve Service."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ray_operator import constants as c
from ray_operator.builders import names
from ray_operator.builders.facts import cluster_facts
from ray_operator.builders.meta import owner_reference
from ray_operator.builders.resources import is_multi_host
from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster
from rayside.objects import JSON, annotations_of, labels_of


def head_service_ports(head_template: Mapping[str, Any]) -> list[JSON]:
    """Ports of head container[0] (unnamed ⇒ `<port>-port`), else the defaults; metrics always; sorted."""
    containers = (head_template.get("spec") or {}).get("containers") or [{}]
    ports: dict[str, int] = {}
    for port in containers[0].get("ports") or []:
        number = int(port["containerPort"])
        ports[str(port.get("name") or f"{number}-port")] = number
    if not ports:
        ports = dict(c.DEFAULT_HEAD_PORTS)
    ports.setdefault("metrics", c.DEFAULT_METRICS_PORT)
    return [
        {"name": name, "port": number, "targetPort": number, "protocol": "TCP", "appProtocol": "tcp"}
        for name, number in sorted(ports.items())
    ]


def head_service_labels(cluster: RayCluster, cr_name: str) -> dict[str, str]:
    """Labels (= selector) of the head Service."""
    template_labels = labels_of(cluster.spec.head_group_spec.template)
    return {
        c.LABEL_CLUSTER: cr_name,
        c.LABEL_NODE_TYPE: c.NODE_TYPE_HEAD,
        c.LABEL_IDENTIFIER: f"{cr_name}-head",
        c.LABEL_APP_NAME: str(template_labels.get(c.LABEL_APP_NAME, c.APP_NAME)),
        c.LABEL_CREATED_BY: c.CREATED_BY,
    }


def head_service(cluster: RayCluster, *, settings: BuildSettings) -> JSON:
    """The head Service `<cluster>-head-svc` (headless unless typed or ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE)."""
    facts = cluster_facts(cluster, settings)
    head = cluster.spec.head_group_spec
    labels = head_service_labels(cluster, facts.name)
    user = copy.deepcopy(head.head_service or {})
    spec: JSON = dict(user.get("spec") or {})
    spec["selector"] = dict(labels)
    existing = {p.get("name") for p in spec.get("ports") or []}
    spec["ports"] = [
        *(spec.get("ports") or []),
        *(p for p in head_service_ports(head.template) if p["name"] not in existing),
    ]
    service_type = spec.get("type") or head.service_type or "ClusterIP"
    spec["type"] = service_type
    if not user and service_type == "ClusterIP" and not settings.enable_head_cluster_ip_service:
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True
    annotations = {**annotations_of(user), **(cluster.spec.head_service_annotations or {})}
    metadata: JSON = {
        "name": facts.head_service,
        "namespace": facts.namespace,
        "labels": {**labels_of(user), **labels},
        "ownerReferences": [owner_reference(cluster.metadata, kind=c.KIND_RAYCLUSTER)],
    }
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def needs_headless_service(cluster: RayCluster) -> bool:
    """Whether some worker group has numOfHosts > 1."""
    return any(is_multi_host(g) for g in cluster.spec.worker_group_specs or [])


def headless_worker_service(cluster: RayCluster, *, settings: BuildSettings) -> JSON:
    """`<cluster>-headless`: headless Service selecting the cluster's workers (multi-host groups)."""
    facts = cluster_facts(cluster, settings)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names.headless_service_name(facts.name),
            "namespace": facts.namespace,
            "labels": {c.LABEL_HEADLESS_WORKER_SVC: facts.name},
            "ownerReferences": [owner_reference(cluster.metadata, kind=c.KIND_RAYCLUSTER)],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {c.LABEL_CLUSTER: facts.name, c.LABEL_NODE_TYPE: c.NODE_TYPE_WORKER},
        },
    }


class ServePortMissing(ValueError):
    """The head container has no port named `serve` / `serve-*`."""


SERVE_PORT_MISSING = (
    "the Ray head container has no port named 'serve' (or 'serve-<suffix>', e.g. 'serve-grpc'); "
    "add one or remove the annotation ray.io/enable-serve-service"
)


def wants_serve_service(cluster: RayCluster) -> bool:
    """Whether the cluster has annotation `ray.io/enable-serve-service: "true"` (exact value)."""
    return (cluster.metadata.get("annotations") or {}).get(c.ANN_ENABLE_SERVE_SERVICE) == "true"


def serve_service(cluster: RayCluster, *, settings: BuildSettings) -> JSON:
    """RayCluster-flavour `<cluster>-serve-svc`: selector `ray.io/cluster` only (the RayService flavour adds
    `ray.io/serve=true`), the head's `serve`/`serve-*` ports as {name, port}, type = head serviceType."""
    facts = cluster_facts(cluster, settings)
    ports = [
        {"name": p["name"], "port": p["port"]}
        for p in head_service_ports(cluster.spec.head_group_spec.template)
        if p["name"] == "serve" or p["name"].startswith("serve-")
    ]
    if not ports:
        raise ServePortMissing(SERVE_PORT_MISSING)
    spec: JSON = {"selector": {c.LABEL_CLUSTER: facts.name}, "ports": ports}
    if cluster.spec.head_group_spec.service_type:
        spec["type"] = cluster.spec.head_group_spec.service_type
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names.serve_service_name(facts.name),
            "namespace": facts.namespace,
            "labels": {
                c.LABEL_ORIGINATED_FROM_CR_NAME: facts.name,
                c.LABEL_ORIGINATED_FROM_CRD: c.KIND_RAYCLUSTER,
                c.LABEL_SERVE: f"{facts.name}-serve",
            },
            "ownerReferences": [owner_reference(cluster.metadata, kind=c.KIND_RAYCLUSTER)],
        },
        "spec": spec,
    }
