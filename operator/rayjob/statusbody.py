"""The lifecycle `Status` as the RayJob's `.status` JSON, and back (pure).

`status_body(status, cluster_status)` is what the reconciler writes through the status subresource:
KubeRay's field names, RFC 3339 times to the second, empty values left out (as Go's `omitempty`), and
the RayCluster's own status copied into `rayClusterStatus`. The reconciler compares it with the object's
current status and writes only when they differ.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from ray_operator.models.rayjob import RayJobStatus
from ray_operator.rayjob.observed import Status
from rayside.objects import JSON


def rfc3339(moment: datetime | None) -> str:
    """`2026-12-04T15:19:53Z` (seconds, UTC), or "" for None."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def status_body(status: Status, cluster_status: JSON | None = None) -> JSON:
    """The `.status` of a RayJob in lifecycle state `status` (its cluster's status copied when known)."""
    body: JSON = {
        "jobId": status.job_id,
        "rayClusterName": status.cluster_name,
        "dashboardURL": status.dashboard_url,
        "jobStatus": status.job_status.value,
        "jobDeploymentStatus": status.deployment.value,
        "reason": status.reason.value,
        "message": status.message,
        "startTime": rfc3339(status.start_time),
        "endTime": rfc3339(status.end_time),
        "jobStatusCheckFailureStartTime": rfc3339(status.check_failure_since),
    }
    body = {key: value for key, value in body.items() if value}
    body["succeeded"] = status.succeeded
    body["failed"] = status.failed
    info = {
        key: value
        for key, value in (
            ("startTime", rfc3339(status.ray_start_time)),
            ("endTime", rfc3339(status.ray_end_time)),
        )
        if value
    }
    if info:
        body["rayJobInfo"] = info
    if cluster_status:
        body["rayClusterStatus"] = dict(cluster_status)
    if status.observed_generation:
        body["observedGeneration"] = status.observed_generation
    return body


def read_status(raw: JSON | None) -> Status:
    """The lifecycle Status of a raw `.status` (an unreadable one reads as a new RayJob)."""
    try:
        return Status.from_model(RayJobStatus.model_validate(raw) if raw else None)
    except (ValidationError, ValueError):
        return Status()
