"""RayCluster status and conditions, computed as pure functions.

`compute_status()` takes the cluster, the Pods and head Service the cache shows, the suspend phase the
planner chose and the outcome of the pass, and returns the new `.status` as a wire dict. `status_changed()`
decides whether it is worth a write: timestamps and desired resources alone never are; `write_decision()`
adds the throttling (counter-only changes at most every `status_interval`). `mark_spec_valid()` and
`invalid_spec()` own the `RayClusterSpecValid` condition (and the Warning an invalid spec gets).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Literal

from ray_operator.builders.resources import cluster_resources, gpu_total, tpu_total, worker_pods
from ray_operator.constants import LABEL_NODE_TYPE, NODE_TYPE_HEAD, NODE_TYPE_WORKER
from ray_operator.models import RayCluster, WorkerGroupSpec
from rayside.objects import JSON, generation_of, labels_of, name_of
from rayside.quantity import format_quantity

HEAD_POD_READY = "HeadPodReady"
PROVISIONED = "RayClusterProvisioned"
REPLICA_FAILURE = "ReplicaFailure"
SUSPENDING = "RayClusterSuspending"
SUSPENDED = "RayClusterSuspended"
SPEC_VALID = "RayClusterSpecValid"

STATE_READY = "ready"
STATE_SUSPENDED = "suspended"


class SuspendPhase(Enum):
    """What the planner does about `spec.suspend` this pass."""

    NONE = "none"  # run normally
    SUSPENDING = "suspending"  # delete every Pod (atomic once started)
    SUSPENDED = "suspended"  # no Pod work


@dataclass(frozen=True)
class Outcome:
    """How the pass went: `marker` is a ReplicaFailure reason (FailedCreateWorkerPod...) or None."""

    error: str | None = None
    marker: str | None = None


OK = Outcome()


# -- resources and replicas (arithmetic in ray_operator.builders.resources) ------------------------------
def active_groups(cluster: RayCluster) -> list[WorkerGroupSpec]:
    return [g for g in cluster.spec.worker_group_specs or [] if not g.suspend]


def desired_workers(cluster: RayCluster) -> int:
    """Σ over non-suspended groups of KubeRay's desired replicas x numOfHosts."""
    return worker_pods(cluster.spec.worker_group_specs or [], "desired")


def _desired_resources(cluster: RayCluster) -> dict[str, str]:
    totals = cluster_resources(cluster.spec, "replicas", strict=False)
    return {
        "desiredCPU": format_quantity(totals.get("cpu", Decimal(0))),
        "desiredMemory": format_quantity(totals.get("memory", Decimal(0)), binary=True),
        "desiredGPU": format_quantity(gpu_total(totals)),
        "desiredTPU": format_quantity(tpu_total(totals)),
    }


# -- pods -------------------------------------------------------------------------------------------------
def _pod_condition(pod: JSON, type_: str) -> JSON | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_running(pod: JSON) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def is_running_and_ready(pod: JSON) -> bool:
    ready = _pod_condition(pod, "Ready")
    return is_running(pod) and ready is not None and ready.get("status") == "True"


def _all_running_no_unready(pods: list[JSON]) -> bool:
    """Every Pod Running with no PodReady condition other than True (KubeRay's readiness test)."""
    for pod in pods:
        ready = _pod_condition(pod, "Ready")
        if not is_running(pod) or (ready is not None and ready.get("status") != "True"):
            return False
    return True


def _node_type(pod: JSON) -> str:
    return labels_of(pod).get(LABEL_NODE_TYPE, "")


# -- conditions -------------------------------------------------------------------------------------------
def get_condition(status: JSON | None, type_: str) -> JSON | None:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_true(status: JSON | None, type_: str) -> bool:
    cond = get_condition(status, type_)
    return cond is not None and cond.get("status") == "True"


