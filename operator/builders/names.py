"""KubeRay's object names: pod name prefixes, service names, CheckName/CheckLabel."""

from __future__ import annotations

import string

from ray_operator.models import RayCluster
from rayside.objects import name_of

RAND_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""The alphabet of Kubernetes' `rand.String` (used by generateName and KubeRay's random suffixes)."""

_MAX_PREFIX = 50


def check_name(name: str) -> str:
    """KubeRay `CheckName`: keep the last 50 chars; a leading digit/punctuation becomes `r`."""
    if len(name) > _MAX_PREFIX:
        name = name[-_MAX_PREFIX:]
    if name and (name[0].isdigit() or name[0] in string.punctuation):
        name = "r" + name[1:]
    return name


def check_label(value: str) -> str:
    """KubeRay `CheckLabel`: keep the last 63 chars; a leading punctuation char becomes `r`."""
    if len(value) > 63:
        value = value[-63:]
    if value and value[0] in string.punctuation:
        value = "r" + value[1:]
    return value


def _prefix(base: str) -> str:
    return base[:_MAX_PREFIX].lower()


def head_pod_prefix(cluster_name: str) -> str:
    """generateName of the head Pod: `<cluster>-head-`."""
    return f"{_prefix(cluster_name)}-head-"


def worker_pod_prefix(cluster_name: str, group_name: str) -> str:
    """generateName of a worker Pod: `<cluster>-<group>-worker-` (`<cluster>-<group>` cut to 50, lower)."""
    return f"{_prefix(f'{cluster_name}-{group_name}')}-worker-"


def deterministic_head_pod_name(cluster_name: str) -> str:
    """Head Pod name with ENABLE_DETERMINISTIC_HEAD_POD_NAME=true: `<cluster>-head`."""
    return f"{_prefix(cluster_name)}-head"


def head_service_name(cluster: RayCluster) -> str:
    """`headGroupSpec.headService.metadata.name` if set, else `<cluster>-head-svc`."""
    head_service = cluster.spec.head_group_spec.head_service or {}
    custom = name_of(head_service)
    if custom:
        return str(custom)
    return default_head_service_name(str(cluster.metadata.get("name", "")))


def default_head_service_name(cr_name: str) -> str:
    """`<name>-head-svc` (RayCluster, or the RayJob/RayService-level head Service)."""
    return f"{cr_name}-head-svc"


def headless_service_name(cluster_name: str) -> str:
    """The multi-host worker Service: `<cluster>-headless`."""
    return f"{cluster_name}-headless"


def serve_service_name(cr_name: str) -> str:
    """`<name>-serve-svc`."""
    return f"{cr_name}-serve-svc"


def autoscaler_service_account_name(cluster: RayCluster) -> str:
    """The head template's serviceAccountName, else the cluster name (through CheckName)."""
    spec = cluster.spec.head_group_spec.template.get("spec") or {}
    return check_name(str(spec.get("serviceAccountName") or cluster.metadata.get("name", "")))


def auth_secret_name(cluster: RayCluster) -> str:
    """`authOptions.secretName`, else CheckName(<cluster>)."""
    auth = cluster.spec.auth_options
    if auth is not None and auth.secret_name:
        return auth.secret_name
    return check_name(str(cluster.metadata.get("name", "")))


def replica_name(group_name: str, suffix: str) -> str:
    """Multi-host replica name `<group>-<rand5>` (label `ray.io/worker-group-replica-name`)."""
    return f"{group_name}-{suffix}"


def fqdn(service_name: str, namespace: str, cluster_domain: str) -> str:
    """`<svc>.<ns>.svc.<domain>`."""
    return f"{service_name}.{namespace}.svc.{cluster_domain}"


def ingress_name(cluster_name: str) -> str:
    """The dashboard Ingress: CheckName(`<cluster>-head-ingress`)."""
    return check_name(f"{cluster_name}-head-ingress")


def redis_cleanup_job_name(cluster_name: str) -> str:
    """The GCS-FT Redis cleanup Job: CheckLabel(`<cluster>-redis-cleanup`) (at most 63 chars)."""
    return check_label(f"{cluster_name}-redis-cleanup")
