"""Readers: RayCluster + head Pod, submitter Job, SidecarMode container and dashboard answers -> views."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ray_operator.rayjob.readers import cluster_view, head_problem, ray_job_info, sidecar_view, submitter_view
from ray_operator.rayjob.state import ClusterPhase, HeadProblem, JobStatus, SubmitterPhase, SubmitterView

T = "2026-01-01T12:00:00Z"
AT = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def pod(*statuses: dict[str, Any], phase: str = "Pending", **status: Any) -> dict[str, Any]:
    return {"status": {"phase": phase, "containerStatuses": list(statuses), **status}}


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"name": "ray-head", "state": {"waiting": {"reason": reason, "message": message}}}


HEAD_CASES = {
    "no pod": (None, False, None),
    "running": (pod({"name": "ray-head", "state": {"running": {}}}, phase="Running"), False, None),
    "ContainerCreating is normal": (pod(waiting("ContainerCreating")), False, None),
    "CreateContainerConfigError": (
        pod(waiting("CreateContainerConfigError", 'secret "x" not found')),
        False,
        HeadProblem("CreateContainerConfigError", 'container ray-head: secret "x" not found'),
    ),
    "CrashLoopBackOff": (
        pod(waiting("CrashLoopBackOff", "back-off")),
        False,
        HeadProblem("CrashLoopBackOff", "container ray-head: back-off"),
    ),
    "InvalidImageName is fatal": (
        pod(waiting("InvalidImageName", "bad")),
        False,
        HeadProblem("InvalidImageName", "container ray-head: bad", fatal=True),
    ),
    "init container stuck": (
        {"status": {"initContainerStatuses": [dict(waiting("ImagePullBackOff"), name="init")]}},
        False,
        HeadProblem("ImagePullBackOff", "container init: ImagePullBackOff"),
    ),
    "unschedulable": (
        pod(
            conditions=[
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3"}
            ]
        ),
        False,
        HeadProblem("Unschedulable", "0/3"),
    ),
    "failed pod, replaced by the cluster": (
        pod(phase="Failed", reason="Evicted", message="low memory"),
        False,
        HeadProblem("Evicted", "low memory"),
    ),
    "failed pod, restart disabled (SidecarMode) is fatal": (
        pod(phase="Failed"),
        True,
        HeadProblem("PodFailed", "", fatal=True),
    ),
}


@pytest.mark.parametrize(("obj", "restart_disabled", "expect"), HEAD_CASES.values(), ids=HEAD_CASES.keys())
def test_head_problem(obj: dict[str, Any] | None, restart_disabled: bool, expect: HeadProblem | None) -> None:
    assert head_problem(obj, restart_disabled=restart_disabled) == expect


def test_cluster_view() -> None:
    assert cluster_view(None).phase is ClusterPhase.ABSENT
    assert cluster_view({"metadata": {"deletionTimestamp": T}}).phase is ClusterPhase.TERMINATING
    provisioning = cluster_view({"status": {"state": ""}}, dashboard_url="x:8265")
    assert (provisioning.phase, provisioning.dashboard_url, provisioning.head_pod_missing) == (
        ClusterPhase.PROVISIONING,
        "",
        True,
    )
    spec = {"workerGroupSpecs": [{"suspend": True}, {"suspend": False}]}
    ready = cluster_view({"spec": spec, "status": {"state": "ready"}}, head_pod=pod(), dashboard_url="x:8265")
    assert (ready.phase, ready.dashboard_url, ready.head_pod_missing, ready.workers_suspended) == (
        ClusterPhase.READY,
        "x:8265",
        False,
        False,
    )
    spec["workerGroupSpecs"][1]["suspend"] = True
    assert cluster_view({"spec": spec, "status": {"state": "ready"}}).workers_suspended


def job(*conditions: dict[str, Any], submission_id: str = "job-abcde") -> dict[str, Any]:
    env = [
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "RAY_JOB_SUBMISSION_ID", "value": submission_id},
    ]
    return {
        "spec": {"template": {"spec": {"containers": [{"name": "ray-job-submitter", "env": env}]}}},
        "status": {"conditions": list(conditions)},
    }


SUBMITTER_CASES = {
    "absent": (None, SubmitterView()),
    "active": (job(), SubmitterView(SubmitterPhase.ACTIVE, "job-abcde")),
    "complete": (
        job({"type": "Complete", "status": "True", "lastTransitionTime": T}),
        SubmitterView(SubmitterPhase.SUCCEEDED, "job-abcde", finished_at=AT),
    ),
    "failed": (
        job(
            {
                "type": "Failed",
                "status": "True",
                "lastTransitionTime": T,
                "reason": "BackoffLimitExceeded",
                "message": "m",
            }
        ),
        SubmitterView(SubmitterPhase.FAILED, "job-abcde", AT, "BackoffLimitExceeded", "m"),
    ),
    "condition not true yet": (
        job({"type": "Failed", "status": "False"}, submission_id="job-old01"),
        SubmitterView(SubmitterPhase.ACTIVE, "job-old01"),
    ),
}


@pytest.mark.parametrize(("obj", "expect"), SUBMITTER_CASES.values(), ids=SUBMITTER_CASES.keys())
def test_submitter_view(obj: dict[str, Any] | None, expect: SubmitterView) -> None:
    assert submitter_view(obj) == expect


def head_with_sidecar(state: dict[str, Any] | None) -> dict[str, Any]:
    env = [{"name": "RAY_JOB_SUBMISSION_ID", "value": "job-abcde"}]
    statuses = [{"name": "ray-job-submitter", "state": state}] if state is not None else []
    return {
        "spec": {"containers": [{"name": "ray-head"}, {"name": "ray-job-submitter", "env": env}]},
        "status": {"containerStatuses": statuses},
    }


SIDECAR_CASES = {
    "no head pod": (None, SubmitterView()),
    "head without sidecar": ({"spec": {"containers": [{"name": "ray-head"}]}}, SubmitterView()),
    "not started": (head_with_sidecar(None), SubmitterView(SubmitterPhase.ACTIVE, "job-abcde")),
    "running": (head_with_sidecar({"running": {}}), SubmitterView(SubmitterPhase.ACTIVE, "job-abcde")),
    "exit 0": (
        head_with_sidecar({"terminated": {"exitCode": 0, "finishedAt": T}}),
        SubmitterView(SubmitterPhase.SUCCEEDED, "job-abcde", AT),
    ),
    "exit 1": (
        head_with_sidecar({"terminated": {"exitCode": 1, "finishedAt": T, "reason": "Error"}}),
        SubmitterView(
            SubmitterPhase.FAILED,
            "job-abcde",
            AT,
            "Error",
            "Ray head pod container ray-job-submitter terminated with exit code 1: Error",
        ),
    ),
}


@pytest.mark.parametrize(("obj", "expect"), SIDECAR_CASES.values(), ids=SIDECAR_CASES.keys())
def test_sidecar_view(obj: dict[str, Any] | None, expect: SubmitterView) -> None:
    assert sidecar_view(obj) == expect


def test_ray_job_info() -> None:
    answer = {
        "status": "SUCCEEDED",
        "message": "done",
        "start_time": 1767268800000,
        "end_time": "1767268860000",
    }
    got = ray_job_info(answer)
    assert (got.status, got.message, got.start_time) == (JobStatus.SUCCEEDED, "done", AT)
    assert got.end_time is not None and (got.end_time - AT).total_seconds() == 60
    assert ray_job_info({"status": "PENDING"}).end_time is None