def set_condition(
    conditions: list[JSON], type_: str, status: str, reason: str, message: str, *, now: str
) -> None:
    """Insert or update a condition in place; lastTransitionTime moves only when the status flips."""
    for cond in conditions:
        if cond.get("type") == type_:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
            cond.update(status=status, reason=reason, message=message)
            return
    conditions.append(
        {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": now}
    )


def _head_pod_ready(head: JSON | None) -> tuple[str, str, str]:
    if head is None:
        return "False", "HeadPodNotFound", "Head Pod not found"
    ready = _pod_condition(head, "Ready")
    if ready is None:
        return "False", "Unknown", ""
    status = str(ready.get("status") or "Unknown")
    reason = str(ready.get("reason") or "")
    message = str(ready.get("message") or "")
    if status == "True" and not reason:
        reason = "HeadPodRunningAndReady"
    if reason == "ContainersNotReady":
        for cs in (head.get("status") or {}).get("containerStatuses") or []:
            state = cs.get("state") or {}
            detail = state.get("waiting") or state.get("terminated")
            if detail and detail.get("reason"):
                reason = str(detail["reason"])
                if detail.get("message"):
                    message = f"{message}; {cs.get('name')}: {detail['message']}".lstrip("; ")
                break
    return status, reason, message


def _conditions(
    old: JSON, pods: list[JSON], head: JSON | None, phase: SuspendPhase, outcome: Outcome, now: str
) -> list[JSON]:
    conditions = [dict(c) for c in old.get("conditions") or []]
    set_condition(conditions, HEAD_POD_READY, *_head_pod_ready(head), now=now)
    suspended_now = phase is SuspendPhase.SUSPENDING and not pods
    if suspended_now:
        set_condition(conditions, SUSPENDING, "False", SUSPENDING, "", now=now)
        set_condition(conditions, SUSPENDED, "True", SUSPENDED, "", now=now)
        set_condition(
            conditions,
            PROVISIONED,
            "False",
            "RayClusterPodsProvisioning",
            "RayCluster has been suspended",
            now=now,
        )
    elif phase is SuspendPhase.SUSPENDING:
        set_condition(conditions, SUSPENDING, "True", SUSPENDING, "", now=now)
    elif phase is SuspendPhase.NONE:
        if get_condition(old, SUSPENDED) is not None:
            set_condition(conditions, SUSPENDED, "False", SUSPENDED, "", now=now)
        if get_condition(old, SUSPENDING) is not None:
            set_condition(conditions, SUSPENDING, "False", SUSPENDING, "", now=now)
    if phase is SuspendPhase.NONE and not is_true(old, PROVISIONED):
        if pods and _all_running_no_unready(pods):
            set_condition(
                conditions,
                PROVISIONED,
                "True",
                "AllPodRunningAndReadyFirstTime",
                "All Ray Pods are ready for the first time",
                now=now,
            )
        else:
            set_condition(
                conditions,
                PROVISIONED,
                "False",
                "RayClusterPodsProvisioning",
                "RayCluster Pods are being provisioned for first time",
                now=now,
            )
    if outcome.marker:
        set_condition(conditions, REPLICA_FAILURE, "True", outcome.marker, outcome.error or "", now=now)
    elif outcome.error is None:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    return conditions


# -- status -----------------------------------------------------------------------------------------------
def _endpoints(service: JSON | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for port in ((service or {}).get("spec") or {}).get("ports") or []:
        name = port.get("name")
        if not name:
            continue
        value = port.get("nodePort") or port.get("targetPort") or port.get("port")
        if value is not None:
            out[str(name)] = str(value)
    return out


def _head_info(head: JSON | None, service: JSON | None) -> JSON:
    pod_ip = ((head or {}).get("status") or {}).get("podIP") or ""
    info: JSON = {"podIP": pod_ip, "podName": name_of(head or {})}
    if service is not None:
        ip = (service.get("spec") or {}).get("clusterIP") or ""
        info["serviceIP"] = pod_ip if ip == "None" else ip
        info["serviceName"] = name_of(service)
    return {k: v for k, v in info.items() if v}


def _state(
    old: JSON, cluster: RayCluster, pods: list[JSON], phase: SuspendPhase, outcome: Outcome
) -> str | None:
    state: str | None = old.get("state")
    if phase is SuspendPhase.SUSPENDED or (phase is SuspendPhase.SUSPENDING and not pods):
        return STATE_SUSPENDED
    if (
        phase is SuspendPhase.NONE
        and outcome.error is None
        and len(pods) == desired_workers(cluster) + 1
        and _all_running_no_unready(pods)
    ):
        return STATE_READY
    return state


def compute_status(
    cluster: RayCluster,
    old: JSON | None,
    *,
    pods: list[JSON],
    head_service: JSON | None,
    phase: SuspendPhase,
    outcome: Outcome,
    now: str,
) -> JSON:
    """The new `.status` (wire form) of `cluster` given what the cache shows and how the pass went."""
    old = dict(old or {})
    groups = active_groups(cluster)
    heads = [p for p in pods if _node_type(p) == NODE_TYPE_HEAD]
    workers = [p for p in pods if _node_type(p) == NODE_TYPE_WORKER]
    head = heads[0] if len(heads) == 1 else None
    state = _state(old, cluster, pods, phase, outcome)
    status: JSON = {
        **{k: v for k, v in old.items() if k not in ("reason",)},
        "readyWorkerReplicas": sum(1 for p in workers if is_running_and_ready(p)),
        "availableWorkerReplicas": sum(1 for p in workers if is_running(p)),
        "desiredWorkerReplicas": desired_workers(cluster),
        "minWorkerReplicas": worker_pods(groups, "min"),
        "maxWorkerReplicas": worker_pods(groups, "max"),
        **_desired_resources(cluster),
        "endpoints": _endpoints(head_service),
        "head": _head_info(head, head_service),
        "conditions": _conditions(old, pods, head, phase, outcome, now),
        "lastUpdateTime": now,
        "observedGeneration": generation_of({"metadata": cluster.metadata}),
    }
    if state is not None:
        status["state"] = state
        if state != old.get("state"):
            status["stateTransitionTimes"] = {**(old.get("stateTransitionTimes") or {}), state: now}
    if old.get("reason") and state != STATE_READY:
        status["reason"] = old["reason"]
    return status


_COMPARED = (
    "state",
    "reason",
    "readyWorkerReplicas",
    "availableWorkerReplicas",
    "desiredWorkerReplicas",
    "minWorkerReplicas",
    "maxWorkerReplicas",
    "endpoints",
    "head",
    "observedGeneration",
)


def _condition_essence(status: JSON) -> list[tuple[str, str, str, str]]:
    return sorted(
        (str(c.get("type")), str(c.get("status")), str(c.get("reason") or ""), str(c.get("message") or ""))
        for c in status.get("conditions") or []
    )


def status_changed(old: JSON | None, new: JSON) -> bool:
    """Whether `new` differs from `old` in anything but timestamps and desired resources."""
    old = old or {}
    if any(old.get(k) != new.get(k) for k in _COMPARED):
        return True
    return _condition_essence(old) != _condition_essence(new)


_COUNTERS = ("readyWorkerReplicas", "availableWorkerReplicas")


def only_counters_changed(old: JSON | None, new: JSON) -> bool:
    """Whether the only differences are the ready/available worker counters (throttled writes)."""
    old = old or {}
    if any(old.get(k) != new.get(k) for k in _COMPARED if k not in _COUNTERS):
        return False
    return _condition_essence(old) == _condition_essence(new)


WriteDecision = Literal["skip", "defer", "write"]


def write_decision(
    old: JSON | None, new: JSON, *, last_write: float | None, now: float, interval: float
) -> WriteDecision:
    """Whether to write `new` now: `skip` (nothing worth writing), `defer` (only the ready/available
    counters changed and the last write was less than `interval` seconds ago: requeue and write later),
    or `write`. `last_write`/`now` are monotonic seconds."""
    if not status_changed(old, new):
        return "skip"
    if last_write is not None and only_counters_changed(old, new) and now - last_write < interval:
        return "defer"
    return "write"


def mark_spec_valid(status: JSON, *, now: str) -> JSON:
    """A spec that validates again: an existing RayClusterSpecValid condition turns True (in place)."""
    if get_condition(status, SPEC_VALID) is not None:
        set_condition(status["conditions"], SPEC_VALID, "True", "ValidSpec", "", now=now)
    return status


def invalid_spec(old: JSON, problem: str, *, key: str, generation: int, now: str) -> tuple[JSON, str] | None:
    """The status (RayClusterSpecValid=False with `problem`) and the Warning message for an invalid spec;
    None when that very problem is already reported (no write, no second Event)."""
    current = get_condition(old, SPEC_VALID)
    if current is not None and current.get("status") == "False" and current.get("message") == problem:
        return None
    new = {**old, "conditions": [dict(cond) for cond in old.get("conditions") or []]}
    set_condition(new["conditions"], SPEC_VALID, "False", "InvalidRayClusterSpec", problem, now=now)
    new["observedGeneration"] = generation
    return new, f"The RayCluster spec is invalid {key}: {problem}"


def spec_problem(exc: BaseException) -> str:
    """The condition/Event text for an exception a pass raised while building or planning. Our own errors
    (QuantityError, RayStartConflict, SpecValueError, ...) already name the field, the value and what is
    allowed; a bare Python exception (ValueError, TypeError, KeyError, ...) is an operator defect or an
    unforeseen spec, and its text (`invalid literal for int()`) is not shown to users."""
    if type(exc).__module__ != "builtins" and str(exc):
        return " ".join(str(exc).split())
    return (
        f"the operator could not turn this spec into Pods ({type(exc).__name__}); "
        "its log has the details at ERROR"
    )
