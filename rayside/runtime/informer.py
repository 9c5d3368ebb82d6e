"""Informer: a local cache of one collection kept current by list + watch.

The loop lists in pages (`limit`/`continue`), replaces the cache, then watches from the list's
resourceVersion with bookmarks. A closed stream is re-opened from the last seen resourceVersion (bookmarks
keep it fresh while nothing matching changes); 410 Gone (history compacted) leads to a fresh list at once,
any other failure to a fresh list after a growing backoff (0.2 s doubling to 5 s, reset once a watch ended
normally). Label and field selectors narrow the collection; a `transform` trims objects before they are
stored (by default it drops `managedFields`).

Every change calls each handler with `(old, new)`: old None = added, new None = deleted (old is then the
last cached copy). A relist reports only the differences against the cache. :func:`typed_handler` adapts a
`(type, obj, old)` consumer. The cache is indexed by namespace; callers register further indexes
(`add_indexer(name, fn)`, `by_index(name, value)`). `observe()` stores the answer to one of our own writes
without an event, `halt()` ends one informer (e.g. its CRD was deleted), `synced` is set after the first
list. :class:`InformerGroup` reads several informers of one kind (e.g. one per namespace) as one cache.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Iterable, Mapping

from rayside.kubeclient import Gone, KubeClient, KubeError
from rayside.objects import JSON, key_of, namespace_of, resource_version_of, rv_number, split_key

log = logging.getLogger(__name__)

ChangeHandler = Callable[[JSON | None, JSON | None], None]
TypedHandler = Callable[[str, JSON, JSON | None], None]  # (ADDED/MODIFIED/DELETED, object, previous)
Indexer = Callable[[JSON], Iterable[str]]  # the index values an object is filed under
NAMESPACE_INDEX = "namespace"
BACKOFF_BASE = 0.2
BACKOFF_MAX = 5.0


def strip_managed_fields(obj: JSON) -> JSON:
    """Default transform: drop `metadata.managedFields`, which no rayside controller reads."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def backoff_delay(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Seconds to wait before the next attempt after `failures` failures in a row (1 = first failure)."""
    return min(base * 2.0 ** max(0, failures - 1), cap)


def typed_handler(handler: TypedHandler) -> ChangeHandler:
    """Adapt a `(type, obj, old)` consumer: ADDED (old None), MODIFIED, or DELETED (obj = old = last copy)."""

    def on_change(old: JSON | None, new: JSON | None) -> None:
        if new is None:
            if old is not None:
                handler("DELETED", old, old)
        else:
            handler("ADDED" if old is None else "MODIFIED", new, old)

    return on_change


def _namespace_index(obj: JSON) -> Iterable[str]:
    return (namespace_of(obj),)


