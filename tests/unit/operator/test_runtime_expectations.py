"""ScaleExpectations with an injected clock: no sleeping, no I/O."""

from __future__ import annotations

from ray_operator.runtime.expectations import Action, ScaleExpectations


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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
