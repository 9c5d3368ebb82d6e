"""The lifecycle vocabulary of a RayJob and the frozen snapshot the reconciler hands to `next_state`.

Enums mirror KubeRay's `rayjob_types.go` values (plus a few rayside failure reasons, marked below);
`Spec`, `Status` and the observation dataclasses hold exactly what the decision reads, already parsed
(datetimes are timezone-aware). `Decision` is what comes back: the whole new status and the actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ray_operator import constants as c
from ray_operator.models.rayjob import RayJob, RayJobStatus
from ray_operator.rayjob.actions import Action, RequeueAfter
from ray_operator.rayjob.deletion import DeletionSpec


class DeploymentStatus(StrEnum):
    """`status.jobDeploymentStatus`; New is the empty string."""

    NEW = ""
    INITIALIZING = "Initializing"
    WAITING = "Waiting"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    SUSPENDING = "Suspending"
    SUSPENDED = "Suspended"
    RETRYING = "Retrying"
    VALIDATION_FAILED = "ValidationFailed"


TERMINAL_DEPLOYMENT = frozenset({DeploymentStatus.COMPLETE, DeploymentStatus.FAILED})


class JobStatus(StrEnum):
    """`status.jobStatus`, the Ray job's own status as the dashboard reports it; New is the empty string."""

    NEW = ""
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        """STOPPED, SUCCEEDED and FAILED never change again."""
        return self in (JobStatus.STOPPED, JobStatus.SUCCEEDED, JobStatus.FAILED)

    @property
    def live(self) -> bool:
        """PENDING or RUNNING: the Ray job exists and may still use the cluster."""
        return self in (JobStatus.PENDING, JobStatus.RUNNING)


class Reason(StrEnum):
    """`status.reason`."""

    NONE = ""
    SUBMISSION_FAILED = "SubmissionFailed"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    PRE_RUNNING_DEADLINE_EXCEEDED = "PreRunningDeadlineExceeded"
    APP_FAILED = "AppFailed"
    TRANSITION_GRACE_PERIOD_EXCEEDED = "JobDeploymentStatusTransitionGracePeriodExceeded"
    STATUS_CHECK_TIMEOUT_EXCEEDED = "JobStatusCheckTimeoutExceeded"
    VALIDATION_FAILED = "ValidationFailed"
    # rayside additions
    RAY_CLUSTER_LOST = "RayClusterLost"
    """The cluster disappeared (deleted) while the RayJob needed it."""
    RAY_JOB_LOST = "RayJobLost"
    """The dashboard no longer knows a Ray job it had reported (the head restarted without GCS FT)."""
    HEAD_POD_FAILED = "HeadPodFailed"
    """The head Pod failed in a way that will not heal (e.g. an invalid image name)."""
    SUBMITTER_FAILED = "SubmitterFailed"
    """Not terminal: the submitter Job failed but the Ray job it submitted is still alive."""


NOT_RETRIED = frozenset({Reason.DEADLINE_EXCEEDED, Reason.STATUS_CHECK_TIMEOUT_EXCEEDED})


class SubmissionMode(StrEnum):
    """`spec.submissionMode`."""

    K8S_JOB = "K8sJobMode"
    HTTP = "HTTPMode"
    INTERACTIVE = "InteractiveMode"
    SIDECAR = "SidecarMode"

    @property
    def has_submitter(self) -> bool:
        """A submitter process (K8s Job or head sidecar) whose end the deployment status waits for."""
        return self in (SubmissionMode.K8S_JOB, SubmissionMode.SIDECAR)


class ClusterPhase(StrEnum):
    """The RayCluster named by `status.rayClusterName`, as the reconciler sees it."""

    ABSENT = "absent"
    TERMINATING = "terminating"
    PROVISIONING = "provisioning"
    READY = "ready"


