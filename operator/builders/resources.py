"""Pod and cluster resource totals (status `desired*`, Volcano/YuniKorn minResources), as exact Decimals."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from ray_operator.builders.quantity import parse_quantity
from ray_operator.constants import MAX_INT32
from ray_operator.models import RayClusterSpec, WorkerGroupSpec

Totals = dict[str, Decimal]
_MIG = re.compile(r"^nvidia\.com/mig-\d+g\.\d+gb$")


def template_resources(template: Mapping[str, Any]) -> Totals:
    """Σ over all containers of a pod template; per resource `requests` wins, else `limits`."""
    totals: Totals = {}
    for container in (template.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or {}
        for key in {*limits, *requests}:
            value = requests[key] if key in requests else limits[key]
            totals[key] = totals.get(key, Decimal(0)) + parse_quantity(value)
    return totals


def add_totals(into: Totals, other: Mapping[str, Decimal], times: int = 1) -> None:
    """into += other x times."""
    for key, value in other.items():
        into[key] = into.get(key, Decimal(0)) + value * times


def clamp_replicas(group: WorkerGroupSpec) -> int:
    """clamp(replicas, min, max) (KubeRay's desired replicas of a group, before x numOfHosts)."""
    low = group.min_replicas or 0
    high = group.max_replicas if group.max_replicas is not None else MAX_INT32
    return max(low, min(group.replicas or 0, high))


def hosts(group: WorkerGroupSpec) -> int:
    """numOfHosts, with ≤0 treated as 1."""
    return max(group.num_of_hosts or 1, 1)


def group_pod_count(group: WorkerGroupSpec, mode: Literal["replicas", "desired", "min"]) -> int:
    """Pods of a non-suspended group: raw replicas / clamped replicas / minReplicas, x numOfHosts."""
    if group.suspend:
        return 0
    if mode == "replicas":
        count = group.replicas or 0
    elif mode == "desired":
        count = clamp_replicas(group)
    else:
        count = group.min_replicas or 0
    return count * hosts(group)


def cluster_resources(
    spec: RayClusterSpec, mode: Literal["replicas", "desired", "min"] = "replicas"
) -> Totals:
    """Head Pod + Σ group Pod resources x pod count (suspended groups excluded)."""
    totals = template_resources(spec.head_group_spec.template)
    for group in spec.worker_group_specs or []:
        add_totals(totals, template_resources(group.template), group_pod_count(group, mode))
    return totals


def gpu_total(totals: Mapping[str, Decimal]) -> Decimal:
    """Σ of GPU-like keys (ending in `gpu` or MIG profiles)."""
    return sum((v for k, v in totals.items() if k.lower().endswith("gpu") or _MIG.match(k)), Decimal(0))


def format_quantity(value: Decimal) -> str:
    """Canonical-ish quantity text: integers plain, fractions in milli-units (`1500m`)."""
    if value == value.to_integral_value():
        return str(int(value))
    millis = value * 1000
    if millis == millis.to_integral_value():
        return f"{int(millis)}m"
    return format(value.normalize(), "f")


def format_totals(totals: Mapping[str, Decimal]) -> dict[str, str]:
    """Totals as quantity strings, sorted by key."""
    return {key: format_quantity(totals[key]) for key in sorted(totals)}
