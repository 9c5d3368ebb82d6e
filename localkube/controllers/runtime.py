"""Controller plumbing for localkube's built-in controllers: a list+watch cache (:class:`Informer`), a
de-duplicating delayed work queue (:class:`WorkQueue`) and API discovery of served resources.

Everything talks to the API server through :class:`rayside.kubeclient.KubeClient`; clocks and sleeps are
injected so tests and benchmarks can control time.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from rayside.events import event_body
from rayside.kubeclient import Gone, KubeClient, KubeError, NotFound

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Handler = Callable[[str, Obj, Obj | None], None]  # (event type, object, previous object or None)


def obj_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or ""
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


@dataclass(frozen=True)
class Resource:
    """One served, listable/watchable/deletable resource (a plural of a group/version)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


def discover(client: KubeClient, skip: frozenset[str] = frozenset({"events"})) -> list[Resource]:
    """Every top-level resource that supports list, watch and delete (preferred version per group)."""
    out: list[Resource] = []
    paths = [("", "v1", "/api/v1")]
    for group in client.get("/apis").get("groups") or []:
        pref = (group.get("preferredVersion") or {}).get("version") or group["versions"][0]["version"]
        paths.append((group["name"], pref, f"/apis/{group['name']}/{pref}"))
    for group_name, version, path in paths:
        try:
            listing = client.get(path)
        except NotFound:
            continue
        for res in listing.get("resources") or []:
            verbs = set(res.get("verbs") or [])
            if "/" in res["name"] or res["name"] in skip or not {"list", "watch", "delete"} <= verbs:
                continue
            out.append(Resource(group_name, version, res["name"], res["kind"], bool(res.get("namespaced"))))
    return out


def record_event(
    client: KubeClient, obj: Obj, event_type: str, reason: str, message: str, component: str
) -> None:
    """Write a core/v1 Event about ``obj`` (best effort: failures are logged at debug)."""
    body = event_body(obj, type_=event_type, reason=reason, message=message, component=component)
    ns = body["metadata"]["namespace"]
    try:
        client.create(f"/api/v1/namespaces/{ns}/events", body)
    except KubeError as exc:
        log.debug("event %s for %s/%s not recorded: %s", reason, ns, body["involvedObject"]["name"], exc)


class Informer:
    """Keeps a cache of one collection current via list + watch, calling ``handler`` for every change.

    On 410 Gone or a broken stream it re-lists and diffs, so handlers see every net change.
    """

    def __init__(
        self,
        client: KubeClient,
        path: str,
        handler: Handler,
        stop: threading.Event,
        *,
        sleep: Callable[[float], None],
        watch_timeout: int = 240,
        name: str = "",
    ) -> None:
        self.client = client
        self.path = path
        self.handler = handler
        self.stop_event = stop
        self.sleep = sleep
        self.watch_timeout = watch_timeout
        self.name = name or path
        self.cache: dict[str, Obj] = {}
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"informer {self.name}", daemon=True)
        self.halted = threading.Event()

    def start(self) -> None:
        self.thread.start()

    def halt(self) -> None:
        """Stop this informer only (e.g. its CRD was deleted)."""
        self.halted.set()

    def items(self) -> list[Obj]:
        with self.lock:
            return list(self.cache.values())

    def get(self, key: str) -> Obj | None:
        with self.lock:
            return self.cache.get(key)

    def _stopping(self) -> bool:
        return self.stop_event.is_set() or self.halted.is_set()

    def _emit(self, kind: str, obj: Obj, old: Obj | None) -> None:
        try:
            self.handler(kind, obj, old)
        except Exception:
            log.exception("informer %s: handler failed for %s %s", self.name, kind, obj_key(obj))

    def _relist(self) -> str:
        items, rv = self.client.list_all(self.path)
        fresh = {obj_key(o): o for o in items}
        with self.lock:
            old = self.cache
            self.cache = fresh
        for key, obj in fresh.items():
            prev = old.get(key)
            if prev is None:
                self._emit("ADDED", obj, None)
            elif prev.get("metadata", {}).get("resourceVersion") != obj.get("metadata", {}).get(
                "resourceVersion"
            ):
                self._emit("MODIFIED", obj, prev)
        for key, obj in old.items():
            if key not in fresh:
                self._emit("DELETED", obj, obj)
        self.synced.set()
        return rv

    def _apply(self, kind: str, obj: Obj) -> str:
        key = obj_key(obj)
        with self.lock:
            prev = self.cache.get(key)
            if kind == "DELETED":
                self.cache.pop(key, None)
            else:
                self.cache[key] = obj
        self._emit(kind, obj, prev)
        return str(obj.get("metadata", {}).get("resourceVersion", ""))

    def run(self) -> None:
        rv = ""
        failures = 0
        while not self._stopping():
            try:
                if not rv:
                    rv = self._relist()
                for event in self.client.watch(
                    self.path, resource_version=rv, timeout_seconds=self.watch_timeout
                ):
                    if self._stopping():
                        return
                    if event.type == "BOOKMARK":
                        rv = str(event.object.get("metadata", {}).get("resourceVersion", rv))
                        continue
                    rv = self._apply(event.type, event.object) or rv
                failures = 0
            except Gone:
                rv = ""
            except (KubeError, OSError, ValueError) as exc:
                if self._stopping():
                    return
                failures += 1
                log.debug("informer %s: %s; re-listing", self.name, exc)
                rv = ""
                self.sleep(min(0.1 * 2**failures, 5.0))


