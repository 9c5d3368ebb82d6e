"""The head dashboard Ingress `<cluster>-head-ingress` (`headGroupSpec.enableIngress`).

KubeRay's shape: labels {cluster, identifier `<cluster>-head`, app name, created-by}; every cluster
annotation except `kubernetes.io/ingress.class`, whose value becomes `spec.ingressClassName`; one rule
(host from `ingressOptions.host`, any host otherwise) with one path (`ingressOptions.path` default `/`,
`pathType` default `Prefix`) to the head Service's `dashboard` port (8265 when the head has none); TLS from
`ingressOptions.tls`. The OpenShift Route variant is not built.
"""

from __future__ import annotations

import copy

from ray_operator import constants as c
from ray_operator.builders import names
from ray_operator.builders.meta import owner_reference
from ray_operator.builders.services import head_service_ports
from ray_operator.models import RayCluster
from rayside.objects import JSON

INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_DASHBOARD_PORT = 8265


def wants_ingress(cluster: RayCluster) -> bool:
    """Whether `headGroupSpec.enableIngress` is true."""
    return bool(cluster.spec.head_group_spec.enable_ingress)


def dashboard_port(cluster: RayCluster) -> int:
    """The head Service port named `dashboard`, else 8265."""
    for port in head_service_ports(cluster.spec.head_group_spec.template):
        if port["name"] == "dashboard":
            return int(port["port"])
    return DEFAULT_DASHBOARD_PORT


def head_ingress(cluster: RayCluster) -> JSON:
    """The `networking.k8s.io/v1` Ingress to the head dashboard, owned by the cluster."""
    name = str(cluster.metadata.get("name", ""))
    annotations = dict(cluster.metadata.get("annotations") or {})
    ingress_class = annotations.pop(INGRESS_CLASS_ANNOTATION, None)
    options = cluster.spec.head_group_spec.ingress_options or {}
    path: JSON = {
        "path": options.get("path") or "/",
        "pathType": options.get("pathType") or "Prefix",
        "backend": {
            "service": {
                "name": names.head_service_name(cluster),
                "port": {"number": dashboard_port(cluster)},
            }
        },
    }
    rule: JSON = {"http": {"paths": [path]}}
    if options.get("host"):
        rule["host"] = options["host"]
    spec: JSON = {"rules": [rule]}
    if options.get("tls"):
        spec["tls"] = copy.deepcopy(options["tls"])
    if ingress_class is not None:
        spec["ingressClassName"] = ingress_class
    metadata: JSON = {
        "name": names.ingress_name(name),
        "namespace": cluster.metadata.get("namespace", ""),
        "labels": {
            c.LABEL_CLUSTER: name,
            c.LABEL_IDENTIFIER: names.check_label(f"{name}-head"),
            c.LABEL_APP_NAME: c.APP_NAME,
            c.LABEL_CREATED_BY: c.CREATED_BY,
        },
        "ownerReferences": [owner_reference(cluster.metadata, kind=c.KIND_RAYCLUSTER)],
    }
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec}