class Informer:
    """List+watch cache of one collection path (e.g. `PODS.path()` or one namespace's collection)."""

    def __init__(
        self,
        client: KubeClient,
        path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        on_change: ChangeHandler | None = None,
        transform: Callable[[JSON], JSON] = strip_managed_fields,
        indexers: Mapping[str, Indexer] | None = None,
        watch_timeout: int = 30,
        page_size: int = 500,
        sleep: Callable[[float], None] | None = None,
        name: str = "",
    ) -> None:
        self._client = client
        self.path = path
        self.name = name or path
        self._params: dict[str, str] = {}
        if label_selector:
            self._params["labelSelector"] = label_selector
        if field_selector:
            self._params["fieldSelector"] = field_selector
        self._handlers: list[ChangeHandler] = [on_change] if on_change else []
        self._transform = transform
        self._watch_timeout = watch_timeout
        self._page_size = page_size
        self._sleep = sleep  # injected pause between failed attempts; default: wait on the stop event
        self._lock = threading.RLock()
        self._store: dict[str, JSON] = {}
        self._indexers: dict[str, Indexer] = {NAMESPACE_INDEX: _namespace_index, **(indexers or {})}
        self._indexes: dict[str, dict[str, set[str]]] = {n: {} for n in self._indexers}
        self.synced = threading.Event()
        self.halted = threading.Event()
        self.resource_version = ""
        self.relists = 0  # completed lists (the first one included)
        self.failures = 0  # failed attempts since the last watch that ended normally

    def add_handler(self, handler: ChangeHandler) -> None:
        self._handlers.append(handler)

    def add_indexer(self, name: str, indexer: Indexer) -> None:
        """File every object (cached and future) under `indexer(obj)` in the index `name`."""
        with self._lock:
            self._indexers[name] = indexer
            self._indexes[name] = {}
            for key, obj in self._store.items():
                self._file(name, key, obj, add=True)

    # -- reads ----------------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> JSON | None:
        with self._lock:
            return self._store.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> JSON | None:
        """The object with `key_of(obj) == key`."""
        return self.get(*split_key(key))

    def list(self, namespace: str | None = None) -> builtins.list[JSON]:
        if namespace is None:
            with self._lock:
                return list(self._store.values())
        return self.by_index(NAMESPACE_INDEX, namespace)

    def by_index(self, index: str, value: str) -> builtins.list[JSON]:
        """The cached objects filed under `value` in the index `index` (KeyError: no such index)."""
        with self._lock:
            return [self._store[k] for k in self._indexes[index].get(value, ())]

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)

    # -- store maintenance ----------------------------------------------------------------------------
    def _file(self, index: str, key: str, obj: JSON, add: bool) -> None:
        buckets = self._indexes[index]
        for value in self._indexers[index](obj):
            if add:
                buckets.setdefault(value, set()).add(key)
                continue
            members = buckets.get(value)
            if members is not None:
                members.discard(key)
                if not members:
                    del buckets[value]

    def _index(self, key: str, obj: JSON, add: bool) -> None:
        for index in self._indexers:
            self._file(index, key, obj, add)

    def _put(self, obj: JSON) -> tuple[JSON | None, JSON]:
        key = key_of(obj)
        with self._lock:
            old = self._store.get(key)
            if old is not None:
                self._index(key, old, add=False)
            self._store[key] = obj
            self._index(key, obj, add=True)
        return old, obj

    def _remove(self, obj: JSON) -> JSON | None:
        key = key_of(obj)
        with self._lock:
            old = self._store.pop(key, None)
            if old is not None:
                self._index(key, old, add=False)
        return old

    def observe(self, obj: JSON) -> None:
        """Write-through after our own write: store `obj` if it is newer than the cached copy (no events)."""
        obj = self._transform(obj)
        with self._lock:
            cached = self._store.get(key_of(obj))
            if cached is not None and rv_number(obj) > rv_number(cached):
                self._put(obj)

    def _notify(self, old: JSON | None, new: JSON | None) -> None:
        for handler in self._handlers:
            try:
                handler(old, new)
            except Exception:  # a handler bug must not kill the watch
                log.exception("informer %s: change handler failed", self.name)

    # -- list + watch ---------------------------------------------------------------------------------
    def _list_pages(self) -> tuple[dict[str, JSON], str]:
        """List in pages of `page_size`, transforming each page at once: a relist of thousands of Pods
        never holds more than one page of full objects in memory."""
        params: dict[str, str] = {**self._params, "limit": str(self._page_size)}
        fresh: dict[str, JSON] = {}
        while True:
            page = self._client.list(self.path, params)
            for obj in page.get("items") or []:
                fresh[key_of(obj)] = self._transform(obj)
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
            if old is None or resource_version_of(old) != resource_version_of(new):
                self._notify(old, new)
        self.resource_version = rv
        self.relists += 1
        self.synced.set()

    def _apply(self, kind: str, obj: JSON) -> None:
        rv = resource_version_of(obj)
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

    def _stopping(self, stop: threading.Event) -> bool:
        return stop.is_set() or self.halted.is_set()

    def watch_once(self, stop: threading.Event) -> None:
        """One watch connection from the current resourceVersion until the server closes it."""
        stream = self._client.watch(
            self.path,
            resource_version=self.resource_version,
            timeout_seconds=self._watch_timeout,
            params={**self._params, "allowWatchBookmarks": "true"},
        )
        for event in stream:
            if self._stopping(stop):
                return
            self._apply(event.type, event.object)

    def _pause(self, stop: threading.Event, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
            return
        waited = 0.0
        while waited < seconds and not self._stopping(stop):  # slices, so halt() is noticed too
            step = min(0.25, seconds - waited)
            stop.wait(step)
            waited += step

    def _failed(self, stop: threading.Event, what: str) -> None:
        self.failures += 1
        delay = backoff_delay(self.failures)
        log.debug("informer %s: %s; relisting in %.1fs", self.name, what, delay)
        self._pause(stop, delay)

    def run(self, stop: threading.Event) -> None:
        """List then watch until `stop` is set or `halt()` is called; never raises."""
        need_list = True
        while not self._stopping(stop):
            try:
                if need_list:
                    self.relist()
                    need_list = False
                self.watch_once(stop)
                self.failures = 0
            except Gone:
                log.debug("informer %s: resourceVersion %s gone; relisting", self.name, self.resource_version)
                need_list = True
            except (KubeError, OSError, ValueError) as exc:
                need_list = True
                if not self._stopping(stop):
                    self._failed(stop, str(exc))
            except Exception:
                log.exception("informer %s: unexpected error", self.name)
                need_list = True
                self._failed(stop, "unexpected error")

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name=f"informer {self.name}", daemon=True)
        thread.start()
        return thread

    def halt(self) -> None:
        """End this informer only (its loop returns at the next event, pause or watch timeout)."""
        self.halted.set()


class InformerGroup:
    """The read side of several informers of one kind (e.g. one per namespace), as if they were one cache."""

    def __init__(self, informers: Iterable[Informer]) -> None:
        self.informers = builtins.list(informers)

    def get(self, namespace: str, name: str) -> JSON | None:
        for informer in self.informers:
            found = informer.get(namespace, name)
            if found is not None:
                return found
        return None

    def list(self, namespace: str | None = None) -> builtins.list[JSON]:
        return [o for informer in self.informers for o in informer.list(namespace)]

    def by_index(self, index: str, value: str) -> builtins.list[JSON]:
        return [o for informer in self.informers for o in informer.by_index(index, value)]

    def observe(self, obj: JSON) -> None:
        for informer in self.informers:
            informer.observe(obj)

    def add_handler(self, handler: ChangeHandler) -> None:
        for informer in self.informers:
            informer.add_handler(handler)

    def __len__(self) -> int:
        return sum(len(i) for i in self.informers)
