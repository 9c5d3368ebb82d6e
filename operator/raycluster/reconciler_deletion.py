"""Applies the GCS-FT Redis cleanup plan (`raycluster.deletion`) for the RayCluster reconciler.

`ensure_finalizer` adds `ray.io/gcs-ft-redis-cleanup-finalizer` to a live Redis-FT cluster; `on_deletion`
runs one pass for a cluster with a deletionTimestamp: it reads the cleanup Job with one GET (only once no
head Pod is left), asks `plan_deletion`, translates its plan into the `Applier`'s actions (`deletion_actions`:
delete Pods, create the Job, JSON-patch the finalizer away, record events) and hands them to the one
applier. Only clusters that carry the finalizer ever reach this code, so other clusters cost no extra
request. Nothing here logs or records Pod/Job bodies (they reference the Ray token).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ray_operator.builders import names
from ray_operator.builders.redis_cleanup import redis_cleanup_job
from ray_operator.constants import LABEL_NODE_TYPE, NODE_TYPE_HEAD
from ray_operator.models import RayCluster
from ray_operator.raycluster.applier import Action, Applied, Applier, Pass, PatchCluster, RecordEvent
from ray_operator.raycluster.deletion import (
    REDIS_CLEANUP_FINALIZER,
    CreateCleanupJob,
    DeletePods,
    DeletionPlan,
    plan_deletion,
)
from ray_operator.raycluster.plan import Create, Delete
from ray_operator.settings import OperatorSettings
from rayside.kubeclient import KubeClient, KubeError, NotFound
from rayside.objects import JOBS, JSON, labels_of, meta_of, name_of

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


JOB_MARKER = "FailedCreateRedisCleanupJob"


def finalizer_patch(meta: Mapping[str, Any], *, add: bool) -> list[JSON]:
    """JSON patch adding/removing the Redis cleanup finalizer; fails (test op) if the list changed."""
    old = list(meta.get("finalizers") or [])
    new = [*old, REDIS_CLEANUP_FINALIZER] if add else [f for f in old if f != REDIS_CLEANUP_FINALIZER]
    if not old:
        return [{"op": "add", "path": "/metadata/finalizers", "value": new}]
    return [
        {"op": "test", "path": "/metadata/finalizers", "value": old},
        {"op": "replace", "path": "/metadata/finalizers", "value": new},
    ]


def finalizer_action(obj: JSON, *, add: bool) -> PatchCluster:
    verb = "add" if add else "remove"
    ops = tuple(finalizer_patch(meta_of(obj), add=add))
    return PatchCluster(ops, f"{verb} finalizer {REDIS_CLEANUP_FINALIZER}")


def deletion_actions(obj: JSON, plan: DeletionPlan, job: JSON | None) -> list[Action]:
    """The applier's actions for a deletion plan (pure). `job` is the built cleanup Job (None when it could
    not be built: the Warning is recorded by the caller and the Job is skipped)."""
    actions: list[Action] = []
    for action in plan.actions:
        if isinstance(action, DeletePods):
            actions += [Delete("Pod", pod, expect=False) for pod in action.names]
        elif isinstance(action, CreateCleanupJob):
            if job is not None:
                actions.append(Create(job, marker=JOB_MARKER))
        else:  # RemoveFinalizer: its event only once the patch went through
            actions.append(finalizer_action(obj, add=False))
            if action.event is not None:
                actions.append(RecordEvent(*action.event))
    return actions


def job_events(namespace: str, job: JSON | None, applied: Applied) -> list[RecordEvent]:
    """The cleanup Job's Normal/Warning event from what applying did (pure)."""
    if job is None:
        return []
    where = f"{namespace}/{name_of(job)}"
    if ("Job", name_of(job)) in applied.created_children:
        return [RecordEvent("Normal", "CreatedRedisCleanupJob", f"Created Redis cleanup Job {where}")]
    if applied.failure is not None and applied.failure.marker == JOB_MARKER:
        message = f"Failed to create Redis cleanup Job {where}: {applied.failure.error}"
        return [RecordEvent("Warning", "FailedToCreateRedisCleanupJob", message)]
    return []


class RedisCleanup:
    """The deletion path of the RayCluster reconciler; decisions are `raycluster.deletion`'s, writes the
    `Applier`'s."""

    def __init__(
        self,
        client: KubeClient,
        *,
        settings: OperatorSettings,
        applier: Applier,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._settings = settings
        self._applier = applier
        self._now = now

    def ensure_finalizer(self, ctx: Pass) -> float:
        """Add the finalizer; the cluster is reconciled from the next pass on (as KubeRay)."""
        self._applier.apply(ctx, [finalizer_action(ctx.obj, add=True)])
        return self._settings.short_requeue_seconds

    def _get_job(self, ns: str, cluster_name: str) -> JSON | None:
        try:
            return self._client.get(JOBS.path(ns, names.redis_cleanup_job_name(cluster_name)))
        except NotFound:
            return None

    def _build_job(self, ctx: Pass) -> tuple[JSON | None, list[RecordEvent]]:
        try:
            return redis_cleanup_job(RayCluster.model_validate(ctx.obj), settings=self._settings.build), []
        except (ValidationError, ValueError) as exc:
            message = f"Cannot build the Redis cleanup Job for {ctx.key}: {str(exc).splitlines()[0]}"
            return None, [RecordEvent("Warning", "FailedToCreateRedisCleanupJob", message)]

    def on_deletion(self, ctx: Pass) -> float | None:
        """One deletion pass; returns the requeue delay (None = wait for the next watch event)."""
        short = self._settings.short_requeue_seconds
        pods = ctx.pods()
        heads = [p for p in pods if labels_of(p).get(LABEL_NODE_TYPE) == NODE_TYPE_HEAD]
        try:
            job = None if heads else self._get_job(ctx.namespace, ctx.name)
        except KubeError as exc:
            log.debug(
                "raycluster %s: reading the Redis cleanup Job failed: %s (%s)",
                ctx.key,
                exc.message,
                exc.status,
            )
            return short
        enabled = self._settings.enable_gcs_ft_redis_cleanup
        plan = plan_deletion(ctx.obj, pods, job, self._now(), short_requeue=short, cleanup_enabled=enabled)
        built: JSON | None = None
        events: list[RecordEvent] = []
        if any(isinstance(a, CreateCleanupJob) for a in plan.actions):
            built, events = self._build_job(ctx)
        applied = self._applier.apply(ctx, [*events, *deletion_actions(ctx.obj, plan, built)])
        self._applier.apply(ctx, job_events(ctx.namespace, built, applied))
        if applied.failure is not None:
            log.debug("raycluster %s: Redis cleanup pass stopped: %s", ctx.key, applied.failure.error)
            return short  # failed, or changed meanwhile: retry soon
        return plan.requeue
