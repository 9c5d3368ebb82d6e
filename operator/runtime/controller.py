"""Controller: worker threads that take keys from a WorkQueue and call a reconcile function.

`reconcile(key)` returns the seconds after which the key should be looked at again (None = only when
something changes). An exception requeues the key with exponential backoff; success resets it. The queue
serializes keys, so one object is never reconciled by two workers at once, while different objects run
in parallel on `workers` threads. `stop()` lets in-flight reconciles finish, then returns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ray_operator.runtime.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

Reconcile = Callable[[str], float | None]


class Controller:
    """Runs `reconcile` for queued keys on `workers` threads."""

    def __init__(self, *, name: str, queue: WorkQueue, reconcile: Reconcile, workers: int = 1) -> None:
        self.name = name
        self.queue = queue
        self._reconcile = reconcile
        self._workers = max(1, workers)
        self._threads: list[threading.Thread] = []
        self.errors = 0

    def process_one(self) -> bool:
        """Reconcile one key; False once the queue is shut down."""
        try:
            key = self.queue.get()
        except ShutDown:
            return False
        if key is None:
            return True
        try:
            requeue_after = self._reconcile(key)
        except Exception as exc:
            self.errors += 1
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
            self.queue.forget(key)
            if requeue_after is not None:
                self.queue.add_after(key, requeue_after)
        finally:
            self.queue.done(key)
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
