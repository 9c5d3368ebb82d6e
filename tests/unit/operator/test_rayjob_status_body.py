"""Pure pieces of the RayJob controller: the status body, its round trip, dashboard addresses, predicates."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from ray_operator.rayjob.assembly import rayjob_changed, rayjob_owner
from ray_operator.rayjob.dashboard import http_base
from ray_operator.rayjob.observed import DeploymentStatus, JobStatus, Reason, Status
from ray_operator.rayjob.statusbody import read_status, status_body

T0 = datetime(2026, 12, 4, 15, 0, 0, 123456, tzinfo=UTC)


def test_new_status_body_has_only_the_counters() -> None:
    assert status_body(Status()) == {"succeeded": 0, "failed": 0}


def test_status_body_round_trips_and_omits_empty_fields() -> None:
    status = Status(
        deployment=DeploymentStatus.FAILED,
        job_status=JobStatus.FAILED,
        reason=Reason.APP_FAILED,
        message="exit code 3",
        job_id="job-abcde",
        cluster_name="job-abcde",
        dashboard_url="job-abcde-head-svc.default.svc.cluster.local:8265",
        start_time=T0,
        end_time=T0,
        failed=1,
        ray_start_time=T0,
        observed_generation=2,
    )
    body = status_body(status, {"state": "ready"})
    assert body["startTime"] == "2026-12-04T15:00:00Z"  # seconds, as metav1.Time
    assert body["rayJobInfo"] == {"startTime": "2026-12-04T15:00:00Z"}
    assert body["rayClusterStatus"] == {"state": "ready"}
    assert "jobStatusCheckFailureStartTime" not in body
    again = read_status(body)
    whole = T0.replace(microsecond=0)
    assert again == replace(status, start_time=whole, end_time=whole, ray_start_time=whole)
    assert status_body(again, {"state": "ready"}) == body  # written once: the next pass sees no change


def test_unreadable_status_reads_as_new() -> None:
    assert read_status({"jobDeploymentStatus": "Bogus"}) == Status()


def test_dashboard_address_forms() -> None:
    assert http_base("svc.ns.svc.cluster.local:8265") == "http://svc.ns.svc.cluster.local:8265"
    assert http_base("https://dash.example/") == "https://dash.example"


def test_rayjob_predicate_ignores_status_only_changes() -> None:
    old = {"metadata": {"name": "j", "generation": 1}, "status": {}}
    assert not rayjob_changed(old, {**old, "status": {"jobStatus": "RUNNING"}})
    assert rayjob_changed(old, {"metadata": {"name": "j", "generation": 1, "finalizers": ["x"]}})
    assert rayjob_changed(None, old)


def test_rayjob_owner_of_children() -> None:
    ref = {"kind": "RayJob", "name": "j", "uid": "u", "controller": True, "apiVersion": "ray.io/v1"}
    job = {"metadata": {"name": "j", "namespace": "ns", "ownerReferences": [ref]}}
    assert rayjob_owner(job) == "ns/j"
    assert rayjob_owner({"metadata": {"name": "x", "namespace": "ns"}}) is None
