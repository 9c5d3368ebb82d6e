"""Controller: worker threads that take keys from a WorkQueue and call a reconcile function.

`reconcile(key)` returns the seconds after which the key should be looked at again (None = only when
something changes). An exception requeues the key with exponential backoff; success resets it. The queue
serializes keys, so one object is never reconciled by two workers at once, while different objects run
in parallel on `workers` threads. `stop()` lets in-flight reconciles finish, then returns.

Every pass is counted by result (controller-runtime's `success`, `error`, `requeue`, `requeue_after`)
and timed into a histogram with controller-runtime's buckets; `stats()` returns a consistent copy. The
operator's RayCluster controller and localkube's built-in controllers both run on this loop.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rayside.runtime.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

Reconcile = Callable[[str], float | None]

RESULTS = ("success", "error", "requeue", "requeue_after")
# controller_runtime_reconcile_time_seconds buckets (upper bounds, seconds; +Inf is implicit)
RECONCILE_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0,
    40.0, 50.0, 60.0,
)  # fmt: skip


def result_of(requeue_after: float | None) -> str:
    """The controller-runtime result label of a pass that returned `requeue_after` (no exception)."""
    if requeue_after is None:
        return "success"
    return "requeue_after" if requeue_after > 0 else "requeue"


@dataclass(frozen=True)
class ReconcileStats:
    """A snapshot of one controller's reconcile counters."""

    controller: str
    results: tuple[tuple[str, int], ...]  # (result, count) in RESULTS order
    bucket_counts: tuple[
        int, ...
    ]  # per bucket of RECONCILE_BUCKETS, plus a last one for +Inf (not cumulative)
    duration_sum: float
    active_workers: int
    max_concurrent: int

    @property
    def count(self) -> int:
        return sum(self.bucket_counts)


class Controller:
    """Runs `reconcile` for queued keys on `workers` threads."""

    def __init__(
        self,
        *,
        name: str,
        queue: WorkQueue,
        reconcile: Reconcile,
        workers: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.queue = queue
        self._reconcile = reconcile
        self._workers = max(1, workers)
        self._clock = clock
        self._threads: list[threading.Thread] = []
        self._stats_lock = threading.Lock()
        self._results = dict.fromkeys(RESULTS, 0)
        self._buckets = [0] * (len(RECONCILE_BUCKETS) + 1)
        self._duration_sum = 0.0
        self._active = 0

    @property
    def errors(self) -> int:
        with self._stats_lock:
            return self._results["error"]

    def _observe(self, result: str, seconds: float) -> None:
        with self._stats_lock:
            self._results[result] += 1
            self._buckets[bisect.bisect_left(RECONCILE_BUCKETS, seconds)] += 1
            self._duration_sum += seconds
            self._active -= 1

    def stats(self) -> ReconcileStats:
        with self._stats_lock:
            return ReconcileStats(
                controller=self.name,
                results=tuple((r, self._results[r]) for r in RESULTS),
                bucket_counts=tuple(self._buckets),
                duration_sum=self._duration_sum,
                active_workers=self._active,
                max_concurrent=self._workers,
            )

    def process_one(self) -> bool:
        """Reconcile one key; False once the queue is shut down."""
        try:
            key = self.queue.get()
        except ShutDown:
            return False
        if key is None:
            return True
        with self._stats_lock:
            self._active += 1
        started = self._clock()
        result = "error"
        try:
            requeue_after = self._reconcile(key)
        except Exception as exc:
            delay = self.queue.add_rate_limited(key)
            log.debug(
                "%s: reconcile %s failed (%s: %s); retry in %.2fs",
                self.name,
                key,
                type(exc).__name__,
                exc,
                delay,
            )
        else:
            result = result_of(requeue_after)
            self.queue.forget(key)
            if requeue_after is not None:
                self.queue.add_after(key, requeue_after)
        finally:
            self.queue.done(key)
            self._observe(result, max(0.0, self._clock() - started))
        return True

    def _work(self) -> None:
        while self.process_one():
            pass

    def start(self) -> None:
        for i in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"{self.name}-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the queue down and wait for in-flight reconciles."""
        self.queue.shutdown()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
