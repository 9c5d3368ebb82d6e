"""Spec checks KubeRay runs inside its controllers (operator-spec §2.2, §3, §4.2, §7) as pure functions.

Each `validate_*` returns None when the object is valid, else the first problem as one clear line (KubeRay's
message where it has one) for an event / status condition; the reconciler reports it and the object recovers
once the spec is fixed. The checks the CRD schema or its CEL rules already enforce at admission are repeated
here so objects that bypassed admission (older CRDs, raw stores) get the same message.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from ray_operator import constants as c
from ray_operator.builders.facts import parse_version
from ray_operator.builders.quantity import QuantityError, parse_quantity
from ray_operator.builders.raystart import GroupStart, RayStartConflict, check_conflicts
from ray_operator.builders.settings import BuildSettings
from ray_operator.features import RAY_JOB_DELETION_POLICY, RAY_SERVICE_INCREMENTAL_UPGRADE
from ray_operator.models import RayCluster, RayClusterSpec, RayJob, RayService, WorkerGroupSpec
from ray_operator.models.rayjob import DeletionRule, RayJobSpec
from ray_operator.schedulers import UnknownScheduler, scheduler_for

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ALPHA_FIELDS = {
    "network_policy": ("networkPolicy", "RayClusterNetworkPolicy"),
    "tls_options": ("tlsOptions", "RayClusterMTLS"),
    "history_server_options": ("historyServerOptions", "RayClusterHistoryServer"),
}
_POLICY_ORDER = ("DeleteWorkers", "DeleteCluster", "DeleteSelf")


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
    if group.num_of_hosts is not None and group.num_of_hosts < 1:
        yield f"worker group {name} has numOfHosts {group.num_of_hosts}; it must be at least 1"
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
    """Metadata then spec checks of a RayCluster; None when valid (operator-spec §2.2 steps 3-4)."""
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


def _autoscaling(spec: RayJobSpec) -> bool:
    return spec.ray_cluster_spec is not None and bool(spec.ray_cluster_spec.enable_in_tree_autoscaling)


def _legacy_deletion_errors(spec: RayJobSpec) -> Iterator[str]:
    strategy = spec.deletion_strategy
    assert strategy is not None
    if strategy.on_success is None or strategy.on_failure is None:
        yield (
            "both DeletionStrategy.OnSuccess and DeletionStrategy.OnFailure must be set when "
            "using the legacy "
            "deletion policy fields of DeletionStrategy"
        )
        return
    for label, policy in (
        ("OnSuccess", strategy.on_success.policy),
        ("OnFailure", strategy.on_failure.policy),
    ):
        if policy is None:
            yield (
                f"the DeletionPolicyType field of DeletionStrategy.{label} cannot be unset when "
                "DeletionStrategy is enabled"
            )
        elif spec.cluster_selector and policy in ("DeleteCluster", "DeleteWorkers"):
            yield f"the ClusterSelector mode doesn't support DeletionStrategy={policy}"
        elif policy == "DeleteWorkers" and _autoscaling(spec):
            yield (
                "DeletionStrategy=DeleteWorkers currently does not support RayCluster with "
                "autoscaling enabled"
            )
        elif policy == "DeleteNone" and spec.shutdown_after_job_finishes:
            yield "shutdownAfterJobFinshes is set to 'true' while deletion policy is 'DeleteNone'"


def _condition_key(rule: DeletionRule) -> str:
    cond = rule.condition
    if cond.job_status is not None:
        return f"JobStatus '{cond.job_status}'"
    return f"JobDeploymentStatus '{cond.job_deployment_status}'"


def _rule_errors(spec: RayJobSpec, rules: list[DeletionRule]) -> Iterator[str]:
    seen: set[tuple[str, str]] = set()
    ttls: dict[str, dict[str, int]] = {}
    for i, rule in enumerate(rules):
        cond = rule.condition
        if (cond.job_status is None) == (cond.job_deployment_status is None):
            yield (
                f"deletionRules[{i}]: exactly one of condition.jobStatus and "
                "condition.jobDeploymentStatus must be set"
            )
            continue
        ttl = cond.ttl_seconds or 0
        if ttl < 0:
            yield f"deletionRules[{i}]: ttlSeconds must be a non-negative integer"
        if spec.cluster_selector and rule.policy in ("DeleteCluster", "DeleteWorkers"):
            yield (
                f"deletionRules[{i}]: the ClusterSelector mode doesn't support DeletionStrategy={rule.policy}"
            )
        if rule.policy == "DeleteWorkers" and _autoscaling(spec):
            yield (
                f"deletionRules[{i}]: DeleteWorkers currently does not support RayCluster with "
                "autoscaling enabled"
            )
        key = _condition_key(rule)
        if (key, rule.policy) in seen:
            yield f"deletionRules[{i}]: duplicate rule for {key} with policy {rule.policy}"
        seen.add((key, rule.policy))
        ttls.setdefault(key, {})[rule.policy] = ttl
    for key, by_policy in ttls.items():
        present = [p for p in _POLICY_ORDER if p in by_policy]
        for lower, higher in itertools.pairwise(present):
            if by_policy[higher] < by_policy[lower]:
                yield (
                    f"for {key}: {higher} TTL ({by_policy[higher]}) must be >= {lower} TTL "
                    f"({by_policy[lower]})"
                )


def _deletion_errors(spec: RayJobSpec, settings: BuildSettings) -> Iterator[str]:
    strategy = spec.deletion_strategy
    if strategy is None:
        return
    if not settings.feature_gates.enabled(RAY_JOB_DELETION_POLICY):
        yield "RayJobDeletionPolicy feature gate must be enabled to use DeletionStrategy"
        return
    legacy = strategy.on_success is not None or strategy.on_failure is not None
    if strategy.deletion_rules is not None and spec.shutdown_after_job_finishes:
        yield "spec.shutdownAfterJobFinishes and spec.deletionStrategy.deletionRules are mutually exclusive"
    if legacy and strategy.deletion_rules is not None:
        yield "Cannot use both legacy onSuccess/onFailure fields and deletionRules simultaneously"
    elif legacy:
        yield from _legacy_deletion_errors(spec)
    elif not strategy.deletion_rules:
        yield (
            "DeletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules "
            "field (cannot be empty)"
        )
    else:
        problems = list(_rule_errors(spec, strategy.deletion_rules))
        if problems:
            yield "; ".join(problems)


def _mode_errors(spec: RayJobSpec) -> Iterator[str]:
    mode = spec.submission_mode or "K8sJobMode"
    if mode == "SidecarMode":
        if spec.submitter_pod_template is not None:
            yield "Currently, SidecarMode doesn't support SubmitterPodTemplate"
        if spec.submitter_config is not None:
            yield "Currently, SidecarMode doesn't support SubmitterConfig"
        if spec.cluster_selector:
            yield "ClusterSelector is not supported in SidecarMode"
        if spec.ray_cluster_spec is not None:
            policy = (spec.ray_cluster_spec.head_group_spec.template.get("spec") or {}).get("restartPolicy")
            if policy not in (None, "", "Never"):
                yield f"SidecarMode requires the head restartPolicy to be Never or unset, got {policy!r}"
    if mode == "InteractiveMode" and (spec.backoff_limit or 0) > 0:
        yield "BackoffLimit is incompatible with InteractiveMode"


def _job_spec_errors(spec: RayJobSpec, settings: BuildSettings) -> Iterator[str]:
    if spec.suspend and not spec.shutdown_after_job_finishes:
        yield "a RayJob with shutdownAfterJobFinishes set to false is not allowed to be suspended"
    ttl = spec.ttl_seconds_after_finished
    if ttl is not None and ttl < 0:
        yield "TTLSecondsAfterFinished must be a non-negative integer"
    if ttl and not spec.shutdown_after_job_finishes:
        yield "a RayJob with shutdownAfterJobFinishes set to false cannot have TTLSecondsAfterFinished"
    yield from _deletion_errors(spec, settings)
    if spec.cluster_selector is not None:
        if spec.suspend:
            yield "the ClusterSelector mode doesn't support the suspend operation"
        if not spec.cluster_selector.get(c.LABEL_CLUSTER):
            yield "cluster name in ClusterSelector should not be empty"
        if (spec.backoff_limit or 0) > 0:
            yield "BackoffLimit is incompatible with ClusterSelector mode"
    elif spec.ray_cluster_spec is None:
        yield "one of RayClusterSpec or ClusterSelector must be set"
    yield from _mode_errors(spec)
    yield from _job_value_errors(spec)


def _job_value_errors(spec: RayJobSpec) -> Iterator[str]:
    if spec.runtime_env_yaml:
        try:
            yaml.safe_load(spec.runtime_env_yaml)
        except yaml.YAMLError as exc:
            yield f"runtimeEnvYAML is not valid YAML: {str(exc).splitlines()[0]}"
    if spec.active_deadline_seconds is not None and spec.active_deadline_seconds <= 0:
        yield f"activeDeadlineSeconds should be a positive integer, got {spec.active_deadline_seconds}"
    if spec.pre_running_deadline_seconds is not None and spec.pre_running_deadline_seconds <= 0:
        yield (
            f"preRunningDeadlineSeconds should be a positive integer, got {spec.pre_running_deadline_seconds}"
        )
    if spec.backoff_limit is not None and spec.backoff_limit < 0:
        yield "backoffLimit must be a positive integer"
    if spec.metadata and spec.ray_cluster_spec is not None:
        version = parse_version(spec.ray_cluster_spec.ray_version)
        if version is not None and version < (2, 6, 0):
            yield "the metadata field requires Ray 2.6.0 or newer"


def validate_rayjob(job: RayJob, settings: BuildSettings) -> str | None:
    """Metadata, spec and embedded cluster spec checks of a RayJob; None when valid (operator-spec §4.2)."""
    meta = job.metadata
    problem = validate_name("RayJob", str(meta.get("name", "")), c.MAX_RAYJOB_NAME)
    if problem:
        return f"The RayJob metadata is invalid: {problem}"
    try:
        scheduler_for(meta, settings)
    except UnknownScheduler as exc:
        return str(exc)
    problem = next(_job_spec_errors(job.spec, settings), None)
    if problem:
        return problem
    if job.spec.ray_cluster_spec is not None:
        problem = raycluster_spec_error(job.spec.ray_cluster_spec, settings, origin=c.KIND_RAYJOB)
        if problem:
            return f"The RayJob spec is invalid: {problem}"
    status = job.status.job_deployment_status if job.status is not None else None
    if status == "Waiting" and (job.spec.submission_mode or "K8sJobMode") != "InteractiveMode":
        return "jobDeploymentStatus Waiting is only allowed in InteractiveMode"
    return None


def _upgrade_errors(service: RayService, settings: BuildSettings) -> Iterator[str]:
    strategy = service.spec.upgrade_strategy
    if strategy is None or strategy.type != "NewClusterWithIncrementalUpgrade":
        return
    if not settings.feature_gates.enabled(RAY_SERVICE_INCREMENTAL_UPGRADE):
        yield "NewClusterWithIncrementalUpgrade requires the RayServiceIncrementalUpgrade feature gate"
    cluster = service.spec.ray_cluster_config
    if cluster is None or not cluster.enable_in_tree_autoscaling:
        yield "NewClusterWithIncrementalUpgrade requires enableInTreeAutoscaling to be true"
    options = strategy.cluster_upgrade_options
    if options is None:
        yield "upgradeStrategy.clusterUpgradeOptions is required for NewClusterWithIncrementalUpgrade"
        return
    surge = options.max_surge_percent if options.max_surge_percent is not None else 100
    if options.step_size_percent is None or not 0 <= options.step_size_percent <= surge:
        yield f"stepSizePercent must be between 0 and maxSurgePercent ({surge})"
    if options.interval_seconds is None or options.interval_seconds <= 0:
        yield "intervalSeconds must be greater than 0"
    if not options.gateway_class_name:
        yield "gatewayClassName must be set"


def validate_rayservice(service: RayService, settings: BuildSettings) -> str | None:
    """Metadata and spec checks of a RayService; None when valid (operator-spec §7)."""
    meta = service.metadata
    problem = validate_name("RayService", str(meta.get("name", "")), c.MAX_RAYSERVICE_NAME)
    if problem:
        return problem
    cluster = service.spec.ray_cluster_config
    if cluster is not None:
        head_service = cluster.head_group_spec.head_service or {}
        if (head_service.get("metadata") or {}).get("name"):
            return "spec.rayClusterConfig.headGroupSpec.headService.metadata.name should not be set"
        if cluster.auth_options is not None and cluster.auth_options.enable_k8s_token_auth:
            return "authOptions.enableK8sTokenAuth is not supported for RayService"
    problem = next(_upgrade_errors(service, settings), None)
    if problem:
        return problem
    if cluster is not None:
        return raycluster_spec_error(cluster, settings, origin=c.KIND_RAYSERVICE)
    return None
