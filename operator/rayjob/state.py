"""The RayJob lifecycle as a pure function: `next_state(observed) -> Decision` (operator-spec §4.3-4.8).

One call decides one reconcile pass from a frozen `Observed` snapshot; the reconciler writes
`Decision.status` if it changed, then executes `Decision.actions` in order. The vocabulary (enums,
observations, Decision) lives in `ray_operator.rayjob.observed` and is re-exported here.

Where rayside deliberately differs from KubeRay (each one rules out a known way to hang, leak or lie):

* The Ray job's status is the source of truth. A failed submitter only fails the RayJob when the Ray job
  never appeared (SubmissionFailed) or when the submitter finished and the job is gone (AppFailed). A
  submitter that dies while the Ray job is alive leaves the RayJob Running (reason `SubmitterFailed`, one
  Warning event) and the dashboard decides the end; a submitter that ends early is not a failure either
  (KubeRay's 30 s "submitter finished, job not terminal" rule is dropped).
* `jobStatus` and `jobDeploymentStatus` never contradict: a terminal deployment status never carries a
  PENDING/RUNNING jobStatus, Failed never carries SUCCEEDED (a deadline or a lost cluster after the Ray
  job ended completes the attempt by the Ray job's outcome). Failing a live job (deadline, status-check
  timeout) also stops it (`StopRayJob`) and records jobStatus STOPPED; a job that vanished with its
  cluster or head is FAILED.
* A lost cluster (deleted while Waiting/Running) or a lost Ray job (the dashboard answers 404 for a job it
  had reported: the head restarted without GCS fault tolerance) fails the attempt at once with
  `RayClusterLost` / `RayJobLost` (retried under `backoffLimit` on a fresh cluster) instead of waiting
  for a timeout or silently recreating the cluster. A SidecarMode head Pod that is gone fails with
  AppFailed "Ray head pod not found." (its submitter died with it).
* A head Pod that cannot run (CreateContainerConfigError, CrashLoopBackOff, image errors) is reported
  while Initializing in `status.message` and one Warning `HeadPodNotRunning` event per new problem; a
  fatal one (cannot heal) fails with `HeadPodFailed`; otherwise `preRunningDeadlineSeconds` ends the wait
  with a message naming the head Pod's problem.
* Waiting (InteractiveMode) honours suspend and activeDeadlineSeconds too, so Kueue can preempt it.
* An invalid spec sends New/Suspended/ValidationFailed RayJobs to ValidationFailed, which recovers (back
  to New) once the spec validates. An attempt already under way is not abandoned: the invalid edit is
  reported with one Warning event per generation and the attempt continues.
* Each attempt's submission id is fixed in New and never reused: a retry gets a fresh id (unless
  spec.jobId) and a fresh cluster; a submitter Job left from another id is deleted before a new one is made.
  HTTPMode submits only while the job was never seen, by that id, so at most once per attempt.
* Under a batch scheduler (`Spec.submitter_in_gang`) the K8sJobMode submitter Job is created while the
  cluster comes up, not once it is ready: its Pod is a member of the RayJob's gang, and a gang that counts
  a Pod created only after the gang runs can never form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ray_operator.features import FeatureGates
from ray_operator.rayjob import actions as act
from ray_operator.rayjob.deletion import DeletionStatus, plan_deletion
from ray_operator.rayjob.observed import (
    NOT_RETRIED,
    TERMINAL_DEPLOYMENT,
    ClusterPhase,
    ClusterView,
    Dashboard,
    DashboardUnreachable,
    Decision,
    DeploymentStatus,
    HeadProblem,
    JobNotFound,
    JobStatus,
    Observed,
    RayJobInfo,
    Reason,
    Spec,
    Status,
    SubmissionMode,
    SubmitterPhase,
    SubmitterView,
    Timeouts,
    wants_dashboard,
)

__all__ = [
    "ClusterPhase",
    "ClusterView",
    "Dashboard",
    "DashboardUnreachable",
    "Decision",
    "DeploymentStatus",
    "HeadProblem",
    "JobNotFound",
    "JobStatus",
    "Observed",
    "RayJobInfo",
    "Reason",
    "Spec",
    "Status",
    "SubmissionMode",
    "SubmitterPhase",
    "SubmitterView",
    "Timeouts",
    "next_state",
    "wants_dashboard",
]

D = DeploymentStatus
NORMAL, WARNING = "Normal", "Warning"


@dataclass
class _Pass:
    """The decision being built: the status so far and the actions so far."""

    o: Observed
    status: Status
    actions: list[act.Action] = field(default_factory=list)

    def set(self, **changes: Any) -> None:
        self.status = replace(self.status, **changes)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.actions.append(act.RecordEvent(type_, reason, message))

    def requeue(self) -> None:
        self.actions.append(act.RequeueAfter(self.o.timeouts.requeue))

    def decision(self) -> Decision:
        return Decision(self.status, tuple(self.actions))


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _age(o: Observed, since: datetime | None) -> float:
    return (o.now - since).total_seconds() if since else 0.0


# ---- endings ---------------------------------------------------------------------------------------


def _fail(p: _Pass, reason: Reason, message: str, *, job_status: JobStatus | None = None) -> None:
    """End the attempt as failed; retried (→ Retrying) while backoffLimit allows and the reason permits.

    job_status: what the Ray job now is; by default a live job is stopped and recorded as STOPPED.
    A Ray job that already ended SUCCEEDED or STOPPED keeps its outcome: the attempt completes instead.
    """
    current = p.status.job_status
    if current in (JobStatus.SUCCEEDED, JobStatus.STOPPED):
        _finish(p, current)
        return
    if job_status is None:
        job_status = JobStatus.STOPPED if current.live else current
        if current.live and p.status.job_id:
            p.actions.append(act.StopRayJob(p.status.job_id))
    failed = p.status.failed + 1
    p.set(job_status=job_status, reason=reason, message=message, failed=failed)
    if reason not in NOT_RETRIED and failed < p.o.spec.backoff_limit + 1:
        p.set(deployment=D.RETRYING)
        p.event(
            WARNING,
            "Retrying",
            f"{reason.value}: {message} (attempt {failed} of {p.o.spec.backoff_limit + 1})",
        )
        p.requeue()
        return
    p.set(deployment=D.FAILED, end_time=p.o.now)
    p.event(WARNING, reason.value, message)
    p.requeue()


def _finish(p: _Pass, info_status: JobStatus, reason: Reason = Reason.NONE, message: str = "") -> None:
    """The Ray job ended: FAILED fails the attempt (AppFailed unless `reason`); SUCCEEDED/STOPPED complete."""
    if info_status is JobStatus.FAILED:
        _fail(p, reason or Reason.APP_FAILED, message or p.status.message, job_status=JobStatus.FAILED)
        return
    succeeded = p.status.succeeded + (1 if info_status is JobStatus.SUCCEEDED else 0)
    p.set(deployment=D.COMPLETE, job_status=info_status, reason=reason, end_time=p.o.now, succeeded=succeeded)
    if message:
        p.set(message=message)
    p.event(NORMAL, "Completed", f"Ray job {p.status.job_id} ended {info_status.value}")
    p.requeue()


def _suspend(p: _Pass) -> bool:
    if not p.o.spec.suspend:
        return False
    p.set(deployment=D.SUSPENDING)
    p.event(NORMAL, "Suspending", "spec.suspend is true: releasing the RayCluster")
    p.requeue()
    return True


def _deadlines(p: _Pass, *, pre_running: bool) -> bool:
    spec, start = p.o.spec, p.status.start_time
    if spec.active_deadline_seconds is not None and _age(p.o, start) >= spec.active_deadline_seconds:
        _fail(
            p,
            Reason.DEADLINE_EXCEEDED,
            f"The RayJob has passed the activeDeadlineSeconds. StartTime: {_iso(start)}. "
            f"ActiveDeadlineSeconds: {spec.active_deadline_seconds}",
        )
        return True
    limit = spec.pre_running_deadline_seconds
    if pre_running and limit is not None and _age(p.o, start) >= limit:
        message = (
            f"The RayJob has passed the preRunningDeadlineSeconds. StartTime: {_iso(start)}. "
            f"PreRunningDeadlineSeconds: {limit}"
        )
        head = p.o.cluster.head
        if head is not None:
            message += f". Head pod: {_head_text(head)}"
        _fail(p, Reason.PRE_RUNNING_DEADLINE_EXCEEDED, message)
        return True
    return False


def _head_text(head: HeadProblem) -> str:
    return f"{head.reason}: {head.message}" if head.message else head.reason


def _cluster_gone(o: Observed) -> bool:
    return o.cluster.phase in (ClusterPhase.ABSENT, ClusterPhase.TERMINATING)


def _lose_cluster(p: _Pass) -> None:
    name = p.status.cluster_name
    lost = JobStatus.FAILED if p.status.job_status.live else p.status.job_status
    _fail(
        p,
        Reason.RAY_CLUSTER_LOST,
        f"RayCluster {name} disappeared while the RayJob needed it",
        job_status=lost,
    )


# ---- states ----------------------------------------------------------------------------------------


def _new(p: _Pass) -> None:
    o, spec = p.o, p.o.spec
    if not o.finalizer_present:
        p.actions.append(act.AddFinalizer())
    job_id = spec.job_id
    if not job_id and spec.mode is not SubmissionMode.INTERACTIVE:
        job_id = f"{spec.name}-{o.suffix}"
    cluster = spec.selected_cluster or f"{spec.name}-{o.suffix}"
    p.set(
        deployment=D.INITIALIZING,
        job_status=JobStatus.NEW,
        job_id=job_id,
        cluster_name=cluster,
        start_time=o.now,
        end_time=None,
        reason=Reason.NONE,
        message="",
    )
    p.event(NORMAL, "Initializing", f"RayCluster {cluster}, submission id {job_id or '(set by the user)'}")
    p.requeue()


def _initializing(p: _Pass) -> None:
    if _suspend(p) or _deadlines(p, pre_running=True):
        return
    o, spec, name = p.o, p.o.spec, p.status.cluster_name
    if o.cluster.phase is not ClusterPhase.READY:
        _wait_for_cluster(p)
        return
    url = p.status.dashboard_url or o.cluster.dashboard_url
    if not url:
        p.requeue()
        return
    p.set(dashboard_url=url, message="")
    if spec.mode is SubmissionMode.INTERACTIVE:
        p.set(deployment=D.WAITING)
        p.event(NORMAL, "Waiting", f"RayCluster {name} is ready; waiting for spec.jobId")
        p.requeue()
        return
    if spec.mode is SubmissionMode.K8S_JOB:
        submitter = o.submitter
        if submitter.phase is not SubmitterPhase.ABSENT and submitter.submission_id != p.status.job_id:
            p.actions.append(act.DeleteSubmitter())  # left from an earlier attempt: never reuse it
            p.requeue()
            return
        if submitter.phase is SubmitterPhase.ABSENT:
            p.actions.append(act.CreateSubmitterJob(p.status.job_id, url))
    p.set(deployment=D.RUNNING)
    p.event(NORMAL, "Running", f"RayCluster {name} is ready; {spec.mode.value} submits {p.status.job_id}")
    p.requeue()


def _wait_for_cluster(p: _Pass) -> None:
    o, spec, name = p.o, p.o.spec, p.status.cluster_name
    phase = o.cluster.phase
    if spec.selected_cluster and _cluster_gone(o):
        p.event(
            WARNING,
            "RayClusterNotFound",
            f"RayCluster {spec.namespace}/{name} selected by clusterSelector not found",
        )
    elif phase is ClusterPhase.ABSENT:
        p.actions += [
            act.BatchSchedule(),
            act.CreateCluster(name, p.status.job_id, sidecar=spec.mode is SubmissionMode.SIDECAR),
        ]
    if spec.submitter_in_gang and phase in (ClusterPhase.ABSENT, ClusterPhase.PROVISIONING):
        _gang_submitter(p)
    head = o.cluster.head
    if head is not None and phase is ClusterPhase.PROVISIONING:
        if head.fatal:
            _fail(p, Reason.HEAD_POD_FAILED, f"Head pod of RayCluster {name} cannot run: {_head_text(head)}")
            return
        message = f"Head pod of RayCluster {name} is not running: {_head_text(head)}"
        if message != p.status.message:
            p.set(message=message)
            p.event(WARNING, "HeadPodNotRunning", message)
    p.requeue()


def _gang_submitter(p: _Pass) -> None:
    """The submitter Pod is a gang member: it exists while the cluster comes up (waiting for the
    dashboard), so the gang can form; one left from an earlier attempt is replaced first."""
    submitter = p.o.submitter
    if submitter.phase is SubmitterPhase.ABSENT:
        p.actions.append(act.CreateSubmitterJob(p.status.job_id, ""))
    elif submitter.submission_id != p.status.job_id:
        p.actions.append(act.DeleteSubmitter())


def _waiting(p: _Pass) -> None:
    if _suspend(p) or _deadlines(p, pre_running=True):
        return
    if _cluster_gone(p.o):
        _lose_cluster(p)
        return
    job_id = p.o.spec.job_id
    if job_id:
        p.set(job_id=job_id, deployment=D.RUNNING)
        p.event(NORMAL, "Running", f"spec.jobId set: following Ray job {job_id}")
    p.requeue()


def _running(p: _Pass) -> None:
    o, spec = p.o, p.o.spec
    if _suspend(p):
        return
    if isinstance(o.dashboard, RayJobInfo) and o.dashboard.status.terminal:
        p.set(job_status=o.dashboard.status)  # an outcome seen this pass beats a deadline reached this pass
    if _deadlines(p, pre_running=False):
        return
    if _cluster_gone(o):
        _lose_cluster(p)
        return
    if spec.mode is SubmissionMode.SIDECAR and o.cluster.head_pod_missing:
        lost = JobStatus.FAILED if p.status.job_status.live else p.status.job_status
        _fail(p, Reason.APP_FAILED, "Ray head pod not found.", job_status=lost)
        return
    if not spec.selected_cluster:
        p.actions.append(act.EnsureHeadService(p.status.cluster_name))
    dashboard = o.dashboard
    if isinstance(dashboard, RayJobInfo):
        _job_seen(p, dashboard)
    elif isinstance(dashboard, JobNotFound):
        _job_not_found(p)
    elif isinstance(dashboard, DashboardUnreachable):
        _unreachable(p, dashboard.error)
    else:
        p.requeue()


def _job_seen(p: _Pass, info: RayJobInfo) -> None:
    o = p.o
    p.set(
        job_status=info.status,
        message=info.message,
        ray_start_time=info.start_time or p.status.ray_start_time,
        ray_end_time=info.end_time or p.status.ray_end_time,
        check_failure_since=None,
    )
    submitter = o.submitter
    if info.status.terminal:
        if not o.spec.mode.has_submitter or submitter.phase.finished:
            _finish(p, info.status)
        elif _age(o, p.status.ray_end_time or o.now) >= o.timeouts.transition_grace:
            _finish(p, info.status, Reason.TRANSITION_GRACE_PERIOD_EXCEEDED, info.message)
        else:
            p.requeue()
        return
    if o.spec.mode.has_submitter and submitter.phase is SubmitterPhase.FAILED:
        if p.status.reason is not Reason.SUBMITTER_FAILED:
            p.event(
                WARNING,
                Reason.SUBMITTER_FAILED.value,
                f"The submitter failed ({submitter.reason}: {submitter.message}) but Ray job "
                f"{p.status.job_id} is {info.status.value}; following the Ray job",
            )
        p.set(reason=Reason.SUBMITTER_FAILED)
    else:
        p.set(reason=Reason.NONE)
    p.requeue()


def _job_not_found(p: _Pass) -> None:
    o, status = p.o, p.status
    p.set(check_failure_since=None)
    if status.job_status is not JobStatus.NEW:
        _fail(
            p,
            Reason.RAY_JOB_LOST,
            f"Ray job {status.job_id} was {status.job_status.value} but RayCluster {status.cluster_name} no "
            "longer knows it (its head restarted?)",
            job_status=JobStatus.FAILED,
        )
        return
    mode, submitter = o.spec.mode, o.submitter
    if mode is SubmissionMode.HTTP:
        p.actions.append(act.SubmitHTTP(status.job_id))
    elif mode.has_submitter and submitter.phase is SubmitterPhase.FAILED:
        _fail(
            p,
            Reason.SUBMISSION_FAILED,
            f"Job submission has failed. Reason: {submitter.reason}. Message: {submitter.message}",
        )
        return
    elif mode.has_submitter and submitter.phase is SubmitterPhase.SUCCEEDED:
        _fail(p, Reason.APP_FAILED, "Submitter completed but Ray job not found in RayCluster.")
        return
    elif mode is SubmissionMode.K8S_JOB and submitter.phase is SubmitterPhase.ABSENT:
        p.actions.append(act.CreateSubmitterJob(status.job_id, status.dashboard_url))
    p.requeue()


def _unreachable(p: _Pass, error: str) -> None:
    o = p.o
    since = p.status.check_failure_since or o.now
    p.set(check_failure_since=since)
    if _age(o, since) < o.timeouts.status_check:
        p.requeue()
        return
    message = f"The Ray dashboard has not answered since {_iso(since)}: {error}"
    if o.cluster.head is not None:
        message += f". Head pod: {_head_text(o.cluster.head)}"
    _fail(p, Reason.STATUS_CHECK_TIMEOUT_EXCEEDED, message)


def _release(p: _Pass) -> None:
    """Suspending and Retrying: delete the cluster (if owned) and submitter, wait, reset the attempt."""
    o, spec = p.o, p.o.spec
    waiting = False
    if not spec.selected_cluster and o.cluster.phase is not ClusterPhase.ABSENT:
        waiting = True
        if o.cluster.phase is not ClusterPhase.TERMINATING:
            p.actions.append(act.DeleteCluster(p.status.cluster_name))
    if spec.mode is SubmissionMode.K8S_JOB and o.submitter.phase is not SubmitterPhase.ABSENT:
        waiting = True
        p.actions.append(act.DeleteSubmitter())
    if waiting:
        p.requeue()
        return
    p.actions.append(act.CleanupBatchScheduling())
    suspending = p.status.deployment is D.SUSPENDING
    p.set(
        deployment=D.SUSPENDED if suspending else D.NEW,
        job_status=JobStatus.NEW,
        cluster_name="",
        dashboard_url="",
        job_id="",
        message="",
        reason=Reason.NONE,
        ray_start_time=None,
        ray_end_time=None,
        check_failure_since=None,
    )
    if suspending:
        p.event(NORMAL, "Suspended", "RayCluster and submitter deleted")
    else:
        p.event(
            NORMAL, "Retrying", "Previous attempt cleaned up; starting a new attempt on a fresh RayCluster"
        )
        p.requeue()


def _suspended(p: _Pass) -> None:
    if not p.o.spec.suspend:
        p.set(deployment=D.NEW, job_status=JobStatus.NEW)
        p.event(NORMAL, "Resumed", "spec.suspend is false: starting on a fresh RayCluster")
        p.requeue()


def _validation_failed(p: _Pass) -> None:
    p.set(deployment=D.NEW, reason=Reason.NONE, message="")
    p.event(NORMAL, "ValidationPassed", "The RayJob spec is valid again")
    p.requeue()


def _terminal(p: _Pass, gates: FeatureGates) -> None:
    o, status = p.o, p.status
    p.actions.append(act.CleanupBatchScheduling())
    finished_at = status.end_time or o.now
    p.set(end_time=finished_at)
    facts = DeletionStatus(
        job_status=status.job_status.value,
        deployment_status=status.deployment.value,
        cluster_name=status.cluster_name,
        cluster_exists=not _cluster_gone(o),
        workers_suspended=o.cluster.workers_suspended,
    )
    deletions, wait = plan_deletion(o.spec.deletion, facts, finished_at, o.now, gates)
    p.actions += deletions
    if wait is not None:
        p.actions.append(act.RequeueAfter(wait))


_HANDLERS: dict[DeploymentStatus, Callable[[_Pass], None]] = {
    D.NEW: _new,
    D.INITIALIZING: _initializing,
    D.WAITING: _waiting,
    D.RUNNING: _running,
    D.SUSPENDING: _release,
    D.RETRYING: _release,
    D.SUSPENDED: _suspended,
    D.VALIDATION_FAILED: _validation_failed,
}

_NOTHING_LIVE = frozenset({D.NEW, D.SUSPENDED, D.VALIDATION_FAILED})


def _invalid(p: _Pass, error: str) -> bool:
    """Handle a spec that fails validation; True when that ends the pass."""
    o = p.o
    text = f"{o.spec.namespace}/{o.spec.name}: {error}"
    if p.status.deployment in _NOTHING_LIVE:
        if p.status.deployment is not D.VALIDATION_FAILED or p.status.message != error:
            p.event(WARNING, "InvalidRayJobSpec", text)
        p.set(deployment=D.VALIDATION_FAILED, reason=Reason.VALIDATION_FAILED, message=error)
        return True
    if o.generation != p.status.observed_generation:
        p.event(WARNING, "InvalidRayJobSpec", f"{text} (ignored: the running attempt continues)")
    return False


def next_state(o: Observed, gates: FeatureGates | None = None) -> Decision:
    """Decide one reconcile pass of a RayJob from everything it observed."""
    p = _Pass(o, o.status)
    deployment = o.status.deployment
    if deployment in TERMINAL_DEPLOYMENT:
        _terminal(p, gates or FeatureGates())
    elif not (o.validation_error and _invalid(p, o.validation_error)):
        _HANDLERS[deployment](p)
    p.set(observed_generation=o.generation)
    return p.decision()
