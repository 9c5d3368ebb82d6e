"""Spec checks KubeRay runs inside its controllers (RayCluster, RayJob, RayService) as pure functions.

Each `validate_*` returns None when the object is valid, else the first problem as one clear line (KubeRay's
message where it has one) for an event / status condition; the reconciler reports it and the object recovers
once the spec is fixed. The checks the CRD schema or its CEL rules already enforce at admission are repeated
here so objects that bypassed admission (older CRDs, raw stores) get the same message.

Implementation: RayCluster checks and name/label checks in :mod:`ray_operator.validation_cluster`, RayJob and
RayService checks in :mod:`ray_operator.validation_jobs`; this module is the public entry point.
"""

from __future__ import annotations

from ray_operator.validation_cluster import (
    autoscaler_v2,
    is_dns1035_label,
    label_key_error,
    label_value_error,
    raycluster_spec_error,
    validate_name,
    validate_raycluster,
)
from ray_operator.validation_jobs import validate_rayjob, validate_rayservice

__all__ = [
    "autoscaler_v2",
    "is_dns1035_label",
    "label_key_error",
    "label_value_error",
    "raycluster_spec_error",
    "validate_name",
    "validate_raycluster",
    "validate_rayjob",
    "validate_rayservice",
]
