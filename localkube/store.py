"""The object store: in-memory objects, one global resourceVersion counter and a watch-event history.

Every write goes through `Store.put`/`Store.remove` while holding `Store.lock`; callers that read, decide and
write take the lock around the whole sequence (it is re-entrant). Watchers wait on `Store.cond` (its own
lock) and read the history after their resourceVersion; once history before their position is gone they get
410 Expired.

With a persister, watchers only see events once they are committed (`visible_rv`), and a request thread
calls `sync()` before it answers, which waits until every write it made is committed.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from localkube import fastjson
from rayside.objects import JSON

Key = tuple[str, str]  # (namespace, name)


def clone(obj: JSON) -> JSON:
    """A deep copy of a JSON object (faster than copy.deepcopy for JSON data)."""
    out: JSON = fastjson.clone(obj)
    return out


@dataclass(frozen=True)
class Event:
    rv: int
    skey: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: JSON
    old: JSON | None
    # encoded watch lines keyed by (type, apiVersion, kind), shared by every watcher of the event
    encoded: dict[tuple[str, str, str], bytes] = field(default_factory=dict, compare=False, repr=False)


class Persister(Protocol):
    on_durable: Callable[[int], None] | None

    def admit(self, rv: int) -> None: ...
    def wait(self, rv: int) -> None: ...
    def put(self, skey: str, ns: str, name: str, obj: JSON, rv: int) -> None: ...
    def delete(self, skey: str, ns: str, name: str, rv: int) -> None: ...
    def close(self) -> None: ...


class Store:
    """Objects by storage key, the global revision and a bounded event history."""

    def __init__(self, history: int = 10000, persister: Persister | None = None) -> None:
        self.lock = threading.RLock()
        # Watchers wait on their own small lock, not on `lock`: a woken watcher then does not queue up
        # behind the rest of the write that woke it (lock order: `lock`, then `cond`).
        self.cond = threading.Condition(threading.Lock())
        self._objs: dict[str, dict[Key, JSON]] = {}
        self._rv = 0
        self._events: list[Event] = []
        self._event_rvs: list[int] = []
        self._history = max(10, history)
        self.compacted_rv = 0  # events with rv > compacted_rv are all in history
        self._persister = persister
        if persister is not None:
            persister.on_durable = self.durable
        self._visible = 0  # events up to this revision are committed and shown to watchers
        self._pending = threading.local()  # per request thread: the last revision it wrote
        self.closed = False

    # -- loading -------------------------------------------------------------------------------------------
    def load(self, rows: list[tuple[str, str, str, JSON]], rv: int) -> None:
        with self.lock:
            for skey, ns, name, obj in rows:
                self._objs.setdefault(skey, {})[(ns, name)] = obj
            self._rv = max(self._rv, rv)
            self.compacted_rv = self._visible = self._rv

    # -- reads ---------------------------------------------------------------------------------------------
    @property
    def rv(self) -> int:
        return self._rv

    def get(self, skey: str, ns: str, name: str) -> JSON | None:
        with self.lock:
            obj = self._objs.get(skey, {}).get((ns, name))
            return clone(obj) if obj is not None else None

    def peek(self, skey: str, ns: str, name: str) -> JSON | None:
        """The stored object itself (no copy): callers must not mutate it."""
        return self._objs.get(skey, {}).get((ns, name))

    def items(self, skey: str, ns: str | None = None, deep: bool = True) -> tuple[list[JSON], int]:
        """Objects of one storage key sorted by (namespace, name), and the current revision.

        With `deep=False` the objects are shallow copies: callers may set top-level keys but must not
        change nested values (stored objects are replaced on write, never mutated, so reading is safe).
        """
        with self.lock:
            bucket = self._objs.get(skey, {})
            keys = sorted(k for k in bucket if ns is None or k[0] == ns)
            if deep:
                return [clone(bucket[k]) for k in keys], self._rv
            return [dict(bucket[k]) for k in keys], self._rv

    def count(self, skey: str, ns: str | None = None) -> int:
        with self.lock:
            return sum(1 for k in self._objs.get(skey, {}) if ns is None or k[0] == ns)

    # -- writes --------------------------------------------------------------------------------------------
    def _next_rv(self) -> int:
        if self._persister is not None:
            self._persister.admit(self._rv + 1)  # may block until the revision lease is committed
        self._rv += 1
        return self._rv

    def sync(self) -> None:
        """Wait until every write this thread made is durable (call before acknowledging a request)."""
        rv = getattr(self._pending, "rv", 0)
        if rv and self._persister is not None:
            self._persister.wait(rv)
        self._pending.rv = 0

    def durable(self, rv: int) -> None:
        """The persister committed every write up to `rv`: show their events to watchers."""
        with self.cond:
            self._visible = max(self._visible, rv)
            self.cond.notify_all()

    @property
    def visible_rv(self) -> int:
        return self._visible

    def put(self, skey: str, obj: JSON, old: JSON | None) -> JSON:
        """Store `obj` (ADDED if `old` is None, else MODIFIED) with a new resourceVersion.

        The store takes ownership of `obj` (the caller must not touch it afterwards) and returns a shallow
        copy; stored objects are never mutated in place, they are replaced by the next write.
        """
        with self.lock:
            rv = self._next_rv()
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = str(rv)
            ns, name = meta.get("namespace", ""), meta["name"]
            self._objs.setdefault(skey, {})[(ns, name)] = obj
            self._record(Event(rv, skey, "ADDED" if old is None else "MODIFIED", obj, old))
            if self._persister is not None:
                self._persister.put(skey, ns, name, obj, rv)
                self._pending.rv = rv
            return dict(obj)

    def remove(self, skey: str, ns: str, name: str) -> JSON | None:
        """Remove an object; the DELETED event carries its last state with a fresh resourceVersion."""
        with self.lock:
            old = self._objs.get(skey, {}).pop((ns, name), None)
            if old is None:
                return None
            rv = self._next_rv()
            last = dict(old)
            last["metadata"] = {**old["metadata"], "resourceVersion": str(rv)}
            self._record(Event(rv, skey, "DELETED", last, old))
            if self._persister is not None:
                self._persister.delete(skey, ns, name, rv)
                self._pending.rv = rv
            return dict(last)

    def _record(self, event: Event) -> None:
        self._events.append(event)
        self._event_rvs.append(event.rv)
        if len(self._events) > 2 * self._history:
            cut = len(self._events) - self._history
            self.compacted_rv = self._event_rvs[cut - 1]
            del self._events[:cut]
            del self._event_rvs[:cut]
        if self._persister is None:
            with self.cond:
                self._visible = event.rv
                self.cond.notify_all()

    def compact(self) -> int:
        """Forget all history (watches from older revisions then get 410); returns the compacted revision."""
        with self.lock:
            self._events.clear()
            self._event_rvs.clear()
            self.compacted_rv = self._rv
            return self._rv

    # -- watch support -------------------------------------------------------------------------------------
    def events_after(self, rv: int) -> list[Event] | None:
        """Committed events with revision > rv, or None when some of them are no longer retained."""
        with self.lock:
            if rv < self.compacted_rv:
                return None
            i = bisect.bisect_right(self._event_rvs, rv)
            if self._visible >= self._rv:
                return self._events[i:]
            return self._events[i : bisect.bisect_right(self._event_rvs, self._visible)]

    def wait(self, rv: int, timeout: float) -> None:
        """Block until a write newer than `rv` is visible, the store closes, or `timeout` passes."""
        with self.cond:
            if self._visible <= rv and not self.closed:
                self.cond.wait(timeout)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        if self._persister is not None:
            self._persister.close()
