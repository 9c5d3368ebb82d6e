"""The shared runtime's pure parts without I/O: the informer's backoff and handler adapter, and the bounded
background queue behind the operator's StatusWriter and EventRecorder."""

from __future__ import annotations

import threading
from typing import Any

from rayside.runtime.background import BackgroundQueue
from rayside.runtime.informer import backoff_delay, typed_handler
from tests.support.kube import wait_for


def test_informer_backoff_doubles_from_the_base_and_is_capped() -> None:
    assert [backoff_delay(n) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert backoff_delay(0) == 0.2
    assert backoff_delay(3, base=1.0, cap=3.0) == 3.0


def test_typed_handler_maps_old_new_to_added_modified_deleted() -> None:
    seen: list[tuple[str, Any, Any]] = []
    handler = typed_handler(lambda kind, obj, old: seen.append((kind, obj, old)))
    a = {"metadata": {"name": "a", "resourceVersion": "1"}}
    b = {"metadata": {"name": "a", "resourceVersion": "2"}}
    handler(None, a)
    handler(a, b)
    handler(b, None)
    handler(None, None)
    assert seen == [("ADDED", a, None), ("MODIFIED", b, a), ("DELETED", b, b)]


class Collector(BackgroundQueue[int]):
    """Processes ints once `gate` is open; records them and the ones dropped for a full queue."""

    def __init__(self, max_queue: int) -> None:
        super().__init__("collector", max_queue=max_queue)
        self.gate = threading.Event()
        self.started = threading.Event()
        self.done: list[int] = []
        self.drops: list[int] = []

    def _process(self, item: int) -> None:
        self.started.set()
        self.gate.wait(10)
        self.done.append(item)

    def _on_drop(self, item: int) -> None:
        self.drops.append(item)


def test_background_queue_starts_lazily_drops_the_oldest_when_full_and_closes() -> None:
    worker = Collector(max_queue=2)
    assert worker._thread is None  # nothing queued, no thread
    worker._enqueue(1)
    assert worker.started.wait(10)  # 1 is being processed
    for item in (2, 3, 4):
        worker._enqueue(item)
    assert worker.drops == [2] and worker.dropped == 1 and worker.backlog() == 3
    worker.gate.set()
    wait_for(lambda: worker.backlog() == 0, 10, "queue worked off")
    assert worker.done == [1, 3, 4]
    assert worker.close(timeout=10) == []
    assert not worker._enqueue(5) and worker.backlog() == 0


def test_close_returns_what_was_left_after_the_timeout() -> None:
    worker = Collector(max_queue=0)
    worker._enqueue(1)
    assert worker.started.wait(10)
    worker._enqueue(2)
    assert worker.close(timeout=0.05) == [2]  # 1 is still blocked in _process
    assert worker.dropped == 1
    worker.gate.set()
