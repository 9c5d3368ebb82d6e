"""RayCluster status and conditions, computed as pure functions (operator-spec §1.3, §2.11, §2.12).

`compute_status()` takes the cluster, the Pods and head Service the cache shows, the suspend phase the
planner chose and the outcome of the pass, and returns the new `.status` as a wire dict. `status_changed()`
decides whether it is worth a write: timestamps and desired resources alone never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from ray_operator.builders.resources import cluster_resources, gpu_total, tpu_total, worker_pods
from ray_operator.constants import LABEL_NODE_TYPE, NODE_TYPE_HEAD, NODE_TYPE_WORKER
from ray_operator.models import RayCluster, WorkerGroupSpec
from rayside.quantity import format_quantity

Obj = dict[str, Any]

HEAD_POD_READY = "HeadPodReady"
PROVISIONED = "RayClusterProvisioned"
REPLICA_FAILURE = "ReplicaFailure"
SUSPENDING = "RayClusterSuspending"
SUSPENDED = "RayClusterSuspended"

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
def _pod_condition(pod: Obj, type_: str) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_running(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def is_running_and_ready(pod: Obj) -> bool:
    ready = _pod_condition(pod, "Ready")
    return is_running(pod) and ready is not None and ready.get("status") == "True"


def _all_running_no_unready(pods: list[Obj]) -> bool:
    """Every Pod Running with no PodReady condition other than True (KubeRay's readiness test)."""
    for pod in pods:
        ready = _pod_condition(pod, "Ready")
        if not is_running(pod) or (ready is not None and ready.get("status") != "True"):
            return False
    return True


def _node_type(pod: Obj) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_NODE_TYPE, ""))


# -- conditions -------------------------------------------------------------------------------------------
def get_condition(status: Obj | None, type_: str) -> Obj | None:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_true(status: Obj | None, type_: str) -> bool:
    cond = get_condition(status, type_)
    return cond is not None and cond.get("status") == "True"


def set_condition(
    conditions: list[Obj], type_: str, status: str, reason: str, message: str, *, now: str
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


def _head_pod_ready(head: Obj | None) -> tuple[str, str, str]:
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
    old: Obj, pods: list[Obj], head: Obj | None, phase: SuspendPhase, outcome: Outcome, now: str
) -> list[Obj]:
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
def _endpoints(service: Obj | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for port in ((service or {}).get("spec") or {}).get("ports") or []:
        name = port.get("name")
        if not name:
            continue
        value = port.get("nodePort") or port.get("targetPort") or port.get("port")
        if value is not None:
            out[str(name)] = str(value)
    return out


def _head_info(head: Obj | None, service: Obj | None) -> Obj:
    pod_ip = ((head or {}).get("status") or {}).get("podIP") or ""
    info: Obj = {"podIP": pod_ip, "podName": ((head or {}).get("metadata") or {}).get("name", "")}
    if service is not None:
        ip = (service.get("spec") or {}).get("clusterIP") or ""
        info["serviceIP"] = pod_ip if ip == "None" else ip
        info["serviceName"] = service["metadata"]["name"]
    return {k: v for k, v in info.items() if v}


def _state(
    old: Obj, cluster: RayCluster, pods: list[Obj], phase: SuspendPhase, outcome: Outcome
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
    old: Obj | None,
    *,
    pods: list[Obj],
    head_service: Obj | None,
    phase: SuspendPhase,
    outcome: Outcome,
    now: str,
) -> Obj:
    """The new `.status` (wire form) of `cluster` given what the cache shows and how the pass went."""
    old = dict(old or {})
    groups = active_groups(cluster)
    heads = [p for p in pods if _node_type(p) == NODE_TYPE_HEAD]
    workers = [p for p in pods if _node_type(p) == NODE_TYPE_WORKER]
    head = heads[0] if len(heads) == 1 else None
    state = _state(old, cluster, pods, phase, outcome)
    status: Obj = {
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
        "observedGeneration": cluster.metadata.get("generation", 0),
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


def _condition_essence(status: Obj) -> list[tuple[str, str, str, str]]:
    return sorted(
        (str(c.get("type")), str(c.get("status")), str(c.get("reason") or ""), str(c.get("message") or ""))
        for c in status.get("conditions") or []
    )


def status_changed(old: Obj | None, new: Obj) -> bool:
    """Whether `new` differs from `old` in anything but timestamps and desired resources."""
    old = old or {}
    if any(old.get(k) != new.get(k) for k in _COMPARED):
        return True
    return _condition_essence(old) != _condition_essence(new)


_COUNTERS = ("readyWorkerReplicas", "availableWorkerReplicas")


def only_counters_changed(old: Obj | None, new: Obj) -> bool:
    """Whether the only differences are the ready/available worker counters (throttled writes)."""
    old = old or {}
    if any(old.get(k) != new.get(k) for k in _COMPARED if k not in _COUNTERS):
        return False
    return _condition_essence(old) == _condition_essence(new)
