"""WorkQueue and ScaleExpectations with an injected clock: no sleeping, no I/O."""

from __future__ import annotations

import pytest

from ray_operator.runtime.expectations import Action, ScaleExpectations
from ray_operator.runtime.workqueue import ShutDown, WorkQueue


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


def test_expectations_create_satisfied_when_cached_or_timed_out() -> None:
    clock = FakeClock()
    cache: set[tuple[str, str]] = set()
    exp = ScaleExpectations(lambda ns, name: (ns, name) in cache, clock=clock, create_timeout=30)
    key = ("ns", "rc", "wg")
    exp.expect(key, "p1", Action.CREATE)
    exp.expect(key, "p2", Action.CREATE)
    assert not exp.satisfied(key)
    cache.add(("ns", "p1"))
    assert not exp.satisfied(key)
    assert exp.pending(key) == 1
    clock.now += 30
    assert exp.satisfied(key)
    assert exp.satisfied(("ns", "rc", "other"))


def test_expectations_delete_satisfied_only_when_gone() -> None:
    clock = FakeClock()
    cache = {("ns", "p1")}
    exp = ScaleExpectations(lambda ns, name: (ns, name) in cache, clock=clock)
    key = ("ns", "rc", "")
    exp.expect(key, "p1", Action.DELETE)
    clock.now += 3600
    assert not exp.satisfied(key)
    cache.clear()
    assert exp.satisfied(key)


def test_expectations_cleared_per_cluster() -> None:
    exp = ScaleExpectations(lambda ns, name: False, clock=FakeClock())
    exp.expect(("ns", "rc", "wg"), "p", Action.CREATE)
    exp.expect(("ns", "other", "wg"), "p", Action.CREATE)
    exp.clear_cluster("ns", "rc")
    assert exp.satisfied(("ns", "rc", "wg"))
    assert not exp.satisfied(("ns", "other", "wg"))
