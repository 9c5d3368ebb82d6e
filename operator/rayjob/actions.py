"""Typed actions the RayJob decision layer asks the reconciler to execute, in the order given.

Each action is a small frozen dataclass naming only what the executor cannot derive from the RayJob it
reconciles. Events belonging to a state transition come as `RecordEvent`; the executor records its own
success/failure events for object writes (e.g. `CreatedRayCluster`). Deletion actions are shared with
`ray_operator.rayjob.deletion`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ray_operator.rayjob.deletion import DeleteCluster, DeleteSelf, DeleteWorkers

__all__ = [
    "Action",
    "AddFinalizer",
    "BatchSchedule",
    "CleanupBatchScheduling",
    "CreateCluster",
    "CreateSubmitterJob",
    "DeleteCluster",
    "DeleteSelf",
    "DeleteSubmitter",
    "DeleteWorkers",
    "EnsureHeadService",
    "RecordEvent",
    "RequeueAfter",
    "StopRayJob",
    "SubmitHTTP",
]


@dataclass(frozen=True)
class AddFinalizer:
    """Add `ray.io/rayjob-finalizer` (so deletion stops a live Ray job first)."""


@dataclass(frozen=True)
class BatchSchedule:
    """Run the batch scheduler's on-submission hook (e.g. create the Volcano PodGroup) before the cluster."""


@dataclass(frozen=True)
class CreateCluster:
    """Create the owned RayCluster `name`; `sidecar` appends the SidecarMode submitter to the head Pod."""

    name: str
    job_id: str
    sidecar: bool = False


@dataclass(frozen=True)
class CreateSubmitterJob:
    """Create the K8sJobMode submitter batch/v1 Job submitting `job_id` to `http://<dashboard_url>`; an
    empty `dashboard_url` means "together with the cluster" (a gang member): the address is the head
    Service's, and the submitter waits for the dashboard without a time limit."""

    job_id: str
    dashboard_url: str


@dataclass(frozen=True)
class SubmitHTTP:
    """HTTPMode: `POST /api/jobs/` with `submission_id=job_id` (a duplicate-id answer means submitted)."""

    job_id: str


@dataclass(frozen=True)
class StopRayJob:
    """Best-effort `POST /api/jobs/<job_id>/stop` on the RayJob's cluster."""

    job_id: str


@dataclass(frozen=True)
class EnsureHeadService:
    """Create or repoint the RayJob's own head Service `<rayjob>-head-svc` at cluster `cluster`."""

    cluster: str


@dataclass(frozen=True)
class DeleteSubmitter:
    """Delete the submitter Job `<rayjob>` with background propagation."""


@dataclass(frozen=True)
class CleanupBatchScheduling:
    """Run the batch scheduler's on-completion hook (terminal, suspend and retry)."""


@dataclass(frozen=True)
class RecordEvent:
    """A Kubernetes Event on the RayJob; `type` is Normal or Warning. Never carries a token."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class RequeueAfter:
    """Reconcile this RayJob again after `seconds` (the last one in a Decision wins)."""

    seconds: float


Action = (
    AddFinalizer
    | BatchSchedule
    | CreateCluster
    | CreateSubmitterJob
    | SubmitHTTP
    | StopRayJob
    | EnsureHeadService
    | DeleteCluster
    | DeleteWorkers
    | DeleteSubmitter
    | DeleteSelf
    | CleanupBatchScheduling
    | RecordEvent
    | RequeueAfter
)
