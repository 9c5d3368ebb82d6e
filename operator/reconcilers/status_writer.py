"""Writes RayCluster status from a background thread, coalesced per cluster, in the deferrable lane.

A reconcile pass computes the status and hands it to `submit()`; it never waits for the write. The writer
takes clusters in the order their status first changed, waits for a token in the client's deferrable lane
(object writes go first, for at most `max_defer` seconds counted from that first change), then sends the
*latest* status submitted for the cluster as one merge patch against what the cache holds. Under a large
scale-up, several status changes of one cluster therefore cost one write, and a status is at most about
`max_defer` seconds late; with a quiet API budget it is written at once. `pending()` lets the next pass
compare against what is about to be written rather than the stale cache. A failed write is retried after a
short pause; a deleted cluster drops its entry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ray_operator.runtime.informer import Cache
from rayside.kubeclient import KubeClient, KubeError, NotFound

log = logging.getLogger(__name__)
Obj = dict[str, Any]


@dataclass
class _Entry:
    status: Obj
    since: float  # when the first unwritten change was submitted


def merge_body(current: Obj, new: Obj) -> Obj:
    """The merge-patch `status` body turning `current` into `new` (absent keys become null; pure)."""
    body: Obj = {k: None for k in current if k not in new}
    body.update(new)
    return body


class StatusWriter:
    def __init__(
        self,
        client: KubeClient,
        *,
        cache: Cache,
        path: Callable[[str, str], str],
        max_defer: float = 10.0,
        retry_pause: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._paid = client.prepaid()
        self._cache = cache
        self._path = path
        self._max_defer = max_defer
        self._retry_pause = retry_pause
        self._clock = clock
        self._pending: dict[tuple[str, str], _Entry] = {}
        self._order: deque[tuple[str, str]] = deque()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self.writes = 0

    def submit(self, namespace: str, name: str, status: Obj) -> None:
        key = (namespace, name)
        with self._cv:
            entry = self._pending.get(key)
            if entry is not None:
                entry.status = status
                return
            self._pending[key] = _Entry(status, self._clock())
            self._order.append(key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="status-writer", daemon=True)
                self._thread.start()
            self._cv.notify()

    def pending(self, namespace: str, name: str) -> Obj | None:
        """The status submitted for the cluster but not yet written, if any."""
        with self._cv:
            entry = self._pending.get((namespace, name))
            return None if entry is None else entry.status

    def forget(self, namespace: str, name: str) -> None:
        with self._cv:
            self._pending.pop((namespace, name), None)

    def idle(self) -> bool:
        with self._cv:
            return not self._pending

    def close(self, timeout: float = 5.0) -> None:
        """Write what is pending (each in turn, without deferring) for up to `timeout` seconds."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cv:
            if self._pending:
                log.debug("%d status writes not done at shutdown", len(self._pending))

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._order and not self._closing:
                    self._cv.wait()
                if not self._order:
                    return
                key = self._order[0]
                entry = self._pending.get(key)
                if entry is None:  # forgotten
                    self._order.popleft()
                    continue
                left = 0.0 if self._closing else entry.since + self._max_defer - self._clock()
            self._client.limiter.acquire(deferrable=True, max_defer=max(0.0, left))
            with self._cv:
                self._order.popleft()
                entry = self._pending.get(key)
                status = None if entry is None else entry.status
            if status is not None and not self._write(key, status):
                with self._cv:
                    self._order.append(key)
                    self._cv.wait(self._retry_pause)

    def _write(self, key: tuple[str, str], status: Obj) -> bool:
        """Send `status`; True when done with the key (written, superseded, or the cluster is gone)."""
        ns, name = key
        cached = self._cache.get(ns, name)
        if cached is None:
            self.forget(ns, name)
            return True
        body = merge_body(dict(cached.get("status") or {}), status)
        try:
            updated = self._paid.patch(self._path(ns, name), {"status": body})
        except NotFound:
            self.forget(ns, name)
            return True
        except KubeError as exc:
            log.debug("raycluster %s/%s: status write failed, retrying: %s", ns, name, exc)
            return False
        self.writes += 1
        self._cache.observe(updated)
        with self._cv:
            entry = self._pending.get(key)
            if entry is not None and entry.status is status:
                del self._pending[key]
            elif entry is not None:  # changed again while being written: its own deferral starts now
                entry.since = self._clock()
                self._order.append(key)
        return True
