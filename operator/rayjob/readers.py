"""Pure readers turning raw objects into the views `next_state` decides on (data in, data out).

`cluster_view` reads the RayCluster and its head Pod (phase, why the head is not running, worker-group
suspension); `submitter_view` reads the K8sJobMode batch Job, `sidecar_view` the SidecarMode container of
the head Pod; `ray_job_info` reads a dashboard `GET /api/jobs/<id>` answer. The reconciler fetches the
objects and passes them here; nothing in this module does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ray_operator import constants as c
from ray_operator.rayjob.observed import (
    ClusterPhase,
    ClusterView,
    HeadProblem,
    JobStatus,
    RayJobInfo,
    SubmitterPhase,
    SubmitterView,
)
from rayside.objects import JSON, is_deleting

WAITING_PROBLEMS = frozenset(
    {
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RunContainerError",
    }
)
"""Container waiting reasons that mean the head is stuck rather than starting."""
FATAL_WAITING = frozenset({"InvalidImageName", "ErrImageNeverPull"})
"""Waiting reasons no retry can heal without a spec change."""


def _time(text: object) -> datetime | None:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None


def _statuses(pod: Mapping[str, Any]) -> list[JSON]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def head_problem(pod: Mapping[str, Any] | None, *, restart_disabled: bool = False) -> HeadProblem | None:
    """Why the head Pod is not running, or None. `restart_disabled`: a failed head is not replaced."""
    if pod is None:
        return None
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        return HeadProblem(
            status.get("reason") or "PodFailed", status.get("message") or "", fatal=restart_disabled
        )
    for container in _statuses(pod):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason") or ""
        if reason in WAITING_PROBLEMS:
            message = f"container {container.get('name')}: {waiting.get('message') or reason}"
            return HeadProblem(reason, message, fatal=reason in FATAL_WAITING)
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return HeadProblem(condition.get("reason") or "Unschedulable", condition.get("message") or "")
    return None


def cluster_view(
    cluster: Mapping[str, Any] | None,
    *,
    head_pod: Mapping[str, Any] | None = None,
    dashboard_url: str = "",
    restart_disabled: bool = False,
) -> ClusterView:
    """The RayCluster as `next_state` sees it (None: absent)."""
    if cluster is None:
        return ClusterView(ClusterPhase.ABSENT)
    if is_deleting(cluster):
        return ClusterView(ClusterPhase.TERMINATING)
    ready = (cluster.get("status") or {}).get("state") == "ready"
    groups = (cluster.get("spec") or {}).get("workerGroupSpecs") or []
    return ClusterView(
        ClusterPhase.READY if ready else ClusterPhase.PROVISIONING,
        dashboard_url=dashboard_url if ready else "",
        head=head_problem(head_pod, restart_disabled=restart_disabled),
        head_pod_missing=head_pod is None,
        workers_suspended=all(bool(group.get("suspend")) for group in groups),
    )


def _env_value(container: Mapping[str, Any], name: str) -> str:
    for item in container.get("env") or []:
        if item.get("name") == name:
            return str(item.get("value") or "")
    return ""


def submitter_view(job: Mapping[str, Any] | None) -> SubmitterView:
    """The K8sJobMode submitter batch Job (None: absent): Complete/Failed conditions and its submission id."""
    if job is None:
        return SubmitterView()
    containers = ((job.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}]
    submission_id = _env_value(containers[0], "RAY_JOB_SUBMISSION_ID")
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True" or condition.get("type") not in ("Complete", "Failed"):
            continue
        failed = condition["type"] == "Failed"
        return SubmitterView(
            SubmitterPhase.FAILED if failed else SubmitterPhase.SUCCEEDED,
            submission_id=submission_id,
            finished_at=_time(condition.get("lastTransitionTime")),
            reason=str(condition.get("reason") or "") if failed else "",
            message=str(condition.get("message") or "") if failed else "",
        )
    return SubmitterView(SubmitterPhase.ACTIVE, submission_id=submission_id)


def sidecar_view(head_pod: Mapping[str, Any] | None) -> SubmitterView:
    """The SidecarMode `ray-job-submitter` container of the head Pod (None or no such container: absent)."""
    if head_pod is None:
        return SubmitterView()
    specs = (head_pod.get("spec") or {}).get("containers") or []
    spec = next((item for item in specs if item.get("name") == c.SUBMITTER_CONTAINER), None)
    if spec is None:
        return SubmitterView()
    submission_id = _env_value(spec, "RAY_JOB_SUBMISSION_ID")
    status = next((s for s in _statuses(head_pod) if s.get("name") == c.SUBMITTER_CONTAINER), {})
    terminated = (status.get("state") or {}).get("terminated")
    if not terminated:
        return SubmitterView(SubmitterPhase.ACTIVE, submission_id=submission_id)
    code = int(terminated.get("exitCode") or 0)
    finished = _time(terminated.get("finishedAt"))
    if code == 0:
        return SubmitterView(SubmitterPhase.SUCCEEDED, submission_id=submission_id, finished_at=finished)
    reason = str(terminated.get("reason") or "Error")
    return SubmitterView(
        SubmitterPhase.FAILED,
        submission_id=submission_id,
        finished_at=finished,
        reason=reason,
        message=f"Ray head pod container {c.SUBMITTER_CONTAINER} terminated with exit code {code}: {reason}",
    )


def _ms(value: object) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(int(str(value)) / 1000, tz=UTC)


def ray_job_info(body: Mapping[str, Any]) -> RayJobInfo:
    """A dashboard `GET /api/jobs/<id>` answer (status, message, start/end time in ms since the epoch)."""
    return RayJobInfo(
        JobStatus(str(body.get("status") or "")),
        message=str(body.get("message") or ""),
        start_time=_ms(body.get("start_time")),
        end_time=_ms(body.get("end_time")),
    )
