"""Typed pydantic v2 models of KubeRay's ray.io/v1 RayCluster, RayJob and RayService (camelCase on the wire).

Load with `RayCluster.model_validate(obj)`; write back with `.to_dict()` (=`model_dump(by_alias=True,
exclude_unset=True, mode="json")`), which reproduces the input exactly. Pod templates are free-form dicts.
"""

from ray_operator.models.common import Condition, KubeModel
from ray_operator.models.raycluster import (
    AuthOptions,
    AutoscalerOptions,
    GcsFaultToleranceOptions,
    HeadGroupSpec,
    RayCluster,
    RayClusterSpec,
    RayClusterStatus,
    WorkerGroupSpec,
)
from ray_operator.models.rayjob import (
    DeletionRule,
    DeletionStrategy,
    RayJob,
    RayJobSpec,
    RayJobStatus,
)
from ray_operator.models.rayservice import RayService, RayServiceSpec, RayServiceStatus

__all__ = [
    "AuthOptions",
    "AutoscalerOptions",
    "Condition",
    "DeletionRule",
    "DeletionStrategy",
    "GcsFaultToleranceOptions",
    "HeadGroupSpec",
    "KubeModel",
    "RayCluster",
    "RayClusterSpec",
    "RayClusterStatus",
    "RayJob",
    "RayJobSpec",
    "RayJobStatus",
    "RayService",
    "RayServiceSpec",
    "RayServiceStatus",
    "WorkerGroupSpec",
]
