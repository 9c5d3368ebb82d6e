"""next_state: one row per RayJob lifecycle transition, including the KubeRay complaint scenarios.

Each row gives the observed snapshot, the status fields the decision must hold, and the exact ordered
actions (events compared by type and reason).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ray_operator.models import RayJob
from ray_operator.rayjob.actions import (
    Action,
    AddFinalizer,
    BatchSchedule,
    CleanupBatchScheduling,
    CreateCluster,
    CreateSubmitterJob,
    DeleteCluster,
    DeleteSelf,
    DeleteSubmitter,
    EnsureHeadService,
    RecordEvent,
    RequeueAfter,
    StopRayJob,
    SubmitHTTP,
)
from ray_operator.rayjob.deletion import DeletionSpec, Policy, Rule
from ray_operator.rayjob.state import (
    ClusterPhase,
    ClusterView,
    DashboardUnreachable,
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
    next_state,
    wants_dashboard,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
START = NOW - timedelta(seconds=100)
D, J, R, M = DeploymentStatus, JobStatus, Reason, SubmissionMode
ID = "job-abcde"
URL = f"{ID}-head-svc.ns.svc.cluster.local:8265"
REQ = RequeueAfter(3.0)

SPEC = Spec(name="job", namespace="ns")
HTTP, SIDECAR, INTERACTIVE = (replace(SPEC, mode=m) for m in (M.HTTP, M.SIDECAR, M.INTERACTIVE))
SELECTOR = replace(SPEC, selected_cluster="shared")

READY = ClusterView(ClusterPhase.READY, dashboard_url=URL)
PROVISIONING = ClusterView(ClusterPhase.PROVISIONING)
GONE = ClusterView(ClusterPhase.ABSENT)
TERMINATING = ClusterView(ClusterPhase.TERMINATING)
CRASHING = HeadProblem("CrashLoopBackOff", "back-off 5m0s restarting failed container ray-head")
CONFIG_ERROR = HeadProblem("CreateContainerConfigError", 'secret "creds" not found')

SUB_ACTIVE = SubmitterView(SubmitterPhase.ACTIVE, submission_id=ID)
SUB_OK = SubmitterView(SubmitterPhase.SUCCEEDED, submission_id=ID, finished_at=NOW - timedelta(seconds=5))
SUB_FAILED = SubmitterView(
    SubmitterPhase.FAILED,
    submission_id=ID,
    reason="BackoffLimitExceeded",
    message="Job has reached the limit",
)


def info(status: JobStatus, end_ago: float | None = None) -> RayJobInfo:
    end = NOW - timedelta(seconds=end_ago) if end_ago is not None else None
    return RayJobInfo(status, message=f"job is {status.value}", start_time=START, end_time=end)


def st(deployment: DeploymentStatus, **changes: Any) -> Status:
    base = Status(deployment=deployment, job_id=ID, cluster_name=ID, start_time=START)
    if deployment in (D.RUNNING, D.COMPLETE, D.FAILED):
        base = replace(base, dashboard_url=URL, job_status=J.RUNNING)
    return replace(base, **changes)


def ev(type_: str, reason: str) -> tuple[str, str, str]:
    return ("event", type_, reason)


def warn(reason: str) -> tuple[str, str, str]:
    return ev("Warning", reason)


def normal(reason: str) -> tuple[str, str, str]:
    return ev("Normal", reason)


@dataclass(frozen=True)
class Row:
    observed: Observed
    expect: dict[str, Any]
    actions: list[Any]


def row(status: Status, expect: dict[str, Any], actions: list[Any], **observed: Any) -> Row:
    observed.setdefault("spec", SPEC)
    observed.setdefault("cluster", READY)
    return Row(Observed(status=status, now=NOW, suffix="xyz12", **observed), expect, actions)


def deadline(seconds: int, **kw: Any) -> Spec:
    return replace(SPEC, **{f"{kw.pop('kind', 'active')}_deadline_seconds": seconds}, **kw)


SHUTDOWN_10 = replace(
    SPEC, deletion=DeletionSpec(shutdown_after_job_finishes=True, ttl_seconds_after_finished=10)
)

ROWS: dict[str, Row] = {
    # ---- New -> Initializing
    "New->Initializing: finalizer, generated ids, startTime": row(
        Status(),
        {"deployment": D.INITIALIZING, "job_id": "job-xyz12", "cluster_name": "job-xyz12", "start_time": NOW},
        [AddFinalizer(), normal("Initializing"), REQ],
        finalizer_present=False,
        cluster=GONE,
    ),
    "New->Initializing: spec.jobId kept": row(
        Status(),
        {"job_id": "mine", "cluster_name": "job-xyz12"},
        [normal("Initializing"), REQ],
        spec=replace(SPEC, job_id="mine"),
    ),
    "New->Initializing: InteractiveMode waits for the user's id": row(
        Status(),
        {"job_id": "", "deployment": D.INITIALIZING},
        [normal("Initializing"), REQ],
        spec=INTERACTIVE,
    ),
    "New->Initializing: clusterSelector names the cluster": row(
        Status(), {"cluster_name": "shared"}, [normal("Initializing"), REQ], spec=SELECTOR
    ),
    "New->Initializing: even when suspended (Kueue)": row(
        Status(),
        {"deployment": D.INITIALIZING},
        [normal("Initializing"), REQ],
        spec=replace(SPEC, suspend=True),
    ),
    "New->Initializing: after a retry counters stay, names are new": row(
        Status(failed=1),
        {"failed": 1, "job_id": "job-xyz12", "end_time": None},
        [normal("Initializing"), REQ],
    ),
    # ---- Initializing
    "Initializing->Suspending: suspend": row(
        st(D.INITIALIZING),
        {"deployment": D.SUSPENDING},
        [normal("Suspending"), REQ],
        spec=replace(SPEC, suspend=True),
    ),
    "Initializing->Failed: activeDeadlineSeconds": row(
        st(D.INITIALIZING),
        {
            "deployment": D.FAILED,
            "reason": R.DEADLINE_EXCEEDED,
            "failed": 1,
            "end_time": NOW,
            "job_status": J.NEW,
        },
        [warn("DeadlineExceeded"), REQ],
        spec=deadline(100),
        cluster=PROVISIONING,
    ),
    "Initializing->Failed: DeadlineExceeded never retried": row(
        st(D.INITIALIZING),
        {"deployment": D.FAILED, "reason": R.DEADLINE_EXCEEDED},
        [warn("DeadlineExceeded"), REQ],
        spec=deadline(50, backoff_limit=3),
    ),
    "Initializing->Failed: preRunningDeadline names the CrashLoopBackOff head": row(
        st(D.INITIALIZING),
        {"deployment": D.FAILED, "reason": R.PRE_RUNNING_DEADLINE_EXCEEDED},
        [warn("PreRunningDeadlineExceeded"), REQ],
        spec=deadline(60, kind="pre_running"),
        cluster=replace(PROVISIONING, head=CRASHING),
    ),
    "Initializing->Retrying: preRunningDeadline is retried": row(
        st(D.INITIALIZING),
        {"deployment": D.RETRYING, "failed": 1, "end_time": None},
        [warn("Retrying"), REQ],
        spec=deadline(60, kind="pre_running", backoff_limit=1),
        cluster=PROVISIONING,
    ),
    "Initializing: no cluster -> batch scheduling, create it": row(
        st(D.INITIALIZING),
        {"deployment": D.INITIALIZING},
        [BatchSchedule(), CreateCluster(ID, ID), REQ],
        cluster=GONE,
    ),
    "Initializing: gang-scheduled K8sJobMode -> the submitter Job is created with the cluster": row(
        st(D.INITIALIZING),
        {"deployment": D.INITIALIZING},
        [BatchSchedule(), CreateCluster(ID, ID), CreateSubmitterJob(ID, ""), REQ],
        spec=replace(SPEC, submitter_in_gang=True),
        cluster=GONE,
    ),
    "Initializing: gang-scheduled, submitter already there -> only the cluster": row(
        st(D.INITIALIZING),
        {"deployment": D.INITIALIZING},
        [BatchSchedule(), CreateCluster(ID, ID), REQ],
        spec=replace(SPEC, submitter_in_gang=True),
        cluster=GONE,
        submitter=SUB_ACTIVE,
    ),
    "Initializing: gang-scheduled, cluster ready, submitter of this id running -> Running, no 2nd Job": row(
        st(D.INITIALIZING),
        {"deployment": D.RUNNING, "dashboard_url": URL},
        [normal("Running"), REQ],
        spec=replace(SPEC, submitter_in_gang=True),
        cluster=READY,
        submitter=SUB_ACTIVE,
    ),
    "Initializing: gang-scheduled, cluster provisioning, no submitter -> create it now": row(
        st(D.INITIALIZING),
        {"deployment": D.INITIALIZING},
        [CreateSubmitterJob(ID, ""), REQ],
        spec=replace(SPEC, submitter_in_gang=True),
        cluster=PROVISIONING,
    ),
    "Initializing: gang-scheduled, submitter of an earlier attempt -> delete it first": row(
        st(D.INITIALIZING),
        {"deployment": D.INITIALIZING},
        [BatchSchedule(), CreateCluster(ID, ID), DeleteSubmitter(), REQ],
        spec=replace(SPEC, submitter_in_gang=True),
        cluster=GONE,
        submitter=SubmitterView(SubmitterPhase.ACTIVE, submission_id="job-old12"),
    ),
    "Initializing: gang-scheduled, cluster terminating -> no submitter yet": row(
        st(D.INITIALIZING), {}, [REQ], spec=replace(SPEC, submitter_in_gang=True), cluster=TERMINATING
    ),
    "Initializing: SidecarMode cluster carries the submitter": row(
        st(D.INITIALIZING),
        {},
        [BatchSchedule(), CreateCluster(ID, ID, sidecar=True), REQ],
        spec=SIDECAR,
        cluster=GONE,
    ),
    "Initializing: cluster terminating -> wait": row(st(D.INITIALIZING), {}, [REQ], cluster=TERMINATING),
    "Initializing: selected cluster missing -> event, never create": row(
        st(D.INITIALIZING, cluster_name="shared"),
        {"deployment": D.INITIALIZING},
        [warn("RayClusterNotFound"), REQ],
        spec=SELECTOR,
        cluster=GONE,
    ),
    "Initializing: cluster provisioning -> wait": row(
        st(D.INITIALIZING), {"message": ""}, [REQ], cluster=PROVISIONING
    ),
    "Initializing: head CreateContainerConfigError reported once": row(
        st(D.INITIALIZING),
        {
            "deployment": D.INITIALIZING,
            "message": f"Head pod of RayCluster {ID} is not running: "
            'CreateContainerConfigError: secret "creds" not found',
        },
        [warn("HeadPodNotRunning"), REQ],
        cluster=replace(PROVISIONING, head=CONFIG_ERROR),
    ),
    "Initializing: same head problem again -> no second event": row(
        st(
            D.INITIALIZING,
            message=f"Head pod of RayCluster {ID} is not running: "
            'CreateContainerConfigError: secret "creds" not found',
        ),
        {},
        [REQ],
        cluster=replace(PROVISIONING, head=CONFIG_ERROR),
    ),
    "Initializing->Failed: fatal head problem": row(
        st(D.INITIALIZING),
        {"deployment": D.FAILED, "reason": R.HEAD_POD_FAILED},
        [warn("HeadPodFailed"), REQ],
        cluster=replace(PROVISIONING, head=HeadProblem("InvalidImageName", "bad ref", fatal=True)),
    ),
    "Initializing: ready but no dashboard URL yet -> wait": row(
        st(D.INITIALIZING), {"deployment": D.INITIALIZING}, [REQ], cluster=ClusterView(ClusterPhase.READY)
    ),
    "Initializing->Running: K8sJobMode creates the submitter": row(
        st(D.INITIALIZING),
        {"deployment": D.RUNNING, "dashboard_url": URL},
        [CreateSubmitterJob(ID, URL), normal("Running"), REQ],
    ),
    "Initializing->Running: K8sJobMode submitter for this id exists": row(
        st(D.INITIALIZING), {"deployment": D.RUNNING}, [normal("Running"), REQ], submitter=SUB_ACTIVE
    ),
    "Initializing: stale submitter of another id deleted first": row(
        st(D.INITIALIZING),
        {"deployment": D.INITIALIZING},
        [DeleteSubmitter(), REQ],
        submitter=replace(SUB_FAILED, submission_id="job-old01"),
    ),
    "Initializing->Running: HTTPMode": row(
        st(D.INITIALIZING), {"deployment": D.RUNNING}, [normal("Running"), REQ], spec=HTTP
    ),
    "Initializing->Running: SidecarMode": row(
        st(D.INITIALIZING), {"deployment": D.RUNNING}, [normal("Running"), REQ], spec=SIDECAR
    ),
    "Initializing->Waiting: InteractiveMode": row(
        st(D.INITIALIZING, job_id=""),
        {"deployment": D.WAITING, "dashboard_url": URL},
        [normal("Waiting"), REQ],
        spec=INTERACTIVE,
    ),
    # ---- Waiting
    "Waiting: no spec.jobId yet": row(
        st(D.WAITING, job_id=""), {"deployment": D.WAITING}, [REQ], spec=INTERACTIVE
    ),
    "Waiting->Running: spec.jobId set": row(
        st(D.WAITING, job_id=""),
        {"deployment": D.RUNNING, "job_id": "mine"},
        [normal("Running"), REQ],
        spec=replace(INTERACTIVE, job_id="mine"),
    ),
    "Waiting->Failed: preRunningDeadline": row(
        st(D.WAITING, job_id=""),
        {"deployment": D.FAILED, "reason": R.PRE_RUNNING_DEADLINE_EXCEEDED},
        [warn("PreRunningDeadlineExceeded"), REQ],
        spec=replace(INTERACTIVE, pre_running_deadline_seconds=10),
    ),
    "Waiting->Suspending: suspend (Kueue preemption)": row(
        st(D.WAITING, job_id=""),
        {"deployment": D.SUSPENDING},
        [normal("Suspending"), REQ],
        spec=replace(INTERACTIVE, suspend=True),
    ),
    "Waiting->Failed: cluster lost": row(
        st(D.WAITING, job_id=""),
        {"deployment": D.FAILED, "reason": R.RAY_CLUSTER_LOST},
        [warn("RayClusterLost"), REQ],
        spec=INTERACTIVE,
        cluster=GONE,
    ),
    # ---- Running
    "Running->Suspending: suspend": row(
        st(D.RUNNING),
        {"deployment": D.SUSPENDING},
        [normal("Suspending"), REQ],
        spec=replace(SPEC, suspend=True),
    ),
    "Running->Failed: activeDeadline stops the live job, jobStatus STOPPED": row(
        st(D.RUNNING),
        {"deployment": D.FAILED, "reason": R.DEADLINE_EXCEEDED, "job_status": J.STOPPED},
        [StopRayJob(ID), warn("DeadlineExceeded"), REQ],
        spec=deadline(100),
        dashboard=info(J.RUNNING),
    ),
    "Running->Failed: cluster deleted under a running job (no hang, no leak)": row(
        st(D.RUNNING),
        {"deployment": D.FAILED, "reason": R.RAY_CLUSTER_LOST, "job_status": J.FAILED},
        [warn("RayClusterLost"), REQ],
        cluster=GONE,
    ),
    "Running->Retrying: cluster lost is retried on a fresh cluster": row(
        st(D.RUNNING),
        {"deployment": D.RETRYING, "failed": 1, "job_status": J.FAILED},
        [warn("Retrying"), REQ],
        cluster=TERMINATING,
        spec=replace(SPEC, backoff_limit=2),
    ),
    "Running->Complete: activeDeadline after the Ray job SUCCEEDED keeps its outcome": row(
        st(D.RUNNING, job_status=J.SUCCEEDED),
        {"deployment": D.COMPLETE, "job_status": J.SUCCEEDED, "succeeded": 1, "failed": 0},
        [normal("Completed"), REQ],
        spec=deadline(100),
    ),
    "Running->Complete: Ray job SUCCEEDED in the pass the deadline passes": row(
        st(D.RUNNING),
        {"deployment": D.COMPLETE, "job_status": J.SUCCEEDED, "failed": 0},
        [normal("Completed"), REQ],
        spec=deadline(100),
        dashboard=info(J.SUCCEEDED, 1),
        submitter=SUB_ACTIVE,
    ),
    "Running->Complete: cluster deleted after the Ray job SUCCEEDED": row(
        st(D.RUNNING, job_status=J.SUCCEEDED),
        {"deployment": D.COMPLETE, "job_status": J.SUCCEEDED},
        [normal("Completed"), REQ],
        cluster=GONE,
    ),
    "Running->Failed: SidecarMode head pod gone": row(
        st(D.RUNNING),
        {
            "deployment": D.FAILED,
            "reason": R.APP_FAILED,
            "message": "Ray head pod not found.",
            "job_status": J.FAILED,
        },
        [warn("AppFailed"), REQ],
        spec=SIDECAR,
        cluster=replace(READY, head_pod_missing=True),
    ),
    "Running: PENDING copied, head Service ensured": row(
        st(D.RUNNING, job_status=J.NEW),
        {"deployment": D.RUNNING, "job_status": J.PENDING, "message": "job is PENDING"},
        [EnsureHeadService(ID), REQ],
        dashboard=info(J.PENDING),
        submitter=SUB_ACTIVE,
    ),
    "Running: selected cluster gets no RayJob head Service": row(
        st(D.RUNNING, cluster_name="shared"),
        {"deployment": D.RUNNING},
        [REQ],
        spec=SELECTOR,
        dashboard=info(J.RUNNING),
        submitter=SUB_ACTIVE,
    ),
    "Running: submitter died, Ray job RUNNING -> stays Running (SubmitterFailed warning)": row(
        st(D.RUNNING),
        {"deployment": D.RUNNING, "job_status": J.RUNNING, "reason": R.SUBMITTER_FAILED},
        [EnsureHeadService(ID), warn("SubmitterFailed"), REQ],
        dashboard=info(J.RUNNING),
        submitter=SUB_FAILED,
    ),
    "Running: submitter failure already reported -> no second event": row(
        st(D.RUNNING, reason=R.SUBMITTER_FAILED),
        {"deployment": D.RUNNING, "reason": R.SUBMITTER_FAILED},
        [EnsureHeadService(ID), REQ],
        dashboard=info(J.RUNNING),
        submitter=SUB_FAILED,
    ),
    "Running->Complete: SUCCEEDED and submitter finished": row(
        st(D.RUNNING),
        {
            "deployment": D.COMPLETE,
            "job_status": J.SUCCEEDED,
            "succeeded": 1,
            "end_time": NOW,
            "ray_end_time": NOW - timedelta(seconds=2),
        },
        [EnsureHeadService(ID), normal("Completed"), REQ],
        dashboard=info(J.SUCCEEDED, 2),
        submitter=SUB_OK,
    ),
    "Running->Complete: SUCCEEDED even though the submitter failed": row(
        st(D.RUNNING),
        {"deployment": D.COMPLETE, "job_status": J.SUCCEEDED, "reason": R.NONE},
        [EnsureHeadService(ID), normal("Completed"), REQ],
        dashboard=info(J.SUCCEEDED, 2),
        submitter=SUB_FAILED,
    ),
    "Running: SUCCEEDED, submitter still tailing -> wait": row(
        st(D.RUNNING),
        {"deployment": D.RUNNING, "job_status": J.SUCCEEDED},
        [EnsureHeadService(ID), REQ],
        dashboard=info(J.SUCCEEDED, 10),
        submitter=SUB_ACTIVE,
    ),
    "Running->Complete: submitter past the transition grace period": row(
        st(D.RUNNING),
        {"deployment": D.COMPLETE, "reason": R.TRANSITION_GRACE_PERIOD_EXCEEDED},
        [EnsureHeadService(ID), normal("Completed"), REQ],
        dashboard=info(J.SUCCEEDED, 300),
        submitter=SUB_ACTIVE,
    ),
    "Running->Failed: Ray job FAILED -> AppFailed": row(
        st(D.RUNNING),
        {
            "deployment": D.FAILED,
            "reason": R.APP_FAILED,
            "job_status": J.FAILED,
            "failed": 1,
            "message": "job is FAILED",
        },
        [EnsureHeadService(ID), warn("AppFailed"), REQ],
        dashboard=info(J.FAILED, 1),
        submitter=SUB_OK,
    ),
    "Running->Retrying: Ray job FAILED within backoffLimit": row(
        st(D.RUNNING),
        {"deployment": D.RETRYING, "reason": R.APP_FAILED, "failed": 1},
        [EnsureHeadService(ID), warn("Retrying"), REQ],
        dashboard=info(J.FAILED, 1),
        submitter=SUB_OK,
        spec=replace(SPEC, backoff_limit=1),
    ),
    "Running->Failed: backoffLimit exhausted": row(
        st(D.RUNNING, failed=1),
        {"deployment": D.FAILED, "failed": 2},
        [EnsureHeadService(ID), warn("AppFailed"), REQ],
        dashboard=info(J.FAILED, 1),
        submitter=SUB_OK,
        spec=replace(SPEC, backoff_limit=1),
    ),
    "Running->Complete: STOPPED by the user": row(
        st(D.RUNNING),
        {"deployment": D.COMPLETE, "job_status": J.STOPPED, "succeeded": 0},
        [EnsureHeadService(ID), normal("Completed"), REQ],
        dashboard=info(J.STOPPED, 1),
        submitter=SUB_OK,
    ),
    "Running->Complete: HTTPMode needs no submitter": row(
        st(D.RUNNING),
        {"deployment": D.COMPLETE},
        [EnsureHeadService(ID), normal("Completed"), REQ],
        spec=HTTP,
        dashboard=info(J.SUCCEEDED, 1),
    ),
    "Running->Complete: InteractiveMode": row(
        st(D.RUNNING),
        {"deployment": D.COMPLETE},
        [EnsureHeadService(ID), normal("Completed"), REQ],
        spec=INTERACTIVE,
        dashboard=info(J.SUCCEEDED, 1),
    ),
    "Running: HTTPMode 404 on a never-seen job -> submit by jobId": row(
        st(D.RUNNING, job_status=J.NEW),
        {"deployment": D.RUNNING},
        [EnsureHeadService(ID), SubmitHTTP(ID), REQ],
        spec=HTTP,
        dashboard=JobNotFound(),
    ),
    "Running->Failed: HTTPMode 404 after the job was seen -> lost, never resubmitted": row(
        st(D.RUNNING),
        {"deployment": D.FAILED, "reason": R.RAY_JOB_LOST, "job_status": J.FAILED},
        [EnsureHeadService(ID), warn("RayJobLost"), REQ],
        spec=HTTP,
        dashboard=JobNotFound(),
    ),
    "Running->Failed: head restarted, K8sJobMode job gone": row(
        st(D.RUNNING),
        {"deployment": D.FAILED, "reason": R.RAY_JOB_LOST, "job_status": J.FAILED},
        [EnsureHeadService(ID), warn("RayJobLost"), REQ],
        dashboard=JobNotFound(),
        submitter=SUB_ACTIVE,
    ),
    "Running: 404 while the submitter is still submitting -> wait": row(
        st(D.RUNNING, job_status=J.NEW),
        {"deployment": D.RUNNING},
        [EnsureHeadService(ID), REQ],
        dashboard=JobNotFound(),
        submitter=SUB_ACTIVE,
    ),
    "Running->Failed: submitter failed and no Ray job -> SubmissionFailed": row(
        st(D.RUNNING, job_status=J.NEW),
        {
            "deployment": D.FAILED,
            "reason": R.SUBMISSION_FAILED,
            "job_status": J.NEW,
            "message": "Job submission has failed. Reason: BackoffLimitExceeded. "
            "Message: Job has reached the limit",
        },
        [EnsureHeadService(ID), warn("SubmissionFailed"), REQ],
        dashboard=JobNotFound(),
        submitter=SUB_FAILED,
    ),
    "Running->Failed: submitter completed but no Ray job -> AppFailed": row(
        st(D.RUNNING, job_status=J.NEW),
        {
            "deployment": D.FAILED,
            "reason": R.APP_FAILED,
            "message": "Submitter completed but Ray job not found in RayCluster.",
        },
        [EnsureHeadService(ID), warn("AppFailed"), REQ],
        dashboard=JobNotFound(),
        submitter=SUB_OK,
    ),
    "Running: K8sJobMode submitter Job missing and no Ray job -> recreate it": row(
        st(D.RUNNING, job_status=J.NEW),
        {"deployment": D.RUNNING},
        [EnsureHeadService(ID), CreateSubmitterJob(ID, URL), REQ],
        dashboard=JobNotFound(),
    ),
    "Running: dashboard unreachable starts the check timer": row(
        st(D.RUNNING),
        {"deployment": D.RUNNING, "check_failure_since": NOW, "job_status": J.RUNNING},
        [EnsureHeadService(ID), REQ],
        dashboard=DashboardUnreachable("connection refused"),
        submitter=SUB_ACTIVE,
    ),
    "Running: dashboard unreachable within the timeout keeps the timer": row(
        st(D.RUNNING, check_failure_since=NOW - timedelta(seconds=299)),
        {"deployment": D.RUNNING, "check_failure_since": NOW - timedelta(seconds=299)},
        [EnsureHeadService(ID), REQ],
        dashboard=DashboardUnreachable("timeout"),
        submitter=SUB_ACTIVE,
    ),
    "Running->Failed: head pod dead, dashboard silent past timeout (no hang), not retried": row(
        st(D.RUNNING, check_failure_since=NOW - timedelta(seconds=300)),
        {"deployment": D.FAILED, "reason": R.STATUS_CHECK_TIMEOUT_EXCEEDED, "job_status": J.STOPPED},
        [EnsureHeadService(ID), StopRayJob(ID), warn("JobStatusCheckTimeoutExceeded"), REQ],
        dashboard=DashboardUnreachable("connection refused"),
        submitter=SUB_ACTIVE,
        spec=replace(SPEC, backoff_limit=2),
        cluster=replace(READY, head=CRASHING),
    ),
    "Running: dashboard answers again -> timer cleared": row(
        st(D.RUNNING, check_failure_since=NOW - timedelta(seconds=30)),
        {"check_failure_since": None},
        [EnsureHeadService(ID), REQ],
        dashboard=info(J.RUNNING),
        submitter=SUB_ACTIVE,
    ),
    "Running: dashboard not queried -> requeue": row(
        st(D.RUNNING), {"deployment": D.RUNNING}, [EnsureHeadService(ID), REQ]
    ),
    # ---- Suspending / Retrying
    "Suspending: delete cluster and submitter, wait": row(
        st(D.SUSPENDING),
        {"deployment": D.SUSPENDING},
        [DeleteCluster(ID), DeleteSubmitter(), REQ],
        submitter=SUB_ACTIVE,
    ),
    "Suspending: cluster already terminating -> no second delete": row(
        st(D.SUSPENDING), {"deployment": D.SUSPENDING}, [REQ], cluster=TERMINATING
    ),
    "Suspending->Suspended: everything gone, status reset": row(
        st(D.SUSPENDING, job_status=J.RUNNING, dashboard_url=URL, reason=R.SUBMITTER_FAILED),
        {
            "deployment": D.SUSPENDED,
            "job_status": J.NEW,
            "job_id": "",
            "cluster_name": "",
            "dashboard_url": "",
            "reason": R.NONE,
        },
        [CleanupBatchScheduling(), normal("Suspended")],
        cluster=GONE,
    ),
    "Retrying: HTTPMode has no submitter to delete": row(
        st(D.RETRYING),
        {"deployment": D.RETRYING},
        [DeleteCluster(ID), REQ],
        spec=HTTP,
        submitter=SUB_FAILED,
    ),
    "Retrying: selected cluster is never deleted": row(
        st(D.RETRYING, cluster_name="shared"),
        {"deployment": D.NEW},
        [CleanupBatchScheduling(), normal("Retrying"), REQ],
        spec=replace(SELECTOR, mode=M.HTTP),
    ),
    "Retrying->New: cleaned up, fresh attempt next": row(
        st(D.RETRYING, failed=1),
        {"deployment": D.NEW, "failed": 1, "job_id": "", "cluster_name": ""},
        [CleanupBatchScheduling(), normal("Retrying"), REQ],
        cluster=GONE,
    ),
    # ---- Suspended
    "Suspended: stays without requeue": row(
        Status(deployment=D.SUSPENDED),
        {"deployment": D.SUSPENDED},
        [],
        spec=replace(SPEC, suspend=True),
        cluster=GONE,
    ),
    "Suspended->New: resumed": row(
        Status(deployment=D.SUSPENDED), {"deployment": D.NEW}, [normal("Resumed"), REQ], cluster=GONE
    ),
    # ---- ValidationFailed
    "New->ValidationFailed: invalid spec": row(
        Status(),
        {"deployment": D.VALIDATION_FAILED, "reason": R.VALIDATION_FAILED, "message": "bad"},
        [warn("InvalidRayJobSpec")],
        validation_error="bad",
    ),
    "ValidationFailed: same error -> no second event": row(
        Status(deployment=D.VALIDATION_FAILED, reason=R.VALIDATION_FAILED, message="bad"),
        {"deployment": D.VALIDATION_FAILED},
        [],
        validation_error="bad",
    ),
    "ValidationFailed: new error -> new event": row(
        Status(deployment=D.VALIDATION_FAILED, reason=R.VALIDATION_FAILED, message="bad"),
        {"message": "worse"},
        [warn("InvalidRayJobSpec")],
        validation_error="worse",
    ),
    "ValidationFailed->New: spec fixed": row(
        Status(deployment=D.VALIDATION_FAILED, reason=R.VALIDATION_FAILED, message="bad"),
        {"deployment": D.NEW, "reason": R.NONE, "message": ""},
        [normal("ValidationPassed"), REQ],
    ),
    "Suspended->ValidationFailed: invalid spec": row(
        Status(deployment=D.SUSPENDED),
        {"deployment": D.VALIDATION_FAILED},
        [warn("InvalidRayJobSpec")],
        validation_error="bad",
    ),
    "Running: invalid edit reported once per generation, attempt continues": row(
        st(D.RUNNING, observed_generation=1),
        {"deployment": D.RUNNING, "observed_generation": 2},
        [warn("InvalidRayJobSpec"), EnsureHeadService(ID), REQ],
        validation_error="bad",
        generation=2,
        dashboard=info(J.RUNNING),
        submitter=SUB_ACTIVE,
    ),
    "Running: invalid spec already reported for this generation": row(
        st(D.RUNNING, observed_generation=2),
        {"deployment": D.RUNNING},
        [EnsureHeadService(ID), REQ],
        validation_error="bad",
        generation=2,
        dashboard=info(J.RUNNING),
        submitter=SUB_ACTIVE,
    ),
    # ---- Complete / Failed
    "Complete: shutdownAfterJobFinishes TTL due -> delete cluster": row(
        st(D.COMPLETE, job_status=J.SUCCEEDED, end_time=NOW - timedelta(seconds=10)),
        {"deployment": D.COMPLETE},
        [CleanupBatchScheduling(), DeleteCluster(ID)],
        spec=SHUTDOWN_10,
    ),
    "Complete: TTL pending -> requeue for the rest": row(
        st(D.COMPLETE, job_status=J.SUCCEEDED, end_time=NOW - timedelta(seconds=4)),
        {},
        [CleanupBatchScheduling(), RequeueAfter(6.0)],
        spec=SHUTDOWN_10,
    ),
    "Complete: cluster already gone -> nothing": row(
        st(D.COMPLETE, job_status=J.SUCCEEDED, end_time=NOW - timedelta(seconds=40)),
        {},
        [CleanupBatchScheduling()],
        spec=SHUTDOWN_10,
        cluster=GONE,
    ),
    "Failed: deletion rule DeleteSelf": row(
        st(D.FAILED, job_status=J.FAILED, end_time=NOW),
        {},
        [CleanupBatchScheduling(), DeleteSelf()],
        spec=replace(SPEC, deletion=DeletionSpec(rules=(Rule(Policy.DELETE_SELF, job_status="FAILED"),))),
    ),
    "Failed: no policy -> keep everything, no requeue": row(
        st(D.FAILED, job_status=J.FAILED, end_time=NOW),
        {"deployment": D.FAILED},
        [CleanupBatchScheduling()],
    ),
    "Failed: missing endTime stamped now": row(
        st(D.FAILED, job_status=J.FAILED),
        {"end_time": NOW},
        [CleanupBatchScheduling()],
    ),
    "Failed: invalid spec ignored once terminal": row(
        st(D.FAILED, job_status=J.FAILED, end_time=NOW),
        {"deployment": D.FAILED},
        [CleanupBatchScheduling()],
        validation_error="bad",
    ),
}


def _norm(action: Action) -> Any:
    return ("event", action.type, action.reason) if isinstance(action, RecordEvent) else action


@pytest.mark.parametrize("case", ROWS.values(), ids=ROWS.keys())
def test_transition(case: Row) -> None:
    decision = next_state(case.observed)
    got = {key: getattr(decision.status, key) for key in case.expect}
    assert got == case.expect
    assert [_norm(a) for a in decision.actions] == case.actions


@pytest.mark.parametrize("case", ROWS.values(), ids=ROWS.keys())
def test_status_fields_never_contradict(case: Row) -> None:
    status = next_state(case.observed).status
    if status.deployment in (D.COMPLETE, D.FAILED):
        assert not status.job_status.live
        assert status.end_time is not None
    if status.deployment is D.COMPLETE:
        assert status.job_status in (J.SUCCEEDED, J.STOPPED)
    if status.deployment in (D.FAILED, D.RETRYING):
        assert status.job_status is not J.SUCCEEDED


def test_retry_walks_back_to_a_fresh_cluster_and_id() -> None:
    """Running (FAILED) -> Retrying -> New -> Initializing: new names, deadlines restart, counter kept."""
    spec = replace(SPEC, backoff_limit=1)
    first = next_state(Observed(spec, st(D.RUNNING), NOW, READY, SUB_OK, info(J.FAILED, 1)))
    assert first.status.deployment is D.RETRYING
    cleaned = next_state(Observed(spec, first.status, NOW, GONE))
    later = NOW + timedelta(seconds=30)
    fresh = next_state(Observed(spec, cleaned.status, later, GONE, suffix="q2w4r"))
    assert (fresh.status.deployment, fresh.status.job_id, fresh.status.cluster_name) == (
        D.INITIALIZING,
        "job-q2w4r",
        "job-q2w4r",
    )
    assert fresh.status.start_time == later
    assert fresh.status.failed == 1


def test_messages_name_the_deadline_and_head_problem() -> None:
    decision = next_state(
        Observed(
            deadline(60, kind="pre_running"), st(D.INITIALIZING), NOW, replace(PROVISIONING, head=CRASHING)
        )
    )
    assert "PreRunningDeadlineSeconds: 60" in decision.status.message
    assert "CrashLoopBackOff: back-off 5m0s" in decision.status.message


def test_wants_dashboard_only_when_running_with_an_id() -> None:
    assert wants_dashboard(st(D.RUNNING))
    assert not wants_dashboard(st(D.RUNNING, job_id=""))
    assert not wants_dashboard(st(D.INITIALIZING))


def test_spec_and_status_from_typed_rayjob() -> None:
    job = RayJob.model_validate(
        {
            "metadata": {"name": "job", "namespace": "ns"},
            "spec": {
                "submissionMode": "HTTPMode",
                "clusterSelector": {"ray.io/cluster": "shared"},
                "activeDeadlineSeconds": 30,
                "backoffLimit": 0,
            },
            "status": {
                "jobDeploymentStatus": "Running",
                "jobStatus": "RUNNING",
                "reason": "SomethingFromAnotherVersion",
                "startTime": "2026-01-01T11:58:20Z",
                "rayJobInfo": {"endTime": "2026-01-01T11:59:00Z"},
                "failed": 1,
            },
        }
    )
    spec = Spec.from_rayjob(job)
    assert (spec.mode, spec.selected_cluster, spec.active_deadline_seconds) == (M.HTTP, "shared", 30)
    status = Status.from_model(job.status)
    assert (status.deployment, status.job_status, status.reason, status.failed) == (
        D.RUNNING,
        J.RUNNING,
        R.NONE,
        1,
    )
    assert status.start_time == START
    assert status.ray_end_time == NOW - timedelta(seconds=60)
    assert Status.from_model(None) == Status()


def test_requeue_after_and_operator_timeouts() -> None:
    timeouts = Timeouts(requeue=5.0, status_check=60.0)
    status = st(D.RUNNING, check_failure_since=NOW - timedelta(seconds=60))
    decision = next_state(
        Observed(SPEC, status, NOW, READY, SUB_ACTIVE, DashboardUnreachable("refused"), timeouts=timeouts)
    )
    assert decision.status.reason is R.STATUS_CHECK_TIMEOUT_EXCEEDED
    assert decision.requeue_after == 5.0
    suspended = Observed(replace(SPEC, suspend=True), Status(deployment=D.SUSPENDED), NOW, GONE)
    assert next_state(suspended).requeue_after is None