class WorkQueue:
    """Keys to process, de-duplicated, optionally delayed; ``get`` blocks until one is due or stop."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.cond = threading.Condition()
        self.ready: list[Hashable] = []
        self.queued: set[Hashable] = set()
        self.delayed: list[tuple[float, int, Hashable]] = []
        self.counter = itertools.count()
        self.closed = False
        self.processing: set[Hashable] = set()
        self.dirty: set[Hashable] = set()

    def _enqueue(self, key: Hashable) -> None:
        if key in self.processing:
            self.dirty.add(key)
        elif key not in self.queued:
            self.queued.add(key)
            self.ready.append(key)

    def add(self, key: Hashable, delay: float = 0.0) -> None:
        with self.cond:
            if delay > 0:
                heapq.heappush(self.delayed, (self.clock() + delay, next(self.counter), key))
            else:
                self._enqueue(key)
            self.cond.notify()

    def done(self, key: Hashable) -> None:
        """Mark ``key`` processed; if it was added meanwhile it becomes ready again."""
        with self.cond:
            self.processing.discard(key)
            if key in self.dirty:
                self.dirty.discard(key)
                self._enqueue(key)
                self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _promote(self) -> float | None:
        now = self.clock()
        while self.delayed and self.delayed[0][0] <= now:
            _due, _n, key = heapq.heappop(self.delayed)
            self._enqueue(key)
        return self.delayed[0][0] - now if self.delayed else None

    def get(self) -> Hashable | None:
        with self.cond:
            while not self.closed:
                wait = self._promote()
                if self.ready:
                    key = self.ready.pop(0)
                    self.queued.discard(key)
                    self.processing.add(key)
                    return key
                self.cond.wait(timeout=min(wait, 1.0) if wait is not None else 1.0)
            return None


def run_workers(
    queue: WorkQueue, process: Callable[[Hashable], None], count: int, name: str
) -> list[threading.Thread]:
    """Start ``count`` threads that take keys from ``queue`` and call ``process`` (errors are logged)."""

    def loop() -> None:
        while True:
            key = queue.get()
            if key is None:
                return
            try:
                process(key)
            except Exception:
                log.exception("%s: processing %s failed", name, key)
                queue.add(key, delay=1.0)
            finally:
                queue.done(key)

    threads = [threading.Thread(target=loop, name=f"{name}-{i}", daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    return threads
