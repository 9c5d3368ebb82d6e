"""RayCluster spec checks of KubeRay's controllers (spec, auth options) and the shared name/label checks.

Pure functions; :mod:`ray_operator.validation` re-exports the public names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ray_operator import constants as c
from ray_operator.builders.facts import parse_version
from ray_operator.builders.raystart import GroupStart, RayStartConflict, check_conflicts
from ray_operator.builders.settings import BuildSettings
from ray_operator.features import RAY_JOB_DELETION_POLICY
from ray_operator.models import RayCluster, RayClusterSpec, WorkerGroupSpec
from ray_operator.schedulers import UnknownScheduler, scheduler_for
from rayside.quantity import QuantityError, parse_quantity

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ALPHA_FIELDS = {
    "network_policy": ("networkPolicy", "RayClusterNetworkPolicy"),
    "tls_options": ("tlsOptions", "RayClusterMTLS"),
    "history_server_options": ("historyServerOptions", "RayClusterHistoryServer"),
}


def is_dns1035_label(name: str) -> bool:
    """A DNS-1035 label: lower-case alphanumerics and '-', starting with a letter, at most 63 chars."""
    return len(name) <= 63 and bool(_DNS1035.match(name))


def label_key_error(key: str) -> str | None:
    """Why key is not a valid qualified label name, or None."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return f"label key {key!r} has an invalid prefix (must be a DNS subdomain)"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return (
            f"label key {key!r} is invalid (at most 63 alphanumerics, '-', '_', '.', alphanumeric at "
            "both ends)"
        )
    return None


def label_value_error(key: str, value: str) -> str | None:
    """Why value is not a valid label value, or None."""
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        return f"label {key!r} has invalid value {value!r} (at most 63 alphanumerics, '-', '_', '.')"
    return None


def validate_name(kind: str, name: str, limit: int) -> str | None:
    """Name length and DNS-1035 check with KubeRay's wording."""
    if len(name) > limit:
        return f"{kind} name should be no more than {limit} characters"
    if not is_dns1035_label(name):
        return f"{kind} name {name!r} should be a valid DNS-1035 label (lower-case letters, digits and '-')"
    return None


