"""Applies the GCS-FT Redis cleanup plan (`raycluster.deletion`) for the RayCluster reconciler.

`ensure_finalizer` adds `ray.io/gcs-ft-redis-cleanup-finalizer` to a live Redis-FT cluster; `on_deletion`
runs one pass for a cluster with a deletionTimestamp: it reads the cleanup Job with one GET (only once no
head Pod is left), asks `plan_deletion`, and applies the actions (delete Pods, create the Job, JSON-patch the
finalizer away, record events). Only clusters that carry the finalizer ever reach this code, so other
clusters cost no extra request. Nothing here logs or records Pod/Job bodies (they reference the Ray token).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ray_operator.builders import names
from ray_operator.builders.redis_cleanup import redis_cleanup_job
from ray_operator.constants import LABEL_NODE_TYPE, NODE_TYPE_HEAD
from ray_operator.models import RayCluster
from ray_operator.raycluster.deletion import (
    REDIS_CLEANUP_FINALIZER,
    CreateCleanupJob,
    DeletePods,
    plan_deletion,
)
from ray_operator.runtime.events import EventRecorder
from ray_operator.runtime.informer import Cache
from ray_operator.settings import OperatorSettings
from rayside.kubeclient import (
    AlreadyExists,
    Conflict,
    Invalid,
    KubeClient,
    KubeError,
    NotFound,
)
from rayside.objects import JOBS, JSON, PODS, RAYCLUSTERS, key_of, labels_of, meta_of, name_of, namespace_of

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


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


class RedisCleanup:
    """The I/O half of the Redis cleanup finalizer; the decisions are `raycluster.deletion`'s."""

    def __init__(
        self,
        client: KubeClient,
        *,
        settings: OperatorSettings,
        clusters: Cache,
        recorder: EventRecorder,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._settings = settings
        self._clusters = clusters
        self._recorder = recorder
        self._now = now

    def _patch_finalizer(self, obj: JSON, *, add: bool) -> bool:
        verb = "added" if add else "removed"
        try:
            updated = self._client.patch(
                RAYCLUSTERS.path_of(obj), finalizer_patch(meta_of(obj), add=add), patch_type="json"
            )
        except (Conflict, Invalid, NotFound) as exc:  # changed or gone meanwhile: the next pass decides
            log.debug("raycluster %s: finalizer not %s: %s", key_of(obj), verb, exc)
            return False
        self._clusters.observe(updated)
        log.debug("raycluster %s: %s finalizer %s", key_of(obj), verb, REDIS_CLEANUP_FINALIZER)
        return True

    def ensure_finalizer(self, obj: JSON) -> float:
        """Add the finalizer; the cluster is reconciled from the next pass on (as KubeRay)."""
        self._patch_finalizer(obj, add=True)
        return self._settings.short_requeue_seconds

    def _get_job(self, ns: str, cluster_name: str) -> JSON | None:
        try:
            return self._client.get(JOBS.path(ns, names.redis_cleanup_job_name(cluster_name)))
        except NotFound:
            return None

    def on_deletion(self, obj: JSON, pods: list[JSON]) -> float | None:
        """One deletion pass; returns the requeue delay (None = wait for the next watch event)."""
        ns, name = namespace_of(obj), name_of(obj)
        short = self._settings.short_requeue_seconds
        heads = [p for p in pods if labels_of(p).get(LABEL_NODE_TYPE) == NODE_TYPE_HEAD]
        enabled = self._settings.enable_gcs_ft_redis_cleanup
        try:
            job = None if heads else self._get_job(ns, name)
            plan = plan_deletion(obj, pods, job, self._now(), short_requeue=short, cleanup_enabled=enabled)
            for action in plan.actions:
                if isinstance(action, DeletePods):
                    self._delete_pods(ns, action.names)
                elif isinstance(action, CreateCleanupJob):
                    self._create_job(obj)
                elif not self._patch_finalizer(obj, add=False):  # RemoveFinalizer
                    return short  # changed meanwhile: retry soon
                elif action.event is not None:
                    type_, reason, message = action.event
                    self._recorder.record(obj, type_=type_, reason=reason, message=message)
        except KubeError as exc:
            log.debug(
                "raycluster %s/%s: Redis cleanup pass failed: %s (%s)", ns, name, exc.message, exc.status
            )
            return short
        return plan.requeue

    def _delete_pods(self, ns: str, pod_names: tuple[str, ...]) -> None:
        for pod in pod_names:
            with contextlib.suppress(NotFound):
                self._client.delete(PODS.path(ns, pod))

    def _create_job(self, obj: JSON) -> None:
        ns, name = namespace_of(obj), name_of(obj)
        try:
            job = redis_cleanup_job(RayCluster.model_validate(obj), settings=self._settings.build)
        except (ValidationError, ValueError) as exc:
            message = f"Cannot build the Redis cleanup Job for {ns}/{name}: {str(exc).splitlines()[0]}"
            self._recorder.record(
                obj, type_="Warning", reason="FailedToCreateRedisCleanupJob", message=message
            )
            return
        try:
            self._client.create(JOBS.path(ns), job)
        except AlreadyExists:
            return
        except KubeError as exc:
            message = f"Failed to create Redis cleanup Job {ns}/{name_of(job)}: {exc.message}"
            self._recorder.record(
                obj, type_="Warning", reason="FailedToCreateRedisCleanupJob", message=message
            )
            raise
        message = f"Created Redis cleanup Job {ns}/{name_of(job)}"
        self._recorder.record(obj, type_="Normal", reason="CreatedRedisCleanupJob", message=message)
