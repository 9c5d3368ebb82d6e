"""The one place the autoscaler provider talks to Kubernetes: read a RayCluster and its pods, and apply
scale requests to the CR as one guarded JSON patch.

Per autoscaler update the provider makes one GET of the RayCluster, one LIST of its pods and at most one
PATCH. Launch and terminate requests are queued (idempotent per request id) and flushed together by
:meth:`Scaler.flush`, planned by :mod:`autoscaler_provider.planning` against the latest read. The patch
carries ``test`` ops on the fields it was planned from; when they changed in between (422 for the failed
test, or 409) the scaler re-reads and plans again, a few times. Any other API error fails the
queued requests (reported as errors) and writes nothing: an error never turns into a termination, and a
failed read raises rather than reporting an empty cluster.

No Ray imports here: :mod:`autoscaler_provider.provider` adapts this to Ray's provider interfaces.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from autoscaler_provider.planning import (
    Cluster,
    Plan,
    Request,
    patch_ops,
    plan_scale,
    read_cluster,
    read_groups,
)
from rayside.kubeclient import Conflict, Invalid, KubeClient
from rayside.objects import JSON, PODS, RAYCLUSTERS, resource_version_of

log = logging.getLogger(__name__)

WAITING = "There are workers to be deleted from: {groups}. Waiting for them to be deleted before scaling."
CAPPED = "Launch capped by maxReplicas limit."
BUSY = "Not terminated: {reason}."
DONE_KEPT = 10_000  # request ids remembered for idempotency (Ray replays only recent ones)


@dataclass(frozen=True)
class Snapshot:
    """One read: the RayCluster, its live pods and the planning view of both."""

    raycluster: JSON
    pods: list[JSON]
    cluster: Cluster


@dataclass(frozen=True)
class ScaleError:
    """A launch or terminate request (part) that was not carried out; ``node`` is the node type for a
    launch and the pod name for a terminate."""

    kind: str  # launch | terminate
    request_id: str
    node: str
    count: int
    details: str
    cause: Exception | None = None


@dataclass
class _Pending:
    launches: dict[str, dict[str, int]] = field(default_factory=dict)  # request id → shape
    terminations: dict[str, list[str]] = field(default_factory=dict)  # request id → pod names

    def __bool__(self) -> bool:
        return bool(self.launches or self.terminations)

    def request(self, busy: Collection[str], surplus: Mapping[str, int]) -> Request:
        shape: dict[str, int] = {}
        for one in self.launches.values():
            for node_type, count in one.items():
                shape[node_type] = shape.get(node_type, 0) + count
        ids = list(dict.fromkeys(n for names in self.terminations.values() for n in names))
        return Request(launch=shape, terminate=ids, busy=frozenset(busy), surplus=dict(surplus))


class Scaler:
    """Reads one RayCluster and scales it through its CR (thread-safe)."""

    def __init__(
        self,
        client: KubeClient,
        name: str,
        namespace: str,
        *,
        busy_nodes: Callable[[], Collection[str]] = frozenset,
        attempts: int = 5,
    ) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self._busy_nodes = busy_nodes
        self._attempts = max(1, attempts)
        self._lock = threading.RLock()
        self._pending = _Pending()
        self._done: dict[str, None] = {}  # request ids carried out, oldest first (the last DONE_KEPT)
        self._errors: list[ScaleError] = []
        self._surplus: dict[str, int] = {}
        self._latest: Snapshot | None = None
        self._unused = False  # the latest snapshot has not been handed to a caller of take()

    def set_busy_nodes(self, busy_nodes: Callable[[], Collection[str]]) -> None:
        """Where busy nodes come from (Ray's GCS once the head is up)."""
        self._busy_nodes = busy_nodes

    # -- reads ----------------------------------------------------------------------------------------------
    def refresh(self) -> Snapshot:
        """GET the RayCluster and LIST its pods (exceptions propagate: no read, no decision)."""
        with self._lock:  # let the previous read's pods go first: two lists alive make each GC pass longer
            self._latest, self._unused = None, False
        raycluster = self.client.get(RAYCLUSTERS.path(self.namespace, self.name))
        selector = {"labelSelector": f"ray.io/cluster={self.name}"}
        pods, _ = self.client.list_all(PODS.path(self.namespace), selector)
        snap = Snapshot(raycluster, pods, read_cluster(raycluster, pods))
        with self._lock:
            self._latest, self._unused = snap, True
        return snap

    def take(self) -> Snapshot:
        """The snapshot read earlier in this update (by the config reader) if nobody took it yet; else a
        fresh read. Keeps one GET and one LIST per update."""
        with self._lock:
            if self._latest is not None and self._unused:
                self._unused = False
                return self._latest
        snap = self.refresh()
        with self._lock:
            self._unused = False
        return snap

    def latest(self) -> Snapshot:
        """The most recent read (or patch result), reading once if there is none."""
        with self._lock:
            snap = self._latest
        return snap or self.refresh()

    # -- requests -------------------------------------------------------------------------------------------
    def launch(self, shape: Mapping[str, int], request_id: str) -> None:
        """Queue a launch (pods per node type); a request id seen before is ignored."""
        with self._lock:
            if request_id in self._done or request_id in self._pending.launches:
                return
            self._pending.launches[request_id] = {t: n for t, n in shape.items() if n > 0}

    def terminate(self, ids: Sequence[str], request_id: str) -> None:
        """Queue the termination of pods; a request id seen before is ignored."""
        with self._lock:
            if request_id in self._done or request_id in self._pending.terminations:
                return
            self._pending.terminations[request_id] = list(ids)

    def poll_errors(self) -> list[ScaleError]:
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

    @property
    def has_pending(self) -> bool:
        with self._lock:
            return bool(self._pending)

    # -- the write ------------------------------------------------------------------------------------------
    def flush(self, snap: Snapshot | None = None) -> Snapshot | None:
        """Plan every queued request against ``snap`` (else the latest read) and send at most one patch,
        re-reading and re-planning on a conflict. Returns the snapshot the final plan used."""
        with self._lock:
            pending, self._pending = self._pending, _Pending()
            if not pending:
                return snap
            try:
                snap = snap or self._latest or self.refresh()
                for attempt in range(1, self._attempts + 1):
                    plan = self._plan(snap, pending)
                    try:
                        self._apply(snap, plan)
                    except (Conflict, Invalid) as exc:
                        if isinstance(exc, Invalid) and "test failed" not in exc.message.lower():
                            raise
                        log.debug("%s/%s changed (attempt %d): %s", self.namespace, self.name, attempt, exc)
                        if attempt == self._attempts:
                            raise
                        snap = self.refresh()
                        continue
                    self._settle(pending, plan)
                    return snap
            except Exception as exc:  # any failure: report it, write nothing
                log.warning("%s/%s: scaling failed, nothing written: %s", self.namespace, self.name, exc)
                self._fail(pending, f"Scale request failed: {exc}", exc)
            return snap

    def _plan(self, snap: Snapshot, pending: _Pending) -> Plan:
        busy = self._busy(snap)
        plan = plan_scale(snap.cluster, pending.request(busy, self._surplus))
        # Re-check just before writing: a pod that became busy meanwhile is not deleted.
        planned = {n for names in plan.deletes.values() for n in names}
        now = self._busy(snap) if planned else set()
        if planned & now:
            plan = plan_scale(snap.cluster, pending.request(busy | now, self._surplus))
        return plan

    def _busy(self, snap: Snapshot) -> set[str]:
        """Pods Ray reports busy; when Ray cannot be asked, every pod (launches go on, nothing is removed)."""
        try:
            return set(self._busy_nodes())
        except Exception as exc:  # the GCS query failed: keep everything
            log.warning("%s/%s: cannot tell busy nodes, terminating none: %s", self.namespace, self.name, exc)
            return set(snap.cluster.pods)

    def _apply(self, snap: Snapshot, plan: Plan) -> None:
        ops = patch_ops(snap.cluster, plan)
        if not ops:
            return
        log.info("%s/%s: scaling %s", self.namespace, self.name, ops[1:])
        updated = self.client.patch(RAYCLUSTERS.path(self.namespace, self.name), ops, "json")
        # the pods did not change: only the groups are read again (a full read costs ~10 ms at 1,000 pods)
        cluster = Cluster(resource_version_of(updated), read_groups(updated), snap.cluster.pods)
        new = Snapshot(updated, snap.pods, cluster)
        self._latest = new

    def _settle(self, pending: _Pending, plan: Plan) -> None:
        """Record the outcome: surplus, done ids, and the errors each request gets."""
        if plan.blocked:
            details = WAITING.format(groups=sorted(plan.blocked))
            self._fail(pending, details, None)
            return
        self._surplus = dict(plan.surplus)
        self._done.update(dict.fromkeys([*pending.launches, *pending.terminations]))
        for old in list(self._done)[: max(0, len(self._done) - DONE_KEPT)]:
            del self._done[old]
        rejected = dict(plan.rejected)
        for request_id, shape in pending.launches.items():
            for node_type, count in shape.items():
                cut = min(rejected.get(node_type, 0), count)
                if cut > 0:
                    rejected[node_type] -= cut
                    self._errors.append(ScaleError("launch", request_id, node_type, cut, CAPPED))
        for request_id, names in pending.terminations.items():
            for name in names:
                reason = plan.skipped.get(name, "")
                if "busy" in reason:
                    self._errors.append(
                        ScaleError("terminate", request_id, name, 1, BUSY.format(reason=reason))
                    )

    def _fail(self, pending: _Pending, details: str, cause: Exception | None) -> None:
        for request_id, shape in pending.launches.items():
            for node_type, count in shape.items():
                self._errors.append(ScaleError("launch", request_id, node_type, count, details, cause))
        for request_id, names in pending.terminations.items():
            for name in names:
                self._errors.append(ScaleError("terminate", request_id, name, 1, details, cause))
