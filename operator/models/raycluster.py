"""Typed RayCluster (`ray.io/v1`) spec and status, with CEL admission rules for checks KubeRay does later."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from ray_operator.constants import MAX_INT32
from ray_operator.models.common import (
    Condition,
    Int32,
    Int64,
    KubeModel,
    ManagedBy,
    Quantity,
    cel,
    k8s_type,
)
from rayside.objects import JSON

_TEMPLATE_DOC = "Pod template; container[0] is the Ray container."


class ScaleStrategy(KubeModel):
    """Autoscaler scale-down requests."""

    workers_to_delete: list[str] | None = None


class WorkerGroupSpec(KubeModel):
    """One worker group (`spec.workerGroupSpecs[]`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.minReplicas) || !has(self.maxReplicas) || "
                    "self.minReplicas <= self.maxReplicas",
                    "minReplicas must be less than or equal to maxReplicas",
                ),
            ]
        }
    )

    group_name: str = Field(min_length=1, max_length=63)
    replicas: Int32 | None = Field(default=None, ge=0, json_schema_extra={"default": 0})
    min_replicas: Int32 | None = Field(default=None, ge=0, json_schema_extra={"default": 0})
    max_replicas: Int32 | None = Field(default=None, ge=0, json_schema_extra={"default": MAX_INT32})
    num_of_hosts: Int32 | None = Field(default=None, ge=0, json_schema_extra={"default": 1})  # 0 counts as 1
    idle_timeout_seconds: Int32 | None = Field(default=None, ge=0)
    priority: Int32 | None = None
    scale_strategy: ScaleStrategy | None = None
    suspend: bool | None = None
    ray_start_params: dict[str, str] | None = None
    template: JSON = Field(description=_TEMPLATE_DOC, json_schema_extra=k8s_type("V1PodTemplateSpec"))
    resources: dict[str, str] | None = None
    labels: dict[str, str] | None = None


class HeadGroupSpec(KubeModel):
    """The head group (`spec.headGroupSpec`)."""

    template: JSON = Field(description=_TEMPLATE_DOC, json_schema_extra=k8s_type("V1PodTemplateSpec"))
    ray_start_params: dict[str, str] | None = None
    service_type: str | None = None
    head_service: JSON | None = Field(default=None, json_schema_extra=k8s_type("V1Service"))
    enable_ingress: bool | None = None
    ingress_options: JSON | None = None
    resources: dict[str, str] | None = None
    labels: dict[str, str] | None = None


class AutoscalerOptions(KubeModel):
    """Options of the in-tree autoscaler sidecar."""

    resources: JSON | None = Field(default=None, json_schema_extra=k8s_type("V1ResourceRequirements"))
    image: str | None = None
    image_pull_policy: Literal["Always", "Never", "IfNotPresent"] | None = None
    security_context: JSON | None = Field(default=None, json_schema_extra=k8s_type("V1SecurityContext"))
    idle_timeout_seconds: Int32 | None = Field(default=None, ge=0)
    upscaling_mode: Literal["Default", "Aggressive", "Conservative"] | None = None
    version: Literal["v1", "v2"] | None = None
    env: list[JSON] | None = Field(default=None, json_schema_extra=k8s_type("List[V1EnvVar]"))
    env_from: list[JSON] | None = Field(default=None, json_schema_extra=k8s_type("List[V1EnvFromSource]"))
    volume_mounts: list[JSON] | None = Field(default=None, json_schema_extra=k8s_type("List[V1VolumeMount]"))
    command: list[str] | None = None
    args: list[str] | None = None


