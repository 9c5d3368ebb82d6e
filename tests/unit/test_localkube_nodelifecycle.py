"""Node lifecycle decisions (pure): Ready=Unknown after the Lease lapses, Ready again on renewal."""

from __future__ import annotations

from typing import Any

from localkube.controllers.nodelifecycle import (
    UNKNOWN_MESSAGE,
    UNKNOWN_REASON,
    parse_time,
    plan_node_conditions,
    rfc3339,
)

T0 = 1_800_000_000.0


def _node(
    name: str, ready: str = "True", reason: str = "KubeletReady", heartbeat: float = T0
) -> dict[str, Any]:
    def cond(ctype: str, status: str, why: str) -> dict[str, Any]:
        stamp = rfc3339(heartbeat)
        return {
            "type": ctype,
            "status": status,
            "reason": why,
            "message": "m",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }

    return {
        "metadata": {"name": name, "resourceVersion": "7"},
        "status": {
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                cond("Ready", ready, reason),
            ]
        },
    }


def _lease(name: str, renewed: float, ns: str = "kube-node-lease") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"renewTime": rfc3339(renewed)}}


def test_fresh_lease_keeps_the_node_ready() -> None:
    assert plan_node_conditions([_node("n")], [_lease("n", T0 + 30)], T0 + 60, grace=40) == []


def test_lapsed_lease_marks_ready_and_pressure_unknown() -> None:
    [patch] = plan_node_conditions([_node("n")], [_lease("n", T0 + 10)], T0 + 51, grace=40)
    assert (patch.node, patch.resource_version, patch.ready) == ("n", "7", "Unknown")
    by_type = {c["type"]: c for c in patch.conditions}
    assert {c["status"] for c in by_type.values()} == {"Unknown"}
    ready = by_type["Ready"]
    assert (ready["reason"], ready["message"]) == (UNKNOWN_REASON, UNKNOWN_MESSAGE)
    assert ready["lastTransitionTime"] == rfc3339(T0 + 51)
    assert ready["lastHeartbeatTime"] == rfc3339(T0)  # the last heartbeat stays what it was


def test_a_recent_heartbeat_counts_like_a_lease_renewal() -> None:
    assert plan_node_conditions([_node("n", heartbeat=T0 + 50)], [_lease("n", T0)], T0 + 60, grace=40) == []


def test_already_unknown_is_not_patched_again() -> None:
    node = _node("n", ready="Unknown", reason=UNKNOWN_REASON)
    assert plan_node_conditions([node], [_lease("n", T0)], T0 + 100, grace=40) == []


def test_renewed_lease_makes_an_unknown_node_ready_again() -> None:
    node = _node("n", ready="Unknown", reason=UNKNOWN_REASON)
    [patch] = plan_node_conditions([node], [_lease("n", T0 + 99)], T0 + 100, grace=40)
    ready = next(c for c in patch.conditions if c["type"] == "Ready")
    assert (patch.ready, ready["status"], ready["reason"]) == ("True", "True", "KubeletReady")


def test_unknown_set_by_someone_else_is_left_alone() -> None:
    node = _node("n", ready="Unknown", reason="SomethingElse")
    assert plan_node_conditions([node], [_lease("n", T0 + 99)], T0 + 100, grace=40) == []


def test_leases_of_other_namespaces_do_not_count() -> None:
    patches = plan_node_conditions([_node("n")], [_lease("n", T0 + 99, ns="default")], T0 + 100, grace=40)
    assert [p.ready for p in patches] == ["Unknown"]


def test_parse_time_accepts_rfc3339_variants() -> None:
    assert parse_time("2027-01-15T08:00:00Z") == parse_time("2027-01-15T08:00:00+00:00")
    assert parse_time("2027-01-15T08:00:00.500000Z") == parse_time("2027-01-15T08:00:00Z") + 0.5  # type: ignore[operator]
    assert parse_time("yesterday") is None and parse_time(None) is None
