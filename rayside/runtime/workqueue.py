"""A work queue of object keys for controllers: de-duplication, per-key serialization, delayed and
rate-limited requeue.

Semantics follow the well-known controller work queue: a key added while it is queued is dropped; a key
added while a worker processes it is queued again only after `done()`, so one key is never reconciled by
two workers at once. `add_rate_limited()` requeues after an exponential per-key backoff that `forget()`
resets. Time comes from an injected clock, so the queue is testable without sleeping: `get(timeout=0)`
never blocks and promotes delayed keys whose time has come. `stats()` gives the counters behind the
`workqueue_*` metrics.

The operator's controllers and localkube's built-in controllers share this queue: a failed pass is requeued
with `add_rate_limited()` (growing per key, reset by `forget()` after a success), never at a fixed interval.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueStats:
    """Counters of one queue, as controller-runtime exports them."""

    depth: int = 0  # keys waiting to be processed (queued, or re-added while being processed)
    adds: int = 0  # adds that queued a key (adds of an already-waiting key are de-duplicated, not counted)
    retries: int = 0  # rate-limited requeues after a failed reconcile


class ShutDown(Exception):
    """Raised by `get()` once the queue is shut down and drained."""


class WorkQueue:
    """A thread-safe, de-duplicating, delaying, rate-limiting queue of string keys."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        base_delay: float = 0.005,
        max_delay: float = 300.0,
    ) -> None:
        self._clock = clock
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._waiting: list[tuple[float, str]] = []  # heap of (ready_at, key)
        self._ready_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._shutting_down = False
        self._adds = 0
        self._retries = 0

    # -- adding ---------------------------------------------------------------------------------------
    def add(self, key: str) -> None:
        """Queue `key` now unless it is already queued."""
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        self._adds += 1
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        """Queue `key` after `delay` seconds; an earlier pending time for the same key wins."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            ready_at = self._clock() + delay
            current = self._ready_at.get(key)
            if current is not None and current <= ready_at:
                return
            self._ready_at[key] = ready_at
            heapq.heappush(self._waiting, (ready_at, key))
            self._cond.notify()

    def add_rate_limited(self, key: str) -> float:
        """Queue `key` after its exponential backoff; return the delay used."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            self._retries += 1
        delay = min(self._base_delay * float(2**failures), self._max_delay)
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """Reset the backoff of `key` (call after a successful reconcile)."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    # -- taking ---------------------------------------------------------------------------------------
    def _promote_due_locked(self) -> float | None:
        """Move due delayed keys into the queue; return seconds until the next one (None if none)."""
        now = self._clock()
        while self._waiting:
            ready_at, key = self._waiting[0]
            if self._ready_at.get(key) != ready_at:  # superseded by an earlier add_after
                heapq.heappop(self._waiting)
                continue
            if ready_at > now:
                return ready_at - now
            heapq.heappop(self._waiting)
            del self._ready_at[key]
            self._add_locked(key)
        return None

    def get(self, timeout: float | None = None) -> str | None:
        """Take the next key and mark it processing; None after `timeout` seconds (0 = do not block).

        Raises ShutDown once the queue is shut down and no key is ready.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                next_due = self._promote_due_locked()
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                if self._shutting_down:
                    raise ShutDown()
                # a delayed key is re-checked at least every second, so a clock that jumps (an injected
                # wall clock, a test clock) cannot leave a due key waiting for a wake-up that never comes
                wait = None if next_due is None else min(next_due, 1.0)
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: str) -> None:
        """Finish processing `key`; if it was added meanwhile it is queued again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    # -- lifecycle ------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop accepting keys and wake every waiting worker; queued keys are dropped."""
        with self._cond:
            self._shutting_down = True
            self._queue.clear()
            self._dirty.clear()
            self._waiting.clear()
            self._ready_at.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def pending_delayed(self) -> int:
        with self._cond:
            return len(self._ready_at)

    def stats(self) -> QueueStats:
        with self._cond:
            return QueueStats(depth=len(self._dirty), adds=self._adds, retries=self._retries)
