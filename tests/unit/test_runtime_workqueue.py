"""The shared WorkQueue and Controller (rayside.runtime) with an injected clock: no sleeping, no I/O."""

from __future__ import annotations

import pytest

from rayside.runtime.controller import Controller
from rayside.runtime.workqueue import ShutDown, WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_duplicate_adds_are_collapsed() -> None:
    q = WorkQueue(clock=FakeClock())
    q.add("ns/a")
    q.add("ns/a")
    q.add("ns/b")
    assert len(q) == 2
    assert q.get(timeout=0) == "ns/a"
    assert q.get(timeout=0) == "ns/b"
    assert q.get(timeout=0) is None


def test_key_added_while_processing_is_requeued_only_after_done() -> None:
    q = WorkQueue(clock=FakeClock())
    q.add("k")
    assert q.get(timeout=0) == "k"
    q.add("k")
    q.add("k")
    assert q.get(timeout=0) is None  # per-key serialization: not handed to a second worker
    q.done("k")
    assert q.get(timeout=0) == "k"
    q.done("k")
    assert q.get(timeout=0) is None


def test_add_after_waits_for_the_clock_and_earliest_wins() -> None:
    clock = FakeClock()
    q = WorkQueue(clock=clock)
    q.add_after("k", 10)
    q.add_after("k", 5)
    q.add_after("k", 20)
    assert q.get(timeout=0) is None
    clock.now += 4.9
    assert q.get(timeout=0) is None
    clock.now += 0.2
    assert q.get(timeout=0) == "k"
    q.done("k")
    clock.now += 100
    assert q.get(timeout=0) is None  # superseded entries do not fire again
    assert q.pending_delayed() == 0


def test_rate_limited_backoff_is_exponential_capped_and_reset_by_forget() -> None:
    clock = FakeClock()
    q = WorkQueue(clock=clock, base_delay=1.0, max_delay=5.0)
    delays = []
    for _ in range(5):
        delays.append(q.add_rate_limited("k"))
        clock.now += 10
        assert q.get(timeout=0) == "k"
        q.done("k")
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    q.forget("k")
    assert q.failures("k") == 0
    assert q.add_rate_limited("k") == 1.0


def test_shutdown_wakes_getters() -> None:
    q = WorkQueue(clock=FakeClock())
    q.add("k")
    q.shutdown()
    q.add("other")
    with pytest.raises(ShutDown):
        q.get(timeout=0)


def test_delayed_adds_fire_once_after_their_delay_and_do_not_hold_back_an_add() -> None:
    clock = FakeClock()
    q = WorkQueue(clock=clock)
    q.add("b")
    q.add_after("a", 5.0)
    q.add_after("b", 5.0)
    assert q.get(timeout=0) == "b"
    q.done("b")
    q.add("a")  # an immediate add of a delayed key does not wait for the delay
    assert q.get(timeout=0) == "a"
    q.done("a")
    clock.now += 6
    assert q.get(timeout=0) == "a"  # the delayed add still fires once (de-duplicated if still queued)
    q.done("a")
    assert q.get(timeout=0) == "b"
    q.done("b")
    assert q.get(timeout=0) is None
    assert q.stats().adds == 4  # b, a, then each delayed add once


def test_stats_count_adds_depth_and_retries() -> None:
    q = WorkQueue(clock=FakeClock(), base_delay=0.0)
    q.add("a")
    q.add("a")
    q.add("b")
    assert q.stats().depth == 2 and q.stats().adds == 2
    assert q.get(timeout=0) == "a"
    q.add_rate_limited("a")
    q.done("a")
    stats = q.stats()
    assert stats.retries == 1 and stats.depth == 2


def _controller(clock: FakeClock, outcomes: dict[str, list[object]]) -> tuple[Controller, list[str]]:
    """A Controller whose reconcile pops the next outcome per key (an exception is raised)."""
    seen: list[str] = []

    def reconcile(key: str) -> float | None:
        seen.append(key)
        outcome = outcomes[key].pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        assert outcome is None or isinstance(outcome, float)
        return outcome

    queue = WorkQueue(clock=clock, base_delay=1.0, max_delay=8.0)
    return Controller(name="t", queue=queue, reconcile=reconcile, clock=clock), seen


def test_controller_backoff_grows_on_failures_and_resets_after_a_success() -> None:
    clock = FakeClock()
    boom = RuntimeError("boom")
    ctl, seen = _controller(clock, {"k": [boom, boom, boom, None, boom]})
    ctl.queue.add("k")
    waits = []
    for _ in range(4):
        assert ctl.process_one()
        due = 0.0
        while ctl.queue.get(timeout=0) is None and ctl.queue.pending_delayed():
            clock.now += 0.5
            due += 0.5
        if len(seen) < 4:
            waits.append(due)
            ctl.queue.done("k")  # undo the probe's get: the key goes back via add below
            ctl.queue.add("k")
    assert waits == [1.0, 2.0, 4.0]  # 1 s doubling per failure
    assert ctl.queue.failures("k") == 0  # the success forgot the failures
    ctl.queue.add("k")
    assert ctl.process_one()
    assert ctl.queue.failures("k") == 1  # the next failure starts at the base delay again
    assert dict(ctl.stats().results) == {"success": 1, "error": 4, "requeue": 0, "requeue_after": 0}


def test_controller_requeue_after_and_per_key_serialization() -> None:
    clock = FakeClock()
    ctl, seen = _controller(clock, {"a": [30.0, None], "b": [None]})
    ctl.queue.add("a")
    ctl.queue.add("b")
    key = ctl.queue.get(timeout=0)
    assert key == "a"
    ctl.queue.add("a")  # changed while "a" is processed: not handed out twice
    assert ctl.queue.get(timeout=0) == "b"
    assert ctl.queue.get(timeout=0) is None
    ctl.queue.done("a")
    ctl.queue.done("b")
    assert ctl.process_one() and seen == ["a"]  # reconciles "a", which asks to be looked at in 30 s
    assert ctl.queue.get(timeout=0) is None
    clock.now += 30
    assert ctl.process_one() and seen == ["a", "a"]
    assert dict(ctl.stats().results)["requeue_after"] == 1


def test_controller_stops_when_the_queue_shuts_down() -> None:
    ctl, _seen = _controller(FakeClock(), {})
    ctl.queue.shutdown()
    assert not ctl.process_one()
