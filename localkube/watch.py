"""Watch streams: initial state, then every matching change from the store history, with selector transitions,
bookmarks, timeouts and 410 Expired when the requested revision is no longer retained."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from localkube.api import Api
from localkube.errors import ApiError, cause, invalid
from localkube.options import ListOptions
from localkube.registry import ResourceType
from localkube.store import Event
from rayside.objects import JSON

DEFAULT_TIMEOUT = 1800.0
# After sending events a watch gathers the next writes for this long before it looks again, instead of
# being woken by each one: under a write burst every watcher then wakes ~100 times/s, not once per write
# (each wake-up costs a GIL hand-off and a socket write). An idle watch still gets the first write at once.
BUSY_BATCH_SECONDS = 0.01


def expired(rv: str, current: int) -> dict[str, Any]:
    return {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {rv} ({current})",
            "reason": "Expired",
            "code": 410,
        },
    }


def check_options(opts: ListOptions) -> None:
    if opts.send_initial_events and (
        not opts.allow_bookmarks or opts.resource_version_match != "NotOlderThan"
    ):
        raise invalid(
            "ListOptions",
            "meta.k8s.io",
            "",
            [
                cause(
                    "FieldValueForbidden",
                    "sendInitialEvents",
                    "Forbidden: sendInitialEvents requires setting allowWatchBookmarks=true and "
                    "resourceVersionMatch=NotOlderThan",
                )
            ],
        )


class WatchStream:
    """Iterates watch events (dicts) for one request; `alive()` lets the server stop on disconnect."""

    def __init__(
        self,
        api: Api,
        rt: ResourceType,
        ns: str | None,
        opts: ListOptions,
        bookmark_interval: float = 60.0,
        alive: Callable[[], bool] = lambda: True,
        drop_after: float | None = None,
    ) -> None:
        check_options(opts)
        self.api, self.rt, self.ns, self.opts = api, rt, ns, opts
        self.match = api.matcher(rt, opts)
        self.bookmark_interval = bookmark_interval
        self.alive = alive
        timeout = float(opts.timeout_seconds) if opts.timeout_seconds else DEFAULT_TIMEOUT
        if drop_after is not None:
            timeout = min(timeout, drop_after)
        self.deadline = time.monotonic() + timeout

    def _obj(self, obj: JSON) -> JSON:
        """A shallow copy (stored objects are never mutated in place) with this view's apiVersion/kind."""
        return self.api.stamp(self.rt, dict(obj))

    def _bookmark(self, rv: int, initial_end: bool = False) -> dict[str, Any]:
        md: JSON = {"resourceVersion": str(rv)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {
            "type": "BOOKMARK",
            "object": {"kind": self.rt.kind, "apiVersion": self.rt.api_version, "metadata": md},
        }

    def _start(self) -> tuple[list[dict[str, Any]], int] | None:
        store = self.api.store
        rv_text = self.opts.resource_version
        with store.lock:
            if rv_text in ("", "0") or self.opts.send_initial_events:
                items, rv = store.items(self.rt.storage_key, self.ns, deep=False)
                first = [{"type": "ADDED", "object": self._obj(o)} for o in items if self.match(o)]
                if self.opts.send_initial_events:
                    first.append(self._bookmark(rv, initial_end=True))
                return first, rv
            rv = int(rv_text)
            if store.events_after(rv) is None:
                return None
            return [], rv

    def _seen_as(self, ev: Event) -> str | None:
        """The event type under which this watch sends `ev.obj` itself (None: not sent, or only as the
        DELETED of `ev.old` when the object left the selector)."""
        if ev.skey != self.rt.storage_key:
            return None
        if self.ns is not None and ev.obj.get("metadata", {}).get("namespace", "") != self.ns:
            return None
        if not self.match(ev.obj):
            return None
        if ev.type in ("ADDED", "DELETED"):
            return ev.type
        return "MODIFIED" if ev.old is not None and self.match(ev.old) else "ADDED"

    def _left(self, ev: Event) -> dict[str, Any] | None:
        """A DELETED event when a modification moved the object out of this watch's selector."""
        if ev.type != "MODIFIED" or ev.old is None or ev.skey != self.rt.storage_key:
            return None
        if self.ns is not None and ev.obj.get("metadata", {}).get("namespace", "") != self.ns:
            return None
        if self.match(ev.obj) or not self.match(ev.old):
            return None
        gone = self._obj(ev.old)
        gone["metadata"] = {**ev.old.get("metadata", {}), "resourceVersion": str(ev.rv)}
        return {"type": "DELETED", "object": gone}

    def translate(self, ev: Event) -> dict[str, Any] | None:
        kind = self._seen_as(ev)
        return {"type": kind, "object": self._obj(ev.obj)} if kind is not None else self._left(ev)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in self._items():
            if isinstance(item, tuple):
                yield {"type": item[0], "object": self._obj(item[1].obj)}
            elif item is not None:
                yield item

    def lines(self, encode: Callable[[dict[str, Any]], bytes]) -> Iterator[bytes]:
        """The events encoded by `encode`, joined per batch (what is ready before the stream waits), so a
        burst of writes costs one socket write. An event every watch of this type sees as the stored
        object is encoded once and shared by all of them (kept with the event in the store history)."""
        batch: list[bytes] = []
        for item in self._items():
            if item is None:
                if batch:
                    yield b"".join(batch)
                    batch.clear()
            elif not isinstance(item, tuple):
                batch.append(encode(item))
            else:
                key = (item[0], self.rt.api_version, self.rt.kind)
                data = item[1].encoded.get(key)
                if data is None:
                    data = item[1].encoded[key] = encode({"type": item[0], "object": self._obj(item[1].obj)})
                batch.append(data)
        if batch:
            yield b"".join(batch)

    def _items(self) -> Iterator[tuple[str, Event] | dict[str, Any] | None]:
        """Watch events: a dict, or (type, event) when the event's own object is sent; None before the
        stream waits (a batch ends)."""
        start = self._start()
        store = self.api.store
        if start is None:
            yield expired(self.opts.resource_version, store.rv)
            return
        first, last = start
        yield from first
        yield None
        next_bookmark = time.monotonic() + self.bookmark_interval
        events: list[Event] | None = []
        # a gone client is noticed by alive() while idle, and by the failing write while events flow
        while not store.closed and (events or self.alive()):
            now = time.monotonic()
            if now >= self.deadline:
                return
            events = store.events_after(last)
            if events is None:
                yield expired(str(last), store.rv)
                return
            for ev in events:
                last = ev.rv
                kind = self._seen_as(ev)
                out = (kind, ev) if kind is not None else self._left(ev)
                if out is not None:
                    yield out
            if self.opts.allow_bookmarks and now >= next_bookmark:
                yield self._bookmark(last)
                next_bookmark = now + self.bookmark_interval
            yield None
            if not events:
                store.wait(last, max(0.01, min(1.0, self.deadline - now, next_bookmark - now)))
            else:
                time.sleep(BUSY_BATCH_SECONDS)


def list_error(exc: ApiError) -> dict[str, Any]:
    return {"type": "ERROR", "object": exc.status()}