class SubmitterPhase(StrEnum):
    """The submitter: the K8sJobMode batch Job, or the SidecarMode head container."""

    ABSENT = "absent"
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Whether the submitter process ended (either way)."""
        return self in (SubmitterPhase.SUCCEEDED, SubmitterPhase.FAILED)


@dataclass(frozen=True)
class Spec:
    """The RayJob spec fields the lifecycle reads."""

    name: str
    namespace: str = "default"
    mode: SubmissionMode = SubmissionMode.K8S_JOB
    job_id: str = ""
    selected_cluster: str = ""
    """`clusterSelector[ray.io/cluster]`; empty when the RayJob owns its cluster."""
    suspend: bool = False
    active_deadline_seconds: int | None = None
    pre_running_deadline_seconds: int | None = None
    backoff_limit: int = 0
    deletion: DeletionSpec = field(default_factory=DeletionSpec)
    submitter_in_gang: bool = False
    """K8sJobMode under a batch scheduler: the submitter Job is created together with the RayCluster."""

    @classmethod
    def from_rayjob(cls, job: RayJob, *, delete_self_after_finish: bool = False) -> Spec:
        """Read a typed RayJob."""
        spec = job.spec
        return cls(
            name=str(job.metadata.get("name", "")),
            namespace=str(job.metadata.get("namespace") or "default"),
            mode=SubmissionMode(spec.submission_mode or "K8sJobMode"),
            job_id=spec.job_id or "",
            selected_cluster=(spec.cluster_selector or {}).get(c.LABEL_CLUSTER, ""),
            suspend=bool(spec.suspend),
            active_deadline_seconds=spec.active_deadline_seconds,
            pre_running_deadline_seconds=spec.pre_running_deadline_seconds,
            backoff_limit=spec.backoff_limit or 0,
            deletion=DeletionSpec.from_spec(spec, delete_self_after_finish=delete_self_after_finish),
        )


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _reason(text: str | None) -> Reason:
    """A known reason, else none (a reason written by another controller version is not ours to keep)."""
    try:
        return Reason(text or "")
    except ValueError:
        return Reason.NONE


@dataclass(frozen=True)
class Status:
    """The RayJob status the lifecycle owns (all of `.status` except the copied cluster status)."""

    deployment: DeploymentStatus = DeploymentStatus.NEW
    job_status: JobStatus = JobStatus.NEW
    reason: Reason = Reason.NONE
    message: str = ""
    job_id: str = ""
    cluster_name: str = ""
    dashboard_url: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    succeeded: int = 0
    failed: int = 0
    ray_start_time: datetime | None = None
    ray_end_time: datetime | None = None
    check_failure_since: datetime | None = None
    """`jobStatusCheckFailureStartTime`: when the dashboard first failed to answer."""
    observed_generation: int = 0

    @classmethod
    def from_model(cls, status: RayJobStatus | None) -> Status:
        """Read a typed RayJob status (None: a new RayJob)."""
        if status is None:
            return cls()
        info = status.ray_job_info
        return cls(
            deployment=DeploymentStatus(status.job_deployment_status or ""),
            job_status=JobStatus(status.job_status or ""),
            reason=_reason(status.reason),
            message=status.message or "",
            job_id=status.job_id or "",
            cluster_name=status.ray_cluster_name or "",
            dashboard_url=status.dashboard_url or "",
            start_time=_time(status.start_time),
            end_time=_time(status.end_time),
            succeeded=status.succeeded or 0,
            failed=status.failed or 0,
            ray_start_time=_time(info.start_time) if info else None,
            ray_end_time=_time(info.end_time) if info else None,
            check_failure_since=_time(status.job_status_check_failure_start_time),
            observed_generation=status.observed_generation or 0,
        )


@dataclass(frozen=True)
class HeadProblem:
    """Why the head Pod is not running: a waiting/terminated reason and message; `fatal` if it cannot heal."""

    reason: str
    message: str = ""
    fatal: bool = False


@dataclass(frozen=True)
class ClusterView:
    """The RayCluster `status.rayClusterName` (or the selected one)."""

    phase: ClusterPhase = ClusterPhase.ABSENT
    dashboard_url: str = ""
    """`<head-svc>.<ns>.svc.<domain>:<dashboard port>` once the head Service exists."""
    head: HeadProblem | None = None
    head_pod_missing: bool = False
    workers_suspended: bool = False


@dataclass(frozen=True)
class SubmitterView:
    """The submitter's state; `submission_id` is the job id it was built for (stale ones are replaced)."""

    phase: SubmitterPhase = SubmitterPhase.ABSENT
    submission_id: str = ""
    finished_at: datetime | None = None
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class RayJobInfo:
    """`GET /api/jobs/<id>` answered: the Ray job's status, message and times."""

    status: JobStatus
    message: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass(frozen=True)
class JobNotFound:
    """`GET /api/jobs/<id>` answered 404: the cluster has no job with that id."""


@dataclass(frozen=True)
class DashboardUnreachable:
    """The dashboard did not answer usefully (connection error, timeout, 5xx, 401/403)."""

    error: str


Dashboard = RayJobInfo | JobNotFound | DashboardUnreachable | None
"""None: not queried this pass (see `wants_dashboard`)."""


@dataclass(frozen=True)
class Timeouts:
    """Operator-wide durations in seconds (KubeRay env knobs and default requeue)."""

    requeue: float = 3.0
    transition_grace: float = 300.0
    """RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS."""
    status_check: float = 300.0
    """RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS."""


@dataclass(frozen=True)
class Observed:
    """Everything one reconcile pass read, frozen; `suffix` is 5 fresh random chars for new names."""

    spec: Spec
    status: Status
    now: datetime
    cluster: ClusterView = ClusterView()
    submitter: SubmitterView = SubmitterView()
    dashboard: Dashboard = None
    generation: int = 1
    validation_error: str | None = None
    finalizer_present: bool = True
    suffix: str = ""
    timeouts: Timeouts = Timeouts()


@dataclass(frozen=True)
class Decision:
    """The new status to write (only if it differs) and the actions to execute, in order."""

    status: Status
    actions: tuple[Action, ...] = ()

    @property
    def requeue_after(self) -> float | None:
        """The last `RequeueAfter` among the actions, or None (wait for a watch event)."""
        delays = [a.seconds for a in self.actions if isinstance(a, RequeueAfter)]
        return delays[-1] if delays else None


def wants_dashboard(status: Status) -> bool:
    """Whether this pass needs `GET /api/jobs/<jobId>` (Running with a job id and a dashboard URL)."""
    return status.deployment is DeploymentStatus.RUNNING and bool(status.job_id and status.dashboard_url)