class AuthOptions(KubeModel):
    """Ray token authentication: mode, an existing Secret, or Kubernetes token auth."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.secretName) || !has(self.enableK8sTokenAuth) || !self.enableK8sTokenAuth",
                    "authOptions.secretName cannot be used with authOptions.enableK8sTokenAuth",
                ),
                cel(
                    "!has(self.secretName) || (has(self.mode) && self.mode == 'token')",
                    "authOptions.secretName requires authOptions.mode 'token'",
                ),
            ]
        }
    )

    mode: Literal["disabled", "token"] | None = None
    secret_name: str | None = Field(default=None, min_length=1)
    enable_k8s_token_auth: bool | None = Field(default=None, alias="enableK8sTokenAuth")


class RedisCredential(KubeModel):
    """A Redis username/password: literal value or valueFrom (secretKeyRef...)."""

    value: str | None = None
    value_from: JSON | None = Field(default=None, json_schema_extra=k8s_type("V1EnvVarSource"))


class GcsFaultToleranceOptions(KubeModel):
    """GCS fault tolerance (external Redis, or [post-1.5] embedded RocksDB)."""

    redis_address: str | None = None
    redis_username: RedisCredential | None = None
    redis_password: RedisCredential | None = None
    external_storage_namespace: str | None = None
    backend: Literal["redis", "rocksdb"] | None = None
    storage: JSON | None = None


class ClusterUpgradeStrategy(KubeModel):
    """RayCluster `upgradeStrategy` [post-1.5]."""

    type: Literal["Recreate", "None"] | None = None


class RayClusterSpec(KubeModel):
    """`RayCluster.spec` (also embedded in RayJob.rayClusterSpec and RayService.rayClusterConfig)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.enableInTreeAutoscaling) || !self.enableInTreeAutoscaling || "
                    "!has(self.workerGroupSpecs) || "
                    "self.workerGroupSpecs.all(g, !has(g.suspend) || !g.suspend)",
                    "worker groups cannot be suspended with Autoscaler enabled",
                ),
            ]
        }
    )

    ray_version: str | None = None
    enable_in_tree_autoscaling: bool | None = None
    autoscaler_options: AutoscalerOptions | None = None
    head_group_spec: HeadGroupSpec
    worker_group_specs: list[WorkerGroupSpec] | None = Field(
        default=None,
        description="Worker groups; group names are unique (enforced as a list-map keyed by groupName).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["groupName"]},
    )
    head_service_annotations: dict[str, str] | None = None
    suspend: bool | None = None
    managed_by: ManagedBy | None = Field(
        default=None,
        json_schema_extra={
            "x-kubernetes-validations": [cel("self == oldSelf", "the managedBy field is immutable")]
        },
    )
    auth_options: AuthOptions | None = None
    gcs_fault_tolerance_options: GcsFaultToleranceOptions | None = None
    upgrade_strategy: ClusterUpgradeStrategy | None = None
    network_policy: JSON | None = None
    tls_options: JSON | None = None
    history_server_options: JSON | None = None


class HeadInfo(KubeModel):
    """`status.head`."""

    pod_ip: str | None = Field(default=None, alias="podIP")
    pod_name: str | None = None
    service_ip: str | None = Field(default=None, alias="serviceIP")
    service_name: str | None = None


class RayClusterStatus(KubeModel):
    """`RayCluster.status`."""

    state: str | None = None
    reason: str | None = None
    conditions: list[Condition] | None = None
    ready_worker_replicas: Int32 | None = None
    available_worker_replicas: Int32 | None = None
    desired_worker_replicas: Int32 | None = None
    min_worker_replicas: Int32 | None = None
    max_worker_replicas: Int32 | None = None
    desired_cpu: Quantity | None = Field(default=None, alias="desiredCPU")
    desired_memory: Quantity | None = None
    desired_gpu: Quantity | None = Field(default=None, alias="desiredGPU")
    desired_tpu: Quantity | None = Field(default=None, alias="desiredTPU")
    endpoints: dict[str, str] | None = None
    head: HeadInfo | None = None
    last_update_time: str | None = None
    state_transition_times: dict[str, str] | None = None
    observed_generation: Int64 | None = None


class RayCluster(KubeModel):
    """A whole RayCluster object."""

    api_version: str = "ray.io/v1"
    kind: str = "RayCluster"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: RayClusterSpec
    status: RayClusterStatus | None = None
