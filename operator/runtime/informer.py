"""Informer: a local cache of one resource kind kept current by list + watch.

The loop lists (following `continue`), replaces the cache, then watches from the list's resourceVersion
with bookmarks. A closed stream is re-opened from the last seen resourceVersion; 410 Gone (history
compacted) or an unexpected error leads to a fresh list after a short backoff. Every change calls
`on_change(old, new)` (old None = added, new None = deleted) so the controller can queue keys. The cache
is indexed by namespace and by RayCluster (`ray.io/cluster` label, else the controlling owner), and an
optional `transform` trims objects before they are stored (e.g. drops managedFields) to save memory.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from rayside.kubeclient import Gone, KubeClient, KubeError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ChangeHandler = Callable[[Obj | None, Obj | None], None]
CLUSTER_LABEL = "ray.io/cluster"


class Cache(Protocol):
    """The read side the reconcilers use (an Informer or an InformerGroup)."""

    def get(self, namespace: str, name: str) -> Obj | None: ...
    def by_cluster(self, namespace: str, cluster: str) -> builtins.list[Obj]: ...
    def observe(self, obj: Obj) -> None: ...


def obj_key(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    ns = meta.get("namespace") or ""
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def cluster_of(obj: Obj) -> str | None:
    """The RayCluster an object belongs to: its `ray.io/cluster` label, else its RayCluster owner."""
    meta = obj.get("metadata", {})
    label = (meta.get("labels") or {}).get(CLUSTER_LABEL)
    if label:
        return str(label)
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "RayCluster" and ref.get("controller"):
            return str(ref.get("name"))
    return None


def _rv(obj: Obj) -> int:
    value = str(obj.get("metadata", {}).get("resourceVersion") or "")
    return int(value) if value.isdigit() else -1


def strip_managed_fields(obj: Obj) -> Obj:
    """Default transform: drop `metadata.managedFields`, which the operator never reads."""
    obj.get("metadata", {}).pop("managedFields", None)
    return obj


class Informer:
    """List+watch cache of one collection path (e.g. /api/v1/pods or a namespaced collection)."""

    def __init__(
        self,
        client: KubeClient,
        path: str,
        *,
        label_selector: str | None = None,
        on_change: ChangeHandler | None = None,
        transform: Callable[[Obj], Obj] = strip_managed_fields,
        watch_timeout: int = 30,
        page_size: int = 500,
    ) -> None:
        self._client = client
        self.path = path
        self._selector = label_selector
        self._handlers: list[ChangeHandler] = [on_change] if on_change else []
        self._transform = transform
        self._watch_timeout = watch_timeout
        self._page_size = page_size
        self._lock = threading.RLock()
        self._store: dict[str, Obj] = {}
        self._by_cluster: dict[tuple[str, str], set[str]] = {}
        self._by_namespace: dict[str, set[str]] = {}
        self.synced = threading.Event()
        self.resource_version = ""
        self.relists = 0

    def add_handler(self, handler: ChangeHandler) -> None:
        self._handlers.append(handler)

    # -- reads ----------------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._store.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        with self._lock:
            if namespace is None:
                return list(self._store.values())
            return [self._store[k] for k in self._by_namespace.get(namespace, ())]

    def by_cluster(self, namespace: str, cluster: str) -> builtins.list[Obj]:
        """Objects labelled `ray.io/cluster=<cluster>` in `namespace`."""
        with self._lock:
            return [self._store[k] for k in self._by_cluster.get((namespace, cluster), ())]

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)

    # -- store maintenance ----------------------------------------------------------------------------
    def _index(self, key: str, obj: Obj, add: bool) -> None:
        meta = obj.get("metadata", {})
        ns = meta.get("namespace") or ""
        cluster = cluster_of(obj)
        buckets: list[tuple[dict[Any, set[str]], Any]] = [(self._by_namespace, ns)]
        if cluster:
            buckets.append((self._by_cluster, (ns, cluster)))
        for index, value in buckets:
            if add:
                index.setdefault(value, set()).add(key)
            else:
                members = index.get(value)
                if members is not None:
                    members.discard(key)
                    if not members:
                        del index[value]

    def _put(self, obj: Obj) -> tuple[Obj | None, Obj]:
        key = obj_key(obj)
        with self._lock:
            old = self._store.get(key)
            if old is not None:
                self._index(key, old, add=False)
            self._store[key] = obj
            self._index(key, obj, add=True)
        return old, obj

    def _remove(self, obj: Obj) -> Obj | None:
        key = obj_key(obj)
        with self._lock:
            old = self._store.pop(key, None)
            if old is not None:
                self._index(key, old, add=False)
        return old

    def observe(self, obj: Obj) -> None:
        """Write-through after our own write: store `obj` if it is newer than the cached copy (no events)."""
        obj = self._transform(obj)
        with self._lock:
            cached = self._store.get(obj_key(obj))
            if cached is not None and _rv(obj) > _rv(cached):
                self._put(obj)

    def _notify(self, old: Obj | None, new: Obj | None) -> None:
        for handler in self._handlers:
            try:
                handler(old, new)
            except Exception:  # a handler bug must not kill the watch
                log.exception("informer %s: change handler failed", self.path)

    # -- list + watch ---------------------------------------------------------------------------------
    def _params(self) -> dict[str, str]:
        return {"labelSelector": self._selector} if self._selector else {}

    def _list_pages(self) -> tuple[dict[str, Obj], str]:
        """List in pages of `page_size`, transforming each page at once: a relist of thousands of Pods
        never holds more than one page of full objects in memory."""
        params: dict[str, str] = {**self._params(), "limit": str(self._page_size)}
        fresh: dict[str, Obj] = {}
        while True:
            page = self._client.list(self.path, params)
            for obj in page.get("items") or []:
                fresh[obj_key(obj)] = self._transform(obj)
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                return fresh, str(meta.get("resourceVersion", ""))
            params["continue"] = str(meta["continue"])

    def relist(self) -> None:
        """List everything, replace the cache and report the differences as changes."""
        fresh, rv = self._list_pages()
        with self._lock:
            gone = [o for k, o in self._store.items() if k not in fresh]
        for obj in gone:
            self._notify(self._remove(obj), None)
        for obj in fresh.values():
            old, new = self._put(obj)
            if old is None or old.get("metadata", {}).get("resourceVersion") != new["metadata"].get(
                "resourceVersion"
            ):
                self._notify(old, new)
        self.resource_version = rv
        self.relists += 1
        self.synced.set()

    def _apply(self, kind: str, obj: Obj) -> None:
        rv = obj.get("metadata", {}).get("resourceVersion")
        if kind == "BOOKMARK":
            if rv:
                self.resource_version = rv
            return
        if kind == "ERROR":
            raise Gone(410, "Expired", str(obj.get("message", "watch error")), obj)
        obj = self._transform(obj)
        if kind == "DELETED":
            self._notify(self._remove(obj) or obj, None)
        else:
            old, new = self._put(obj)
            self._notify(old, new)
        if rv:
            self.resource_version = rv

    def watch_once(self, stop: threading.Event) -> None:
        """One watch connection from the current resourceVersion until the server closes it."""
        params = {**self._params(), "allowWatchBookmarks": "true"}
        stream = self._client.watch(
            self.path,
            resource_version=self.resource_version,
            timeout_seconds=self._watch_timeout,
            params=params,
        )
        for event in stream:
            if stop.is_set():
                return
            self._apply(event.type, event.object)

    def run(self, stop: threading.Event) -> None:
        """List then watch until `stop` is set; never raises."""
        backoff = 0.2
        need_list = True
        while not stop.is_set():
            try:
                if need_list:
                    self.relist()
                    need_list = False
                self.watch_once(stop)
                backoff = 0.2
            except Gone:
                log.debug("informer %s: resourceVersion %s gone; relisting", self.path, self.resource_version)
                need_list = True
            except (KubeError, OSError, ValueError) as exc:
                log.debug("informer %s: %s; retrying in %.1fs", self.path, exc, backoff)
                need_list = True
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                log.exception("informer %s: unexpected error; relisting", self.path)
                need_list = True
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name=f"informer{self.path}", daemon=True)
        thread.start()
        return thread


class InformerGroup:
    """The read side of several per-namespace informers of one kind, as if they were one cache."""

    def __init__(self, informers: builtins.list[Informer]) -> None:
        self.informers = informers

    def get(self, namespace: str, name: str) -> Obj | None:
        for informer in self.informers:
            found = informer.get(namespace, name)
            if found is not None:
                return found
        return None

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        return [o for informer in self.informers for o in informer.list(namespace)]

    def by_cluster(self, namespace: str, cluster: str) -> builtins.list[Obj]:
        return [o for informer in self.informers for o in informer.by_cluster(namespace, cluster)]

    def observe(self, obj: Obj) -> None:
        for informer in self.informers:
            informer.observe(obj)

    def add_handler(self, handler: ChangeHandler) -> None:
        for informer in self.informers:
            informer.add_handler(handler)

    def __len__(self) -> int:
        return sum(len(i) for i in self.informers)
