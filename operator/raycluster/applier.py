"""The one place the RayCluster controller acts: the per-pass context and the applier of actions.

`Pass` carries what one reconcile pass is about (namespace, name, uid, the raw object and the parsed
cluster, the cache views, the clock reading), so no method threads `ns, name, uid` around. `Applier.apply`
performs a list of actions the pure functions returned, in order: child and Pod creates, Pod deletes,
`workersToDelete` patches (`raycluster.plan`), patches of the cluster itself such as its finalizers
(`PatchCluster`, used by the deletion path), status writes and Events (`WriteStatus`, `RecordEvent`).
Consecutive Pod writes go out in parallel (the client's token bucket still bounds the rate); the first
failure stops everything not yet started, and is reported in the returned `Applied`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ray_operator import constants as c
from ray_operator.models import RayCluster
from ray_operator.raycluster.plan import ClearWorkersToDelete, Create, Delete
from ray_operator.raycluster.status import Outcome
from ray_operator.runtime.cache import Cache
from ray_operator.runtime.events import EventRecorder
from ray_operator.runtime.expectations import Action as Expect
from ray_operator.runtime.expectations import ScaleExpectations
from ray_operator.runtime.status_writer import StatusWriter
from rayside.kubeclient import AlreadyExists, Conflict, Invalid, KubeClient, KubeError, NotFound
from rayside.objects import (
    JSON,
    PODS,
    RAYCLUSTERS,
    ObjectIdentity,
    name_of,
    resource_of,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteStatus:
    """Submit `status` as the cluster's new `.status` (the status writer coalesces and retries)."""

    status: JSON


@dataclass(frozen=True)
class RecordEvent:
    type_: str
    reason: str
    message: str


@dataclass(frozen=True)
class PatchCluster:
    """JSON-patch the RayCluster (guarded by `test` ops). If it changed or is gone meanwhile (409, 422, 404)
    the remaining actions are skipped and the pass fails without a marker: the next pass decides."""

    ops: tuple[JSON, ...]
    what: str  # for the debug log, e.g. "remove finalizer ..."


Action = Create | Delete | ClearWorkersToDelete | PatchCluster | WriteStatus | RecordEvent


@dataclass(frozen=True)
class Views:
    """The informer caches a pass reads."""

    clusters: Cache
    pods: Cache
    services: Cache
    secrets: Cache


@dataclass(frozen=True)
class Pass(ObjectIdentity):
    """One reconcile pass over one RayCluster."""

    obj: JSON  # the RayCluster as the cache holds it
    views: Views
    now: str  # RFC 3339 clock reading for this pass (conditions, lastUpdateTime)
    monotonic: float  # for throttling
    cluster: RayCluster | None = None  # parsed, once the spec is known to be valid

    def pods(self) -> list[JSON]:
        """The cluster's head/worker Pods the cache shows now."""
        return self.views.pods.by_cluster(self.namespace, self.name)

    def services(self) -> list[JSON]:
        return self.views.services.by_cluster(self.namespace, self.name)

    def secrets(self) -> list[JSON]:
        return self.views.secrets.by_cluster(self.namespace, self.name)


@dataclass
class Applied:
    """What applying a plan did: created/deleted Pod names by (node type, group), and the first failure."""

    created: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    created_children: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) really created
    failure: Outcome | None = None


def _is_pod_write(action: Action) -> bool:
    return isinstance(action, Delete) or (isinstance(action, Create) and action.group is not None)


