"""A lazily started background thread working a FIFO of items, so a caller never waits for the work.

Subclasses implement `_process(item)` (called on the thread, outside the lock) and queue items with
`_enqueue(item)` (or `_enqueue_locked` while holding `self._cv`, to decide and queue atomically). The thread
starts with the first item. With `max_queue`, a full queue drops its oldest item (counted in `dropped`,
reported to `_on_drop`). `close(timeout)` stops taking items, lets the thread finish the queue for at most
`timeout` seconds and returns what was left (also counted in `dropped`, unless a subclass keeps it).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class BackgroundQueue(Generic[T]):
    """The shape shared by the operator's StatusWriter and EventRecorder."""

    def __init__(self, name: str, *, max_queue: int = 0) -> None:
        self._name = name
        self._max_queue = max(0, max_queue)  # 0: unbounded
        self._cv = threading.Condition()
        self._queue: deque[T] = deque()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._busy = False
        self.dropped = 0

    # -- for subclasses -------------------------------------------------------------------------------
    def _process(self, item: T) -> None:
        raise NotImplementedError

    def _on_drop(self, item: T) -> None:
        """Called (lock held) for an item dropped because the queue was full."""

    def _enqueue_locked(self, item: T) -> bool:
        """Queue `item` (caller holds `self._cv`); False once closing."""
        if self._closing:
            return False
        if self._max_queue and len(self._queue) >= self._max_queue:
            self.dropped += 1
            self._on_drop(self._queue.popleft())
        self._append_locked(item)
        return True

    def _append_locked(self, item: T) -> None:
        """Queue `item` even while closing (a retry, or work that must follow an item being processed)."""
        self._queue.append(item)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        self._cv.notify()

    def _enqueue(self, item: T) -> bool:
        with self._cv:
            return self._enqueue_locked(item)

    def _pause(self, seconds: float) -> None:
        """Wait up to `seconds` on the worker thread (woken early by a new item or by `close()`)."""
        with self._cv:
            self._cv.wait(seconds)

    @property
    def closing(self) -> bool:
        with self._cv:
            return self._closing

    # -- public ---------------------------------------------------------------------------------------
    def backlog(self) -> int:
        """Items queued plus the one being processed."""
        with self._cv:
            return len(self._queue) + (1 if self._busy else 0)

    def close(self, timeout: float = 5.0) -> list[T]:
        """Stop taking items; work the queue for up to `timeout` seconds; return (and drop) the rest."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cv:
            left = list(self._queue)
            self._queue.clear()
            self.dropped += len(left)
        if left:
            log.debug("%s: %d items not processed at shutdown", self._name, len(left))
        return left

    def _run(self) -> None:
        while True:
            with self._cv:
                self._busy = False
                while not self._queue and not self._closing:
                    self._cv.wait()
                if not self._queue:
                    return
                item = self._queue.popleft()
                self._busy = True
            try:
                self._process(item)
            except Exception:  # the thread must outlive one bad item
                log.exception("%s: processing an item failed", self._name)
