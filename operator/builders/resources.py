"""The operator's one place for resource and replica arithmetic, as pure functions over exact Decimals.

Pod template resources (per container `requests` wins, `limits` fills in; all containers summed), replica
counts (KubeRay's clamp: suspended ⇒ 0, min > max ⇒ max, else clamp(replicas, min, max); numOfHosts ≤ 0
counts as 1), GPU/TPU accounting (GPU = keys ending in `gpu` or a MIG profile, TPU = `google.com/tpu`) and
cluster totals. Status (`desired*`), the batch schedulers (PodGroup minResources, YuniKorn task groups),
`ray start` (num-gpus) and the Pod builders all call these; quantities are parsed and formatted by
`rayside.quantity`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

from ray_operator.constants import MAX_INT32
from ray_operator.models import RayClusterSpec, WorkerGroupSpec
from rayside.quantity import format_quantity, parse_quantity, quantity_or_zero

Totals = dict[str, Decimal]
Mode = Literal["replicas", "desired", "min", "max"]
TPU = "google.com/tpu"
_MIG = re.compile(r"^nvidia\.com/mig-\d+g\.\d+gb$")


def is_gpu_key(key: str) -> bool:
    """KubeRay's GPU-like resource names: ending in `gpu` (any case), or a MIG profile."""
    return key.lower().endswith("gpu") or bool(_MIG.match(key))


def template_resources(template: Mapping[str, Any], *, strict: bool = True) -> Totals:
    """Σ over all containers of a pod template; per resource `requests` wins, else `limits`.

    strict=False counts a value that is not a quantity as 0 (status over an already accepted spec);
    strict=True raises QuantityError."""
    parse = parse_quantity if strict else quantity_or_zero
    totals: Totals = {}
    for container in (template.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or {}
        for key in {*limits, *requests}:
            value = requests[key] if key in requests else limits[key]
            totals[key] = totals.get(key, Decimal(0)) + parse(value)
    return totals


def add_totals(into: Totals, other: Mapping[str, Decimal], times: int = 1) -> None:
    """into += other x times."""
    for key, value in other.items():
        into[key] = into.get(key, Decimal(0)) + value * times


def max_replicas(group: WorkerGroupSpec) -> int:
    """maxReplicas (absent ⇒ MaxInt32, the CRD default)."""
    return MAX_INT32 if group.max_replicas is None else group.max_replicas


def clamp_replicas(group: WorkerGroupSpec) -> int:
    """KubeRay's desired replicas of a group, before x numOfHosts: max when min > max, else
    clamp(replicas, min, max). Suspension is not considered here (see `group_pod_count`)."""
    low, high = group.min_replicas or 0, max_replicas(group)
    if low > high:
        return high
    return max(low, min(group.replicas or 0, high))


def hosts(group: WorkerGroupSpec) -> int:
    """numOfHosts, with ≤0 (and absent) treated as 1."""
    return max(group.num_of_hosts or 1, 1)


def is_multi_host(group: WorkerGroupSpec) -> bool:
    """More than one Pod per replica."""
    return hosts(group) > 1


def group_pod_count(group: WorkerGroupSpec, mode: Mode) -> int:
    """Pods of a non-suspended group (0 when suspended), x numOfHosts, counting: `replicas` raw
    replicas, `desired` clamped replicas, `min` minReplicas, `max` maxReplicas (capped at MaxInt32)."""
    if group.suspend:
        return 0
    if mode == "replicas":
        count = group.replicas or 0
    elif mode == "desired":
        count = clamp_replicas(group)
    elif mode == "min":
        count = group.min_replicas or 0
    else:
        count = max_replicas(group)
    return min(MAX_INT32, count * hosts(group))


def worker_pods(groups: Iterable[WorkerGroupSpec], mode: Mode) -> int:
    """Σ group_pod_count over the groups (capped at MaxInt32, as KubeRay's status)."""
    return min(MAX_INT32, sum(group_pod_count(g, mode) for g in groups))


def cluster_resources(spec: RayClusterSpec, mode: Mode = "replicas", *, strict: bool = True) -> Totals:
    """Head Pod + Σ group Pod resources x pod count (suspended groups excluded)."""
    totals = template_resources(spec.head_group_spec.template, strict=strict)
    for group in spec.worker_group_specs or []:
        add_totals(totals, template_resources(group.template, strict=strict), group_pod_count(group, mode))
    return totals


def gpu_total(totals: Mapping[str, Decimal]) -> Decimal:
    """Σ of GPU-like keys (ending in `gpu` or MIG profiles)."""
    return sum((v for k, v in totals.items() if is_gpu_key(k)), Decimal(0))


def tpu_total(totals: Mapping[str, Decimal]) -> Decimal:
    return totals.get(TPU, Decimal(0))


def format_totals(totals: Mapping[str, Decimal]) -> dict[str, str]:
    """Totals as quantity strings, sorted by key (PodGroup minResources, YuniKorn minResource)."""
    return {key: format_quantity(totals[key]) for key in sorted(totals)}