class Applier:
    """Performs actions for the RayCluster reconciler; the only code here that writes."""

    def __init__(
        self,
        client: KubeClient,
        *,
        expectations: ScaleExpectations,
        status_writer: StatusWriter,
        recorder: EventRecorder,
        write_parallelism: int,
    ) -> None:
        self._client = client
        self._paid = client.prepaid()  # the writes of a pass: `_run_one` takes their tokens
        self._expectations = expectations
        self._status_writer = status_writer
        self._recorder = recorder
        self._ensured: set[tuple[str, str, str]] = set()  # (uid, kind, name) seen to exist
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=write_parallelism, thread_name_prefix="pod-writes")
        self.stopping = threading.Event()
        self.failed_actions = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def ensured(self, uid: str) -> set[tuple[str, str]]:
        """(kind, name) of children other than Services/Secrets this operator created or found for `uid`."""
        with self._lock:
            return {(kind, name) for (u, kind, name) in self._ensured if u == uid}

    def apply(self, ctx: Pass, actions: Sequence[Action]) -> Applied:
        """Apply `actions` in order; runs of Pod writes go out in parallel. Stops at the first failure."""
        applied = Applied()
        batch: list[Action] = []
        for action in actions:
            if _is_pod_write(action):
                batch.append(action)
                continue
            if not self._run_batch(ctx, batch, applied) or not self._run_one(ctx, action, applied):
                return applied
            batch = []
        self._run_batch(ctx, batch, applied)
        return applied

    def _run_batch(self, ctx: Pass, batch: list[Action], applied: Applied) -> bool:
        if len(batch) <= 1:
            return all(self._run_one(ctx, a, applied) for a in batch)
        return all(list(self._pool.map(lambda a: self._run_one(ctx, a, applied), batch)))

    def _run_one(self, ctx: Pass, action: Action, applied: Applied) -> bool:
        if isinstance(action, WriteStatus):
            self._status_writer.submit(ctx.namespace, ctx.name, action.status)
            return True
        if isinstance(action, RecordEvent):
            self._recorder.record(ctx.obj, type_=action.type_, reason=action.reason, message=action.message)
            return True
        if applied.failure is not None:
            return False
        # graceful shutdown: finish writes in flight, start no new ones. The write waits for its token
        # here, not inside the client, so a stop that comes while it waits sends nothing.
        if not self.stopping.is_set():
            self._client.limiter.acquire()
        if self.stopping.is_set():
            applied.failure = Outcome("operator is shutting down", None)
            return False
        try:
            if isinstance(action, Create):
                self._create(ctx, action, applied)
            elif isinstance(action, Delete):
                self._delete(ctx, action, applied)
            elif isinstance(action, PatchCluster):
                return self._patch_cluster(ctx, action, applied)
            else:
                self._clear_workers_to_delete(ctx, action)
        except KubeError as exc:
            message = f"{type(exc).__name__} ({exc.status}): {exc.message}"
            log.debug("raycluster %s: action failed: %s", ctx.key, message)
            marker = action.marker if isinstance(action, Create | Delete) else None
            with self._lock:
                if applied.failure is None:
                    applied.failure = Outcome(message, marker)
                self.failed_actions += 1
            return False
        return True

    def _create(self, ctx: Pass, action: Create, applied: Applied) -> None:
        obj = action.obj
        resource = resource_of(obj)
        try:
            created = self._paid.create(resource.path(ctx.namespace), obj)
        except AlreadyExists:
            if not action.tolerate_exists or action.group is not None:
                raise
            created = obj
        else:
            if action.group is None:
                with self._lock:
                    applied.created_children.append((resource.kind, name_of(created)))
        if action.group is not None:
            pod_name = name_of(created)
            self._expectations.expect((ctx.namespace, ctx.name, action.group), pod_name, Expect.CREATE)
            with self._lock:
                applied.created.setdefault(action.group, []).append(pod_name)
        elif resource.kind not in ("Service", "Secret"):
            with self._lock:
                self._ensured.add((ctx.uid, resource.kind, name_of(obj)))
        log.debug("raycluster %s: created %s %s", ctx.key, resource.kind, name_of(created))

    def _delete(self, ctx: Pass, action: Delete, applied: Applied) -> None:
        with contextlib.suppress(NotFound):
            self._paid.delete(PODS.path(ctx.namespace, action.name))
        if not action.expect:
            return
        group = action.group if action.group is not None else ""
        group = "" if group == c.HEAD_GROUP else group
        self._expectations.expect((ctx.namespace, ctx.name, group), action.name, Expect.DELETE)
        with self._lock:
            applied.deleted.setdefault(group, []).append(action.name)

    def _patch_cluster(self, ctx: Pass, action: PatchCluster, applied: Applied) -> bool:
        try:
            updated = self._paid.patch(RAYCLUSTERS.path_of(ctx.obj), list(action.ops), patch_type="json")
        except (Conflict, Invalid, NotFound) as exc:  # changed or gone meanwhile: the next pass decides
            log.debug("raycluster %s: %s not done: %s", ctx.key, action.what, exc.message)
            with self._lock:
                if applied.failure is None:
                    applied.failure = Outcome(f"{action.what}: {exc.message}", None)
            return False
        ctx.views.clusters.observe(updated)
        log.debug("raycluster %s: %s", ctx.key, action.what)
        return True

    def _clear_workers_to_delete(self, ctx: Pass, action: ClearWorkersToDelete) -> None:
        path = f"/spec/workerGroupSpecs/{action.index}/scaleStrategy/workersToDelete"
        ops = [
            {"op": "test", "path": path, "value": list(action.expected)},
            {"op": "replace", "path": path, "value": []},
        ]
        try:
            updated = self._paid.patch(RAYCLUSTERS.path(ctx.namespace, ctx.name), ops, patch_type="json")
            ctx.views.clusters.observe(updated)
        except (Conflict, Invalid) as exc:  # changed meanwhile (e.g. by the autoscaler): next pass decides
            log.debug("raycluster %s: workersToDelete not cleared: %s", ctx.key, exc.message)
