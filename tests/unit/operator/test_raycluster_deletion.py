"""`raycluster.deletion`: the GCS-FT Redis cleanup finalizer decided as pure functions (injected clock)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ray_operator.raycluster.applier import Applied, PatchCluster, RecordEvent
from ray_operator.raycluster.deletion import (
    REDIS_CLEANUP_FINALIZER,
    CreateCleanupJob,
    DeletePods,
    RemoveFinalizer,
    deletion_timeout,
    job_finished,
    needs_finalizer,
    uses_redis_ft,
)
from ray_operator.raycluster.deletion import plan_deletion as plan_with_requeue
from ray_operator.raycluster.plan import Create, Delete
from ray_operator.raycluster.reconciler_deletion import (
    JOB_MARKER,
    deletion_actions,
    finalizer_patch,
    job_events,
)
from ray_operator.raycluster.status import Outcome
from ray_operator.settings import load_settings
from rayside.objects import JSON

# the operator's default short requeue (OperatorSettings.short_requeue_seconds)
plan_deletion = functools.partial(plan_with_requeue, short_requeue=2.0)
DELETED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def rc(
    *,
    ft: JSON | None = None,
    annotations: dict[str, str] | None = None,
    finalizers: list[str] | None = None,
    deleting: bool = False,
) -> JSON:
    meta: JSON = {"name": "rc", "namespace": "ns", "annotations": annotations or {}}
    if finalizers is not None:
        meta["finalizers"] = finalizers
    if deleting:
        meta["deletionTimestamp"] = DELETED_AT.strftime("%Y-%m-%dT%H:%M:%SZ")
    spec: JSON = {"headGroupSpec": {}}
    if ft is not None:
        spec["gcsFaultToleranceOptions"] = ft
    return {"metadata": meta, "spec": spec}


REDIS = {"redisAddress": "redis:6379"}


def deleting(**kw: Any) -> JSON:
    return rc(ft=kw.pop("ft", REDIS), finalizers=[REDIS_CLEANUP_FINALIZER], deleting=True, **kw)


def pod(name: str, node_type: str, terminating: bool = False) -> JSON:
    meta: JSON = {"name": name, "labels": {"ray.io/node-type": node_type}}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-02T03:04:06Z"
    return {"metadata": meta}


def job(*conditions: tuple[str, str]) -> JSON:
    return {"status": {"conditions": [{"type": t, "status": s} for t, s in conditions]}}


def at(seconds: float) -> datetime:
    return DELETED_AT + timedelta(seconds=seconds)


# -- when the finalizer is wanted ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        (rc(ft=REDIS), True),
        (rc(ft={**REDIS, "backend": "redis"}), True),
        (rc(annotations={"ray.io/ft-enabled": "True"}), True),
        (rc(ft={"backend": "rocksdb"}), False),
        (rc(), False),
        (rc(annotations={"ray.io/ft-enabled": "false"}), False),
    ],
)
def test_uses_redis_ft(cluster: JSON, expected: bool) -> None:
    assert uses_redis_ft(cluster) is expected


def test_needs_finalizer() -> None:
    assert needs_finalizer(rc(ft=REDIS), cleanup_enabled=True)
    assert needs_finalizer(rc(ft=REDIS, finalizers=["other"]), cleanup_enabled=True)
    assert not needs_finalizer(rc(ft=REDIS), cleanup_enabled=False)
    assert not needs_finalizer(rc(ft=REDIS, finalizers=[REDIS_CLEANUP_FINALIZER]), cleanup_enabled=True)
    assert not needs_finalizer(rc(ft=REDIS, deleting=True), cleanup_enabled=True)
    assert not needs_finalizer(rc(), cleanup_enabled=True)


# -- the deletion pass --------------------------------------------------------------------------------
def test_without_the_finalizer_nothing_happens() -> None:
    plan = plan_deletion(rc(ft=REDIS, deleting=True), [pod("h", "head")], None, at(1))
    assert plan.actions == [] and plan.requeue is None


def test_embedded_backend_drops_a_stale_finalizer() -> None:
    plan = plan_deletion(deleting(ft={"backend": "rocksdb"}), [pod("h", "head")], None, at(1))
    assert plan.actions == [RemoveFinalizer()]


def test_cleanup_disabled_leaves_the_finalizer_to_the_user() -> None:
    plan = plan_deletion(deleting(), [pod("h", "head")], None, at(1), cleanup_enabled=False)
    assert plan.actions == [] and plan.requeue is None


def test_pods_are_deleted_and_the_head_awaited() -> None:
    pods = [pod("h", "head"), pod("w1", "worker"), pod("w2", "worker", terminating=True)]
    plan = plan_deletion(deleting(), pods, None, at(1))
    assert plan.actions == [DeletePods(("h", "w1"))]
    assert plan.requeue == 10.0


def test_terminating_head_is_awaited_even_past_the_timeout() -> None:
    plan = plan_deletion(deleting(), [pod("h", "head", terminating=True)], None, at(1000))
    assert plan.actions == [] and plan.requeue == 10.0


def test_job_created_once_the_head_is_gone() -> None:
    plan = plan_deletion(deleting(), [pod("w1", "worker")], None, at(5))
    assert plan.actions == [DeletePods(("w1",)), CreateCleanupJob()]
    assert plan.requeue == 2.0


def test_running_job_is_polled_and_the_timeout_bounds_the_requeue() -> None:
    running = job(("Complete", "False"))
    plan = plan_deletion(deleting(), [], running, at(10))
    assert plan.actions == [] and plan.requeue == 2.0
    assert plan_deletion(deleting(), [], running, at(299.5)).requeue == pytest.approx(0.5)


@pytest.mark.parametrize("condition", ["Complete", "Failed", "FailureTarget"])
def test_finished_job_removes_the_finalizer(condition: str) -> None:
    plan = plan_deletion(deleting(), [], job((condition, "True")), at(10))
    assert plan.actions == [RemoveFinalizer()] and plan.requeue is None


def test_timeout_force_removes_with_an_event() -> None:
    annotations = {"ray.io/external-storage-namespace": "store-1"}
    plan = plan_deletion(deleting(annotations=annotations), [], job(), at(300))
    (action,) = plan.actions
    assert isinstance(action, RemoveFinalizer) and action.event is not None
    type_, reason, message = action.event
    assert (type_, reason) == ("Warning", "ForceDeletedStuckCluster")
    assert "300s" in message and "'store-1'" in message and REDIS_CLEANUP_FINALIZER in message
    assert plan_deletion(deleting(), [], job(), at(299)).actions == []


def test_timeout_annotation_overrides_and_bad_values_fall_back() -> None:
    short = deleting(annotations={"ray.io/gcs-ft-deletion-timeout": "5"})
    assert deletion_timeout(short) == 5.0
    assert plan_deletion(short, [], None, at(4)).actions == [CreateCleanupJob()]
    (action,) = plan_deletion(short, [], None, at(5)).actions
    assert isinstance(action, RemoveFinalizer) and action.event is not None
    for bad in ("0", "-3", "soon", "1.5"):
        assert deletion_timeout(deleting(annotations={"ray.io/gcs-ft-deletion-timeout": bad})) == 300.0


def test_job_finished() -> None:
    assert job_finished(job(("Complete", "True"))) == "Complete"
    assert job_finished(job(("FailureTarget", "True"))) == "Failed"
    assert job_finished(job(("Failed", "False"), ("Suspended", "True"))) is None
    assert job_finished({}) is None


# -- the finalizer patch and the env knob -------------------------------------------------------------
def test_finalizer_patch() -> None:
    assert finalizer_patch({}, add=True) == [
        {"op": "add", "path": "/metadata/finalizers", "value": [REDIS_CLEANUP_FINALIZER]}
    ]
    assert finalizer_patch({"finalizers": ["a", REDIS_CLEANUP_FINALIZER]}, add=False) == [
        {"op": "test", "path": "/metadata/finalizers", "value": ["a", REDIS_CLEANUP_FINALIZER]},
        {"op": "replace", "path": "/metadata/finalizers", "value": ["a"]},
    ]


@pytest.mark.parametrize(
    ("value", "enabled"), [(None, True), ("", True), ("true", True), ("FALSE", False), ("false", False)]
)
def test_enable_gcs_ft_redis_cleanup_env(value: str | None, enabled: bool) -> None:
    environ = {} if value is None else {"ENABLE_GCS_FT_REDIS_CLEANUP": value}
    assert load_settings([], environ=environ).enable_gcs_ft_redis_cleanup is enabled


def test_the_wait_for_the_cleanup_job_uses_the_short_requeue_setting() -> None:
    running = job()
    assert plan_with_requeue(deleting(), [], running, at(10), short_requeue=0.5).requeue == 0.5


def test_deletion_plans_become_applier_actions() -> None:
    plan = plan_deletion(deleting(), [pod("w1", "worker")], None, at(5))
    cleanup = {"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": "rc-redis-cleanup"}}
    actions = deletion_actions(deleting(), plan, cleanup)
    assert actions == [Delete("Pod", "w1", expect=False), Create(cleanup, marker=JOB_MARKER)]
    assert deletion_actions(deleting(), plan, None) == [Delete("Pod", "w1", expect=False)]
    forced = plan_deletion(deleting(), [], job(), at(300))
    patch, event = deletion_actions(deleting(), forced, None)
    assert isinstance(patch, PatchCluster) and patch.ops[-1]["value"] == []
    assert isinstance(event, RecordEvent) and event.reason == "ForceDeletedStuckCluster"


def test_job_events_follow_what_the_applier_did() -> None:
    cleanup = {"kind": "Job", "metadata": {"name": "rc-redis-cleanup"}}
    created = Applied(created_children=[("Job", "rc-redis-cleanup")])
    assert [e.reason for e in job_events("ns", cleanup, created)] == ["CreatedRedisCleanupJob"]
    assert job_events("ns", cleanup, Applied()) == []  # it already existed
    failed = Applied(failure=Outcome("InternalError (500): boom", JOB_MARKER))
    (warning,) = job_events("ns", cleanup, failed)
    assert warning.reason == "FailedToCreateRedisCleanupJob" and "ns/rc-redis-cleanup" in warning.message
