"""Typed RayJob (`ray.io/v1`) spec and status, with the CEL admission rules KubeRay's controller checks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.config import JsonValue

from ray_operator.models.common import Int32, Int64, KubeModel, ManagedBy, cel, k8s_type
from ray_operator.models.raycluster import RayClusterSpec, RayClusterStatus
from rayside.objects import JSON

SubmissionMode = Literal["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"]
DeletionPolicyType = Literal["DeleteCluster", "DeleteWorkers", "DeleteSelf", "DeleteNone"]
JobStatus = Literal["", "PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"]
JobDeploymentStatus = Literal[
    "",
    "Initializing",
    "Running",
    "Complete",
    "Failed",
    "ValidationFailed",
    "Suspending",
    "Suspended",
    "Retrying",
    "Waiting",
]
TERMINAL_JOB_STATUSES: frozenset[str] = frozenset({"STOPPED", "SUCCEEDED", "FAILED"})
TERMINAL_DEPLOYMENT_STATUSES: frozenset[str] = frozenset({"Complete", "Failed"})


class SubmitterConfig(KubeModel):
    """`spec.submitterConfig`."""

    backoff_limit: Int32 | None = Field(default=None, ge=0)


class DeletionPolicy(KubeModel):
    """Legacy `deletionStrategy.onSuccess` / `onFailure`."""

    policy: DeletionPolicyType | None = None


class DeletionCondition(KubeModel):
    """When a deletion rule fires: exactly one of jobStatus / jobDeploymentStatus, plus a TTL."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.jobStatus) != has(self.jobDeploymentStatus)",
                    "exactly one of jobStatus and jobDeploymentStatus must be set",
                )
            ]
        }
    )

    job_status: Literal["SUCCEEDED", "FAILED"] | None = None
    job_deployment_status: Literal["Failed"] | None = None
    ttl_seconds: Int32 | None = Field(default=None, ge=0, json_schema_extra={"default": 0})


class DeletionRule(KubeModel):
    """One `deletionStrategy.deletionRules[]` entry."""

    policy: DeletionPolicyType
    condition: DeletionCondition


class DeletionStrategy(KubeModel):
    """`spec.deletionStrategy`: legacy onSuccess+onFailure, or deletionRules (never both)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!((has(self.onSuccess) || has(self.onFailure)) && has(self.deletionRules))",
                    "Cannot use both legacy onSuccess/onFailure fields and deletionRules simultaneously",
                ),
                cel(
                    "has(self.deletionRules) || (has(self.onSuccess) && has(self.onFailure))",
                    "DeletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules "
                    "field (cannot be empty)",
                ),
            ]
        }
    )

    on_success: DeletionPolicy | None = None
    on_failure: DeletionPolicy | None = None
    deletion_rules: list[DeletionRule] | None = Field(default=None, min_length=1)


_SPEC_RULES: list[JsonValue] = [
    cel(
        "!has(self.suspend) || !self.suspend || "
        "(has(self.shutdownAfterJobFinishes) && self.shutdownAfterJobFinishes)",
        "a RayJob with shutdownAfterJobFinishes set to false is not allowed to be suspended",
    ),
    cel(
        "!has(self.ttlSecondsAfterFinished) || self.ttlSecondsAfterFinished == 0 || "
        "(has(self.shutdownAfterJobFinishes) && self.shutdownAfterJobFinishes)",
        "a RayJob with shutdownAfterJobFinishes set to false cannot have TTLSecondsAfterFinished",
    ),
    cel(
        "!(has(self.shutdownAfterJobFinishes) && self.shutdownAfterJobFinishes && "
        "has(self.deletionStrategy) && has(self.deletionStrategy.deletionRules))",
        "spec.shutdownAfterJobFinishes and spec.deletionStrategy.deletionRules are mutually exclusive",
    ),
    cel(
        "has(self.rayClusterSpec) || (has(self.clusterSelector) && size(self.clusterSelector) > 0)",
        "one of RayClusterSpec or ClusterSelector must be set",
    ),
    cel(
        "!has(self.clusterSelector) || size(self.clusterSelector) == 0 || "
        "!has(self.suspend) || !self.suspend",
        "the ClusterSelector mode doesn't support the suspend operation",
    ),
    cel(
        "!has(self.submissionMode) || self.submissionMode != 'SidecarMode' || "
        "!has(self.submitterPodTemplate)",
        "Currently, SidecarMode doesn't support SubmitterPodTemplate",
    ),
    cel(
        "!has(self.submissionMode) || self.submissionMode != 'SidecarMode' || !has(self.submitterConfig)",
        "Currently, SidecarMode doesn't support SubmitterConfig",
    ),
    cel(
        "!has(self.submissionMode) || self.submissionMode != 'SidecarMode' || "
        "!has(self.clusterSelector) || size(self.clusterSelector) == 0",
        "ClusterSelector is not supported in SidecarMode",
    ),
    cel(
        "!has(self.submissionMode) || self.submissionMode != 'InteractiveMode' || "
        "!has(self.backoffLimit) || self.backoffLimit == 0",
        "BackoffLimit is incompatible with InteractiveMode",
    ),
]


class RayJobSpec(KubeModel):
    """`RayJob.spec`."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _SPEC_RULES})

    entrypoint: str | None = None
    runtime_env_yaml: str | None = Field(default=None, alias="runtimeEnvYAML")
    job_id: str | None = None
    submission_mode: SubmissionMode | None = Field(default=None, json_schema_extra={"default": "K8sJobMode"})
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_resources: str | None = None
    metadata: dict[str, str] | None = None
    ray_cluster_spec: RayClusterSpec | None = None
    cluster_selector: dict[str, str] | None = None
    submitter_pod_template: JSON | None = Field(default=None, json_schema_extra=k8s_type("V1PodTemplateSpec"))
    submitter_config: SubmitterConfig | None = None
    shutdown_after_job_finishes: bool | None = None
    ttl_seconds_after_finished: Int32 | None = Field(default=None, ge=0, json_schema_extra={"default": 0})
    active_deadline_seconds: Int32 | None = Field(default=None, ge=1)
    pre_running_deadline_seconds: Int32 | None = Field(default=None, ge=1)
    backoff_limit: Int32 | None = Field(default=None, ge=0, json_schema_extra={"default": 0})
    suspend: bool | None = None
    managed_by: ManagedBy | None = Field(
        default=None,
        json_schema_extra={
            "x-kubernetes-validations": [cel("self == oldSelf", "the managedBy field is immutable")]
        },
    )
    deletion_strategy: DeletionStrategy | None = None


class RayJobInfo(KubeModel):
    """`status.rayJobInfo`: times reported by the Ray dashboard."""

    start_time: str | None = None
    end_time: str | None = None


class RayJobStatus(KubeModel):
    """`RayJob.status`."""

    job_id: str | None = None
    ray_cluster_name: str | None = None
    dashboard_url: str | None = Field(default=None, alias="dashboardURL")
    job_status: JobStatus | None = None
    job_deployment_status: JobDeploymentStatus | None = None
    reason: str | None = None
    message: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    succeeded: Int32 | None = Field(default=None, json_schema_extra={"default": 0})
    failed: Int32 | None = Field(default=None, json_schema_extra={"default": 0})
    ray_job_info: RayJobInfo | None = None
    ray_cluster_status: RayClusterStatus | None = None
    job_status_check_failure_start_time: str | None = None
    observed_generation: Int64 | None = None


class RayJob(KubeModel):
    """A whole RayJob object."""

    api_version: str = "ray.io/v1"
    kind: str = "RayJob"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: RayJobSpec
    status: RayJobStatus | None = None
