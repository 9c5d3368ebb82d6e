"""The Event correlator as a table: a sequence of Events (at clock times) → create or patch, name, count."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from rayside.eventcorrelator import COMBINED_PREFIX, LRU, EventCorrelator
from rayside.events import event_body
from rayside.objects import JSON

CLUSTER: JSON = {
    "apiVersion": "ray.io/v1",
    "kind": "RayCluster",
    "metadata": {"name": "rc", "namespace": "ns", "uid": "u1", "resourceVersion": "1"},
}
OTHER: JSON = {**CLUSTER, "metadata": {**CLUSTER["metadata"], "name": "other", "uid": "u2"}}


@dataclass(frozen=True)
class Ev:
    """One input row: at time `t`, an Event (`obj`, type, reason, message) → expected outcome."""

    t: float
    reason: str
    message: str
    action: str  # "create" | "patch"
    name_of: int  # the row whose Event name is used (its own index for a create)
    count: int
    obj: JSON = field(default_factory=lambda: CLUSTER)
    type_: str = "Warning"
    component: str = "rayside-operator"
    combined: bool = False


FAIL = "FailedToCreateWorkerPod"
TABLE: dict[str, list[Ev]] = {
    "a new event is created": [Ev(0, FAIL, "m", "create", 0, 1)],
    "the same event again patches the count": [
        Ev(0, FAIL, "m", "create", 0, 1),
        Ev(1, FAIL, "m", "patch", 0, 2),
        Ev(2, FAIL, "m", "patch", 0, 3),
    ],
    "another message is another event": [
        Ev(0, FAIL, "m1", "create", 0, 1),
        Ev(1, FAIL, "m2", "create", 1, 1),
        Ev(2, FAIL, "m1", "patch", 0, 2),
    ],
    "another reason, type, object or source is another event": [
        Ev(0, FAIL, "m", "create", 0, 1),
        Ev(1, "Other", "m", "create", 1, 1),
        Ev(2, FAIL, "m", "create", 2, 1, type_="Normal"),
        Ev(3, FAIL, "m", "create", 3, 1, obj=OTHER),
        Ev(4, FAIL, "m", "create", 4, 1, component="localkube"),
        Ev(5, FAIL, "m", "patch", 0, 2),
    ],
    "a new resourceVersion of the object is the same event": [
        Ev(0, FAIL, "m", "create", 0, 1),
        Ev(
            1,
            FAIL,
            "m",
            "patch",
            0,
            2,
            obj={**CLUSTER, "metadata": {**CLUSTER["metadata"], "resourceVersion": "9"}},
        ),
    ],
    "the 10th distinct similar message within the window is combined, and so are later ones": [
        *[Ev(i, FAIL, f"pod {i} failed", "create", i, 1) for i in range(9)],
        Ev(9, FAIL, "pod 9 failed", "create", 9, 1, combined=True),
        Ev(10, FAIL, "pod 10 failed", "patch", 9, 2, combined=True),
        Ev(11, FAIL, "pod 11 failed", "patch", 9, 3, combined=True),
    ],
    "similar messages further apart than the window start over": [
        *[Ev(i * 601, FAIL, f"pod {i} failed", "create", i, 1) for i in range(12)],
    ],
}


def _body(ev: Ev, now: float) -> JSON:
    return event_body(
        ev.obj, type_=ev.type_, reason=ev.reason, message=ev.message, component=ev.component, now=now
    )


@pytest.mark.parametrize("rows", TABLE.values(), ids=list(TABLE))
def test_correlation_table(rows: list[Ev]) -> None:
    clock = [0.0]
    correlator = EventCorrelator(clock=lambda: clock[0])
    names: list[str] = []
    for i, ev in enumerate(rows):
        clock[0] = ev.t
        body = _body(ev, 1_700_000_000 + ev.t)
        decision = correlator.correlate(body)
        names.append(decision.name)
        assert ("patch" if decision.patch else "create") == ev.action, (i, ev)
        assert decision.name == names[ev.name_of], (i, ev)
        assert decision.count == ev.count, (i, ev)
        assert decision.body["metadata"]["name"] == decision.name
        want = COMBINED_PREFIX + ev.message if ev.combined else ev.message
        assert decision.body["message"] == want
        if decision.patch is not None:
            assert decision.patch == {
                "count": ev.count,
                "lastTimestamp": body["lastTimestamp"],
                "message": want,
            }
            first = rows[ev.name_of]
            assert decision.body["firstTimestamp"] == _body(first, 1_700_000_000 + first.t)["firstTimestamp"]


def test_memory_is_bounded_and_forgets_the_least_recently_used() -> None:
    correlator = EventCorrelator(clock=lambda: 0.0, max_entries=3)
    msgs = ["a", "b", "c", "d"]
    first = {m: correlator.correlate(_body(Ev(0, m, "x", "", 0, 0), 0)) for m in msgs}  # 4 keys, 3 kept
    assert correlator.correlate(_body(Ev(0, "a", "x", "", 0, 0), 0)).patch is None  # "a" was forgotten
    again = correlator.correlate(_body(Ev(0, "d", "x", "", 0, 0), 0))
    assert again.patch is not None and again.name == first["d"].name

    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recently used
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c"), len(lru)) == (1, None, 3, 2)
