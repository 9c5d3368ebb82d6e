"""Typed RayService (`ray.io/v1`) spec and status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from ray_operator.models.common import Condition, Int32, Int64, KubeModel, ManagedBy, cel, k8s_type
from ray_operator.models.raycluster import RayClusterSpec, RayClusterStatus
from rayside.objects import JSON


class ClusterUpgradeOptions(KubeModel):
    """Incremental-upgrade knobs."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.stepSizePercent) || !has(self.maxSurgePercent) || "
                    "self.stepSizePercent <= self.maxSurgePercent",
                    "stepSizePercent must be less than or equal to maxSurgePercent",
                )
            ]
        }
    )

    max_surge_percent: Int32 | None = Field(default=None, ge=0, le=100, json_schema_extra={"default": 100})
    step_size_percent: Int32 | None = Field(default=None, ge=0, le=100)
    interval_seconds: Int32 | None = Field(default=None, ge=1)
    gateway_class_name: str | None = Field(default=None, min_length=1)


class ServiceUpgradeStrategy(KubeModel):
    """`spec.upgradeStrategy`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.type) || self.type != 'NewClusterWithIncrementalUpgrade' || "
                    "has(self.clusterUpgradeOptions)",
                    "upgradeStrategy.clusterUpgradeOptions is required for NewClusterWithIncrementalUpgrade",
                )
            ]
        }
    )

    type: Literal["NewCluster", "NewClusterWithIncrementalUpgrade", "None"] | None = None
    cluster_upgrade_options: ClusterUpgradeOptions | None = None


class RayServiceSpec(KubeModel):
    """`RayService.spec`."""

    serve_config_v2: str | None = Field(default=None, alias="serveConfigV2")
    ray_cluster_config: RayClusterSpec | None = None
    upgrade_strategy: ServiceUpgradeStrategy | None = None
    serve_service: JSON | None = Field(default=None, json_schema_extra=k8s_type("V1Service"))
    exclude_head_pod_from_serve_svc: bool | None = None
    ray_cluster_deletion_delay_seconds: Int32 | None = Field(default=None, ge=0)
    suspend: bool | None = None
    managed_by: ManagedBy | None = Field(
        default=None,
        json_schema_extra={
            "x-kubernetes-validations": [cel("self == oldSelf", "the managedBy field is immutable")]
        },
    )
    service_unhealthy_second_threshold: Int32 | None = None
    deployment_unhealthy_second_threshold: Int32 | None = None


class RayServiceStatusDetail(KubeModel):
    """`status.activeServiceStatus` / `status.pendingServiceStatus`."""

    ray_cluster_name: str | None = None
    ray_cluster_status: RayClusterStatus | None = None
    application_statuses: dict[str, JSON] | None = None
    target_capacity: Int32 | None = None
    traffic_routed_percent: Int32 | None = None
    last_traffic_migrated_time: str | None = None


class RayServiceStatus(KubeModel):
    """`RayService.status`."""

    conditions: list[Condition] | None = None
    service_status: str | None = None
    active_service_status: RayServiceStatusDetail | None = None
    pending_service_status: RayServiceStatusDetail | None = None
    num_serve_endpoints: Int32 | None = None
    last_update_time: str | None = None
    observed_generation: Int64 | None = None


class RayService(KubeModel):
    """A whole RayService object."""

    api_version: str = "ray.io/v1"
    kind: str = "RayService"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: RayServiceSpec
    status: RayServiceStatus | None = None
