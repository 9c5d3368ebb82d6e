"""Pure planning of the GCS fault-tolerance Redis cleanup finalizer.

A RayCluster whose GCS FT uses Redis (`gcsFaultToleranceOptions` with backend redis or unset, or the legacy
annotation `ray.io/ft-enabled: "true"`) gets the finalizer `ray.io/gcs-ft-redis-cleanup-finalizer` before
anything else is reconciled (`needs_finalizer`). When such a cluster is deleted, `plan_deletion` decides one
pass: delete the head and worker Pods; wait until no head Pod is left (the GCS must stop writing first);
then, unless the deletion has been pending longer than the timeout (300 s, annotation
`ray.io/gcs-ft-deletion-timeout` overrides) — in which case the finalizer is force-removed with a Warning
`ForceDeletedStuckCluster` — create the `<cluster>-redis-cleanup` Job, wait for it, and remove the
finalizer once it is Complete or Failed. A cluster that switched to the embedded (rocksdb) backend loses
a stale finalizer at once. Nothing here does I/O; the clock value is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ray_operator.constants import ANN_FT_ENABLED, LABEL_NODE_TYPE, NODE_TYPE_HEAD
from rayside.objects import annotations_of, is_deleting, labels_of, meta_of, name_of

REDIS_CLEANUP_FINALIZER = "ray.io/gcs-ft-redis-cleanup-finalizer"
ANN_GCS_FT_DELETION_TIMEOUT = "ray.io/gcs-ft-deletion-timeout"
DEFAULT_DELETION_TIMEOUT_SECONDS = 300.0
HEAD_WAIT_REQUEUE_SECONDS = 10.0  # a head Pod takes much longer than 2 s to terminate
FORCE_DELETED_REASON = "ForceDeletedStuckCluster"


@dataclass(frozen=True)
class DeletePods:
    names: tuple[str, ...]


@dataclass(frozen=True)
class CreateCleanupJob:
    pass


@dataclass(frozen=True)
class RemoveFinalizer:
    """Remove the Redis cleanup finalizer; `event` = (type, reason, message) to record, if any."""

    event: tuple[str, str, str] | None = None


DeletionAction = DeletePods | CreateCleanupJob | RemoveFinalizer


@dataclass
class DeletionPlan:
    actions: list[DeletionAction] = field(default_factory=list)
    requeue: float | None = None  # seconds; None = no requeue (the watch brings the next change)


def has_finalizer(cluster: Mapping[str, Any]) -> bool:
    return REDIS_CLEANUP_FINALIZER in (meta_of(cluster).get("finalizers") or [])


def _ft_options(cluster: Mapping[str, Any]) -> Mapping[str, Any] | None:
    options = (cluster.get("spec") or {}).get("gcsFaultToleranceOptions")
    return options if isinstance(options, Mapping) else None


def is_embedded_backend(cluster: Mapping[str, Any]) -> bool:
    """GCS FT with the embedded rocksdb backend (no Redis to clean)."""
    options = _ft_options(cluster)
    return options is not None and options.get("backend") == "rocksdb"


def uses_redis_ft(cluster: Mapping[str, Any]) -> bool:
    """GCS FT enabled (options present or annotation ft-enabled=true) and the backend is not rocksdb."""
    annotation = str(annotations_of(cluster).get(ANN_FT_ENABLED, "")).lower()
    enabled = annotation == "true" or _ft_options(cluster) is not None
    return enabled and not is_embedded_backend(cluster)


def needs_finalizer(cluster: Mapping[str, Any], *, cleanup_enabled: bool) -> bool:
    """A live Redis-FT cluster without the finalizer yet: add it before reconciling anything else."""
    return (
        cleanup_enabled and not is_deleting(cluster) and uses_redis_ft(cluster) and not has_finalizer(cluster)
    )


def deletion_timeout(cluster: Mapping[str, Any]) -> float:
    """Annotation `ray.io/gcs-ft-deletion-timeout` (positive integer seconds), else 300."""
    raw = annotations_of(cluster).get(ANN_GCS_FT_DELETION_TIMEOUT)
    try:
        value = int(str(raw))
    except ValueError:
        return DEFAULT_DELETION_TIMEOUT_SECONDS
    return float(value) if value > 0 else DEFAULT_DELETION_TIMEOUT_SECONDS


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp as written by the API server (`2026-01-02T03:04:05Z`)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def job_finished(job: Mapping[str, Any]) -> str | None:
    """`Complete` or `Failed` once the Job has that condition True (FailureTarget counts as Failed)."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") in ("Complete", "Failed"):
            return str(cond["type"])
        if cond.get("type") == "FailureTarget":
            return "Failed"
    return None


def _force_message(age: float, cluster: Mapping[str, Any]) -> str:
    storage_ns = annotations_of(cluster).get("ray.io/external-storage-namespace", "")
    return (
        f"Removed finalizer {REDIS_CLEANUP_FINALIZER} after {age:.0f}s because the Redis cleanup did not "
        f"finish in time; the Redis storage namespace {storage_ns!r} may need manual cleanup"
    )


def plan_deletion(
    cluster: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    job: Mapping[str, Any] | None,
    now: datetime,
    *,
    short_requeue: float,
    cleanup_enabled: bool = True,
) -> DeletionPlan:
    """One pass over a RayCluster with a deletionTimestamp. `pods` are its head/worker Pods (terminating
    ones included), `job` the `<cluster>-redis-cleanup` Job or None, `now` an aware datetime;
    `short_requeue` is the operator's short requeue setting (seconds)."""
    plan = DeletionPlan()
    if not has_finalizer(cluster):
        return plan
    if is_embedded_backend(cluster):
        plan.actions.append(RemoveFinalizer())
        return plan
    if not cleanup_enabled or not uses_redis_ft(cluster):
        return plan  # as KubeRay: the finalizer is left for the user to remove
    alive = tuple(name_of(p) for p in pods if not is_deleting(p))
    if alive:
        plan.actions.append(DeletePods(alive))
    if any(labels_of(p).get(LABEL_NODE_TYPE) == NODE_TYPE_HEAD for p in pods):
        plan.requeue = HEAD_WAIT_REQUEUE_SECONDS
        return plan
    age = (now - parse_time(str(meta_of(cluster).get("deletionTimestamp")))).total_seconds()
    if age >= deletion_timeout(cluster):
        event = ("Warning", FORCE_DELETED_REASON, _force_message(age, cluster))
        plan.actions.append(RemoveFinalizer(event))
        return plan
    if job is None:
        plan.actions.append(CreateCleanupJob())
    elif job_finished(job) is not None:
        plan.actions.append(RemoveFinalizer())
        return plan
    # Wake up for the timeout even if the Job never finishes.
    plan.requeue = max(0.1, min(short_requeue, deletion_timeout(cluster) - age))
    return plan


__all__ = [
    "ANN_GCS_FT_DELETION_TIMEOUT",
    "REDIS_CLEANUP_FINALIZER",
    "CreateCleanupJob",
    "DeletePods",
    "DeletionAction",
    "DeletionPlan",
    "RemoveFinalizer",
    "deletion_timeout",
    "has_finalizer",
    "job_finished",
    "needs_finalizer",
    "plan_deletion",
    "uses_redis_ft",
]
