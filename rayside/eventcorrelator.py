"""Event correlation: decide whether a new core/v1 Event is created or folded into an earlier one (no I/O).

Behaves like client-go's EventCorrelator (without its spam filter), so a failure that repeats every
reconcile gives one Event with a growing `count` instead of one Event per attempt:

* Identical Events (same source, involvedObject, type, reason and message) are one Event: the second and
  later ones become a merge patch of `count` and `lastTimestamp` (and `message`) on the first one's name.
* Similar Events (same source, involvedObject, type and reason; different messages): once
  `max_similar` (10) distinct messages were seen within `window` (600 s) of each other, the next ones are
  folded into one Event whose message starts with "(combined from similar events): ".
* State is two LRU maps of at most `max_entries` (4096) keys each; the clock is injected.

`correlate(body)` returns a `Decision`. The caller patches `decision.name` with `decision.patch` when that
is set, else creates `decision.body`; if the patch finds no Event (it expired or was deleted), it creates
`decision.body` instead, which carries the same name and the running count. Thread-safe.
`correlate` is not a pure function of its argument: it reads and updates the correlator's memory, and
nothing else (no clock but the injected one, no I/O).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rayside.objects import JSON, name_of

COMBINED_PREFIX = "(combined from similar events): "
MAX_ENTRIES = 4096
MAX_SIMILAR = 10
WINDOW_SECONDS = 600.0

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A bounded map that forgets the least recently used key."""

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class Decision:
    """What to send: `patch` (a merge patch for the Event `name`) or, when it is None, create `body`."""

    body: JSON
    name: str
    patch: JSON | None = None

    @property
    def count(self) -> int:
        return int(self.body.get("count") or 1)


@dataclass
class _Similar:
    messages: set[str]
    last_seen: float


@dataclass(frozen=True)
class _Seen:
    name: str
    count: int
    first_timestamp: Any


def _source(body: JSON) -> tuple[str, ...]:
    src = body.get("source") or {}
    obj = body.get("involvedObject") or {}
    return (
        str(src.get("component") or ""),
        str(src.get("host") or ""),
        *(str(obj.get(k) or "") for k in ("kind", "namespace", "name", "uid", "apiVersion")),
    )


def similar_key(body: JSON) -> tuple[str, ...]:
    """Events with this key differ at most in their message."""
    return (
        "similar",
        *_source(body),
        str(body.get("type") or ""),
        str(body.get("reason") or ""),
        str(body.get("reportingComponent") or ""),
        str(body.get("reportingInstance") or ""),
    )


def identical_key(body: JSON) -> tuple[str, ...]:
    """Events with this key are the same Event (involvedObject.resourceVersion does not count)."""
    field_path = str((body.get("involvedObject") or {}).get("fieldPath") or "")
    kind, reason = str(body.get("type") or ""), str(body.get("reason") or "")
    return ("identical", *_source(body), field_path, kind, reason, str(body.get("message") or ""))


class EventCorrelator:
    """Remembers recent Events and turns repeats into count patches (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
        max_similar: int = MAX_SIMILAR,
        window: float = WINDOW_SECONDS,
    ) -> None:
        self._clock = clock
        self._max_similar = max(1, max_similar)
        self._window = window
        self._similar: LRU[tuple[str, ...], _Similar] = LRU(max_entries)
        self._seen: LRU[tuple[str, ...], _Seen] = LRU(max_entries)
        self._lock = threading.Lock()

    def correlate(self, body: JSON) -> Decision:
        """The Decision for a new Event body (as `rayside.events.event_body` builds it)."""
        with self._lock:
            body, key = self._aggregate(body)
            seen = self._seen.get(key)
            if seen is None:
                first_seen = _Seen(name_of(body), int(body.get("count") or 1), body.get("firstTimestamp"))
                self._seen.put(key, first_seen)
                return Decision(body=body, name=name_of(body))
            count = seen.count + 1
            first = seen.first_timestamp
            self._seen.put(key, _Seen(seen.name, count, first))
            merged = {
                **body,
                "metadata": {**body["metadata"], "name": seen.name},
                "count": count,
                "firstTimestamp": first,
            }
            patch = {
                "count": count,
                "lastTimestamp": body.get("lastTimestamp"),
                "message": body.get("message"),
            }
            return Decision(body=merged, name=seen.name, patch=patch)

    def _aggregate(self, body: JSON) -> tuple[JSON, tuple[str, ...]]:
        """client-go's aggregator: the body to send and its identity key."""
        now = self._clock()
        skey = similar_key(body)
        record = self._similar.get(skey)
        if record is None or now - record.last_seen > self._window:
            record = _Similar(set(), now)
        record.messages.add(str(body.get("message") or ""))
        record.last_seen = now
        self._similar.put(skey, record)
        if len(record.messages) < self._max_similar:
            return body, identical_key(body)
        record.messages.pop()  # keep the set bounded, like client-go
        combined = {**body, "message": (COMBINED_PREFIX + str(body.get("message") or ""))[:1024]}
        return combined, skey
