"""RayService children: its RayClusters, head/serve Services, the Gateway API objects of
the incremental upgrade, and the spec hash KubeRay uses to detect cluster-level changes."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from ray_operator import constants as c
from ray_operator.builders import names
from ray_operator.builders.hashing import spec_hash
from ray_operator.builders.meta import owner_reference
from ray_operator.builders.services import head_service, head_service_ports
from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster, RayClusterSpec, RayService
from rayside.objects import JSON, labels_of, name_of

ANN_SPEC_HASH = "ray.io/hash-without-replicas-and-workers-to-delete"
ANN_NUM_WORKER_GROUPS = "ray.io/num-worker-groups"
GATEWAY_API = "gateway.networking.k8s.io/v1"


def serve_port(spec: RayClusterSpec) -> int:
    """The head container port named `serve`, else 8000."""
    for port in head_service_ports(spec.head_group_spec.template):
        if port["name"] == "serve":
            return int(port["port"])
    return c.DEFAULT_SERVE_PORT


def rayservice_cluster(
    service: RayService, *, name: str, settings: BuildSettings, pending_incremental: bool = False
) -> JSON:
    """The RayCluster `<svc>-<rand5>` for a RayService (pending incremental clusters leave replicas unset)."""
    spec_model = service.spec.ray_cluster_config
    if spec_model is None:
        raise ValueError("spec.rayClusterConfig is required to create a RayCluster for a RayService")
    spec = spec_model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    if pending_incremental:
        for group in spec.get("workerGroupSpecs") or []:
            group.pop("replicas", None)
    meta = service.metadata
    svc_name = str(meta.get("name", ""))
    labels = {
        **(meta.get("labels") or {}),
        c.LABEL_ORIGINATED_FROM_CR_NAME: svc_name,
        c.LABEL_ORIGINATED_FROM_CRD: c.KIND_RAYSERVICE,
    }
    annotations = {
        **(meta.get("annotations") or {}),
        ANN_SPEC_HASH: spec_hash(spec_model),
        ANN_NUM_WORKER_GROUPS: str(len(spec_model.worker_group_specs or [])),
        c.ANN_KUBERAY_VERSION: settings.kuberay_version,
    }
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_RAYCLUSTER,
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace") or "default",
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(meta, kind=c.KIND_RAYSERVICE)],
        },
        "spec": spec,
    }


def _service_meta(service: RayService, name: str, labels: Mapping[str, str]) -> JSON:
    return {
        "name": name,
        "namespace": service.metadata.get("namespace") or "default",
        "labels": dict(labels),
        "ownerReferences": [owner_reference(service.metadata, kind=c.KIND_RAYSERVICE)],
    }


def rayservice_head_service(service: RayService, cluster: RayCluster, *, settings: BuildSettings) -> JSON:
    """`<svc>-head-svc`: the active cluster's head Service, owned by the RayService."""
    built = head_service(cluster, settings=settings)
    svc_name = str(service.metadata.get("name", ""))
    labels = {**built["metadata"]["labels"], c.LABEL_ORIGINATED_FROM_CR_NAME: svc_name}
    labels[c.LABEL_ORIGINATED_FROM_CRD] = c.KIND_RAYSERVICE
    built["metadata"] = _service_meta(service, names.default_head_service_name(svc_name), labels)
    return built


def rayservice_serve_service(service: RayService, *, cluster_name: str, name: str | None = None) -> JSON:
    """`<svc>-serve-svc` (or `name`, e.g. `<cluster>-serve-svc` per cluster) selecting serve-ready Pods of
    `cluster_name` (`ray.io/serve=true`); `spec.serveService` is the base when given."""
    spec_model = service.spec.ray_cluster_config
    port = serve_port(spec_model) if spec_model is not None else c.DEFAULT_SERVE_PORT
    user = copy.deepcopy(service.spec.serve_service or {})
    svc_name = str(service.metadata.get("name", ""))
    spec: JSON = dict(user.get("spec") or {})
    spec["selector"] = {c.LABEL_CLUSTER: cluster_name, c.LABEL_SERVE: "true"}
    spec.setdefault("ports", [{"name": "serve", "port": port, "targetPort": port, "protocol": "TCP"}])
    spec.setdefault("type", "ClusterIP")
    labels = {
        **labels_of(user),
        c.LABEL_ORIGINATED_FROM_CR_NAME: svc_name,
        c.LABEL_ORIGINATED_FROM_CRD: c.KIND_RAYSERVICE,
        c.LABEL_SERVE: f"{svc_name}-serve",
    }
    service_name = name or name_of(user) or names.serve_service_name(svc_name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _service_meta(service, service_name, labels),
        "spec": spec,
    }


def gateway(service: RayService) -> JSON:
    """`<svc>-gateway` with one HTTP listener on port 80 (incremental upgrade)."""
    options = service.spec.upgrade_strategy.cluster_upgrade_options if service.spec.upgrade_strategy else None
    class_name = options.gateway_class_name if options is not None else None
    svc_name = str(service.metadata.get("name", ""))
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": _service_meta(service, f"{svc_name}-gateway", {}),
        "spec": {
            "gatewayClassName": class_name,
            "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
        },
    }


def http_route(service: RayService, backends: Sequence[tuple[str, int]]) -> JSON:
    """`<svc>-httproute`: prefix `/` to `<cluster>-serve-svc` backends with (cluster name, weight) pairs."""
    spec_model = service.spec.ray_cluster_config
    port = serve_port(spec_model) if spec_model is not None else c.DEFAULT_SERVE_PORT
    svc_name = str(service.metadata.get("name", ""))
    refs = [
        {"name": names.serve_service_name(cluster), "port": port, "weight": weight}
        for cluster, weight in backends
    ]
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": _service_meta(service, f"{svc_name}-httproute", {}),
        "spec": {
            "parentRefs": [
                {"name": f"{svc_name}-gateway", "namespace": service.metadata.get("namespace") or "default"}
            ],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": refs}],
        },
    }


def cluster_serve_service(service: RayService, cluster: JSON) -> JSON:
    """`<cluster>-serve-svc` of an incremental upgrade: owned by the RayCluster (collected with it), created
    once and never updated; selects that cluster's serve-ready Pods."""
    cluster_name = str((cluster.get("metadata") or {}).get("name", ""))
    built = rayservice_serve_service(
        service, cluster_name=cluster_name, name=names.serve_service_name(cluster_name)
    )
    built["metadata"]["labels"] = {
        c.LABEL_ORIGINATED_FROM_CR_NAME: cluster_name,
        c.LABEL_ORIGINATED_FROM_CRD: c.KIND_RAYSERVICE,
        c.LABEL_SERVE: f"{cluster_name}-serve",
    }
    built["metadata"]["ownerReferences"] = [
        owner_reference(cluster.get("metadata") or {}, kind=c.KIND_RAYCLUSTER)
    ]
    return built
