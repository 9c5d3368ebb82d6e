"""RayJob and RayService spec checks of KubeRay's controllers as pure functions.

:mod:`ray_operator.validation` re-exports :func:`validate_rayjob` and :func:`validate_rayservice`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import yaml

from ray_operator import constants as c
from ray_operator.builders.facts import parse_version
from ray_operator.builders.settings import BuildSettings
from ray_operator.features import RAY_JOB_DELETION_POLICY, RAY_SERVICE_INCREMENTAL_UPGRADE
from ray_operator.models import RayJob, RayService
from ray_operator.models.rayjob import DeletionRule, RayJobSpec
from ray_operator.schedulers import UnknownScheduler, scheduler_for
from ray_operator.validation_cluster import raycluster_spec_error, validate_name
from rayside.objects import name_of

_POLICY_ORDER = ("DeleteWorkers", "DeleteCluster", "DeleteSelf")


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
    """Metadata, spec and embedded cluster spec checks of a RayJob; None when valid."""
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
    """Metadata and spec checks of a RayService; None when valid."""
    meta = service.metadata
    problem = validate_name("RayService", str(meta.get("name", "")), c.MAX_RAYSERVICE_NAME)
    if problem:
        return problem
    cluster = service.spec.ray_cluster_config
    if cluster is not None:
        head_service = cluster.head_group_spec.head_service or {}
        if name_of(head_service):
            return "spec.rayClusterConfig.headGroupSpec.headService.metadata.name should not be set"
        if cluster.auth_options is not None and cluster.auth_options.enable_k8s_token_auth:
            return "authOptions.enableK8sTokenAuth is not supported for RayService"
    problem = next(_upgrade_errors(service, settings), None)
    if problem:
        return problem
    if cluster is not None:
        return raycluster_spec_error(cluster, settings, origin=c.KIND_RAYSERVICE)
    return None