def _containers(template: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((template.get("spec") or {}).get("containers") or [])


def _env(template: Mapping[str, Any]) -> dict[str, str]:
    containers = _containers(template)
    env = containers[0].get("env") or [] if containers else []
    return {str(e.get("name")): str(e.get("value", "")) for e in env if e.get("name")}


def _autoscaler_v2_env(spec: RayClusterSpec) -> bool:
    return _env(spec.head_group_spec.template).get("RAY_enable_autoscaler_v2", "").lower() in ("1", "true")


def autoscaler_v2(spec: RayClusterSpec) -> bool:
    """Autoscaler v2 selected? (autoscalerOptions.version v2 or head env RAY_enable_autoscaler_v2)."""
    options = spec.autoscaler_options
    return bool(spec.enable_in_tree_autoscaling) and (
        (options is not None and options.version == "v2") or _autoscaler_v2_env(spec)
    )


def _group_errors(group: WorkerGroupSpec, spec: RayClusterSpec, settings: BuildSettings) -> Iterator[str]:
    name = group.group_name
    if not _containers(group.template):
        yield "workerGroupSpec should have at least one container"
    low, high = group.min_replicas or 0, group.max_replicas if group.max_replicas is not None else c.MAX_INT32
    if low < 0:
        yield f"worker group {name} has negative minReplicas {low}"
    if low > high:
        yield f"worker group {name} has minReplicas {low} greater than maxReplicas {high}"
    if group.num_of_hosts is not None and group.num_of_hosts < 0:  # KubeRay counts 0 as 1: so do we
        yield f"worker group {name} has numOfHosts {group.num_of_hosts}; it must be at least 0"
    if group.suspend:
        if not settings.feature_gates.enabled(RAY_JOB_DELETION_POLICY):
            yield (
                f"worker group {name} can be suspended only when the RayJobDeletionPolicy feature "
                "gate is enabled"
            )
        if spec.enable_in_tree_autoscaling:
            yield f"worker group {name} cannot be suspended with Autoscaler enabled"
    if group.idle_timeout_seconds is not None:
        if group.idle_timeout_seconds < 0:
            yield f"worker group {name} has negative idleTimeoutSeconds {group.idle_timeout_seconds}"
        elif not autoscaler_v2(spec):
            yield (
                f"worker group {name} has idleTimeoutSeconds set, which requires autoscaler v2 "
                "(autoscalerOptions.version: v2 or head env RAY_enable_autoscaler_v2=1)"
            )
    yield from _start_errors(name, group.ray_start_params, group.resources, group.labels)


def _start_errors(
    label: str,
    params: Mapping[str, str] | None,
    resources: Mapping[str, str] | None,
    labels: Mapping[str, str] | None,
) -> Iterator[str]:
    start = GroupStart(label, False, params or {}, resources or {}, labels or {}, {}, "", False)
    try:
        check_conflicts(start)
    except RayStartConflict as exc:
        yield str(exc)
    for key, raw in (resources or {}).items():
        try:
            parse_quantity(raw)
        except QuantityError:
            yield f"{label} group: resources[{key!r}]={raw!r} is not a quantity (examples: 2, 500m, 1Gi)"
    for key, value in (labels or {}).items():
        problem = label_key_error(key) or label_value_error(key, value)
        if problem:
            yield f"{label} group: {problem}"


def _auth_errors(spec: RayClusterSpec) -> Iterator[str]:
    auth = spec.auth_options
    if auth is None:
        return
    if auth.mode == "token":
        version = parse_version(spec.ray_version)
        if version is None or version < c.MIN_TOKEN_AUTH_RAY_VERSION:
            yield (
                "authOptions.mode is 'token' but minimum Ray version is 2.52.0, got "
                f"{spec.ray_version or 'none'}"
            )
    if auth.enable_k8s_token_auth:
        if auth.secret_name:
            yield "authOptions.enableK8sTokenAuth cannot be used together with authOptions.secretName"
        version = parse_version(spec.ray_version)
        if version is None or version < (2, 55, 0):
            yield (
                "authOptions.enableK8sTokenAuth requires Ray 2.55.0 or newer, got "
                f"{spec.ray_version or 'none'}"
            )


def _autoscaler_errors(spec: RayClusterSpec) -> Iterator[str]:
    env_v2 = _autoscaler_v2_env(spec)
    if env_v2 and not spec.enable_in_tree_autoscaling:
        yield "RAY_enable_autoscaler_v2 is set on the head container but enableInTreeAutoscaling is not true"
    options = spec.autoscaler_options
    if (
        options is not None
        and options.version is not None
        and "RAY_enable_autoscaler_v2" in _env(spec.head_group_spec.template)
    ):
        yield "autoscalerOptions.version and the head env RAY_enable_autoscaler_v2 cannot both be set"
    if autoscaler_v2(spec):
        templates = [("head", spec.head_group_spec.template)]
        templates += [(g.group_name, g.template) for g in spec.worker_group_specs or []]
        for name, template in templates:
            policy = (template.get("spec") or {}).get("restartPolicy")
            if policy not in (None, "", "Never"):
                yield f"autoscaler v2 requires restartPolicy Never or unset, but group {name} has {policy!r}"


def _ft_errors(spec: RayClusterSpec, annotations: Mapping[str, str]) -> Iterator[str]:
    head_params = spec.head_group_spec.ray_start_params or {}
    env = _env(spec.head_group_spec.template)
    if "redis-username" in head_params or "REDIS_USERNAME" in env:
        yield (
            "cannot set redis-username in rayStartParams or REDIS_USERNAME in the head env; use "
            "gcsFaultToleranceOptions"
        )
    options = spec.gcs_fault_tolerance_options
    if options is None:
        if "RAY_REDIS_ADDRESS" in env and annotations.get(c.ANN_FT_ENABLED, "").lower() != "true":
            yield "RAY_REDIS_ADDRESS is set on the head container but gcsFaultToleranceOptions is not set"
        return
    if c.ANN_FT_ENABLED in annotations:
        yield f"{c.ANN_FT_ENABLED} annotation should not be set together with gcsFaultToleranceOptions"
    if "redis-password" in head_params:
        yield "cannot set redis-password in rayStartParams when gcsFaultToleranceOptions is set"
    for name in ("REDIS_PASSWORD", "RAY_REDIS_ADDRESS"):
        if name in env:
            yield f"cannot set the head env {name} when gcsFaultToleranceOptions is set"
    if c.ANN_EXTERNAL_STORAGE_NS in annotations:
        yield f"cannot set the {c.ANN_EXTERNAL_STORAGE_NS} annotation when gcsFaultToleranceOptions is set"


def _template_quantity_errors(group: str, template: Mapping[str, Any]) -> Iterator[str]:
    for container in _containers(template):
        resources = container.get("resources") or {}
        for kind in ("limits", "requests"):
            for key, raw in (resources.get(kind) or {}).items():
                try:
                    parse_quantity(raw)
                except QuantityError:
                    where = f"container {container.get('name')} resources.{kind}[{key!r}]"
                    yield f"{group} group: {where}={raw!r} is not a quantity"


def _spec_errors(
    spec: RayClusterSpec, settings: BuildSettings, annotations: Mapping[str, str], origin: str
) -> Iterator[str]:
    if not _containers(spec.head_group_spec.template):
        yield "headGroupSpec should have at least one container"
    yield from _template_quantity_errors("Head", spec.head_group_spec.template)
    for group in spec.worker_group_specs or []:
        yield from _template_quantity_errors(group.group_name, group.template)
    head = spec.head_group_spec
    yield from _start_errors("Head", head.ray_start_params, head.resources, head.labels)
    seen: set[str] = set()
    for group in spec.worker_group_specs or []:
        if group.group_name in seen:
            yield f"worker group names must be unique; {group.group_name!r} is used twice"
        seen.add(group.group_name)
        yield from _group_errors(group, spec, settings)
    yield from _ft_errors(spec, annotations)
    yield from _autoscaler_errors(spec)
    yield from _auth_errors(spec)
    for attr, (field, gate) in _ALPHA_FIELDS.items():
        if getattr(spec, attr) is not None and not settings.feature_gates.enabled(gate):
            yield f"{field} requires the {gate} feature gate"
    if spec.upgrade_strategy is not None and origin in (c.KIND_RAYJOB, c.KIND_RAYSERVICE):
        yield f"upgradeStrategy is not supported on a RayCluster created by a {origin}"


def raycluster_spec_error(
    spec: RayClusterSpec,
    settings: BuildSettings,
    *,
    annotations: Mapping[str, str] | None = None,
    origin: str = c.KIND_RAYCLUSTER,
) -> str | None:
    """The first problem of a RayCluster spec (also used for RayJob/RayService embedded specs), or None."""
    return next(_spec_errors(spec, settings, annotations or {}, origin), None)


def validate_raycluster(cluster: RayCluster, settings: BuildSettings) -> str | None:
    """Metadata then spec checks of a RayCluster; None when valid."""
    meta = cluster.metadata
    problem = validate_name("RayCluster", str(meta.get("name", "")), c.MAX_RAYCLUSTER_NAME)
    if problem:
        return problem
    try:
        scheduler_for(meta, settings)
    except UnknownScheduler as exc:
        return str(exc)
    origin = str((meta.get("labels") or {}).get(c.LABEL_ORIGINATED_FROM_CRD, c.KIND_RAYCLUSTER))
    return raycluster_spec_error(
        cluster.spec, settings, annotations=meta.get("annotations") or {}, origin=origin
    )
