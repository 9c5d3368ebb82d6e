"""Writes RayCluster status from a background thread, coalesced per cluster, in the deferrable lane.

A reconcile pass computes the status and hands it to `submit()`; it never waits for the write. The writer
takes clusters in the order their status first changed, waits for a token in the client's deferrable lane
(object writes go first, for at most `max_defer` seconds counted from that first change), then sends the
*latest* status submitted for the cluster as one merge patch against what the cache holds. Under a large
scale-up, several status changes of one cluster therefore cost one write, and a status is at most about
`max_defer` seconds late; with a quiet API budget it is written at once. `pending()` lets the next pass
compare against what is about to be written rather than the stale cache. A failed write is retried after a
short pause; a deleted cluster drops its entry. The thread and its queue come from
`rayside.runtime.background.BackgroundQueue`; `path` builds the status path, so the same writer can serve
other kinds (RayJob, RayService).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ray_operator.runtime.cache import Cache
from rayside.kubeclient import KubeClient, KubeError, NotFound
from rayside.objects import JSON
from rayside.runtime.background import BackgroundQueue

log = logging.getLogger(__name__)
Key = tuple[str, str]


@dataclass
class _Entry:
    status: JSON
    since: float  # when the first unwritten change was submitted


def merge_body(current: JSON, new: JSON) -> JSON:
    """The merge-patch `status` body turning `current` into `new` (absent keys become null; pure)."""
    body: JSON = {k: None for k in current if k not in new}
    body.update(new)
    return body


class StatusWriter(BackgroundQueue[Key]):
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
        super().__init__("status-writer")
        self._client = client
        self._paid = client.prepaid()
        self._cache = cache
        self._path = path
        self._max_defer = max_defer
        self._retry_pause = retry_pause
        self._clock = clock
        self._pending: dict[Key, _Entry] = {}
        self.writes = 0

    def submit(self, namespace: str, name: str, status: JSON) -> None:
        key = (namespace, name)
        with self._cv:
            entry = self._pending.get(key)
            if entry is not None:
                entry.status = status
                return
            self._pending[key] = _Entry(status, self._clock())
            if not self._enqueue_locked(key):  # closed
                del self._pending[key]

    def pending(self, namespace: str, name: str) -> JSON | None:
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

    def close(self, timeout: float = 5.0) -> list[Key]:
        """Write what is pending (each in turn, without deferring) for up to `timeout` seconds."""
        left = super().close(timeout)
        with self._cv:
            if self._pending:
                log.debug("%d status writes not done at shutdown", len(self._pending))
        return left

    def _process(self, key: Key) -> None:
        with self._cv:
            entry = self._pending.get(key)
            if entry is None:  # forgotten
                return
            left = 0.0 if self._closing else entry.since + self._max_defer - self._clock()
        self._client.limiter.acquire(deferrable=True, max_defer=max(0.0, left))
        with self._cv:
            entry = self._pending.get(key)
            status = None if entry is None else entry.status
        if status is not None and not self._write(key, status):
            with self._cv:
                self._append_locked(key)
            self._pause(self._retry_pause)

    def _write(self, key: Key, status: JSON) -> bool:
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
                self._append_locked(key)
        return True
