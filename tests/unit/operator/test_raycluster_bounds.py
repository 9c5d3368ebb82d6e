"""Bounded passes and failure reporting (pure): the create budget per pass, whole multi-host slices,
the truncated flag, lazy free indexes, and the exception-to-condition text."""

from __future__ import annotations

import itertools
import tracemalloc
from typing import Any

import pytest

from ray_operator.builders import BuildSettings
from ray_operator.builders.raystart import RayStartConflict, SpecValueError, port_param
from ray_operator.raycluster.children import pod_factory
from ray_operator.raycluster.plan import Budget, Create, Delete, Plan, PodSlot, plan_cluster, smallest_free
from ray_operator.raycluster.status import spec_problem
from ray_operator.settings import SettingsError, load_settings
from rayside.quantity import QuantityError
from tests.unit.operator.test_raycluster_plan import GATES, cluster, group, head, make_pod, pod

MAX_INT32 = 2**31 - 1


def chunked(rc: Any, pods: list[dict[str, Any]], max_creates: int) -> Plan:
    rand = iter(f"r{i:04d}" for i in itertools.count())
    return plan_cluster(
        rc,
        pods=pods,
        children=[],
        existing=set(),
        gates=GATES,
        unsatisfied=frozenset(),
        make_pod=make_pod,
        rand5=lambda: next(rand),
        max_creates=max_creates,
    )


def worker_creates(p: Plan) -> list[dict[str, Any]]:
    return [
        a.obj
        for a in p.actions
        if isinstance(a, Create) and a.obj["metadata"]["labels"]["ray.io/node-type"] == "worker"
    ]


# (replicas, numOfHosts, existing workers, max_creates) -> (worker Pods created, truncated)
CASES = [
    (3, 1, 0, 10, 3, False),  # fits: no truncation
    (10, 1, 0, 10, 10, False),  # exactly the budget
    (11, 1, 0, 10, 10, True),  # one too many
    (100000, 1, 0, 100, 100, True),
    (MAX_INT32, 1, 0, 100, 100, True),  # the largest legal value: still one chunk
    (100000, 1, 300, 100, 100, True),  # later chunks too
    (3, 4, 0, 10, 8, True),  # slices of 4 in a budget of 10: two whole slices
    (2, 4, 0, 8, 8, False),
    (1, 16, 0, 10, 16, False),  # a slice larger than the chunk goes out alone
    (MAX_INT32, 4, 0, 10, 8, True),
]


@pytest.mark.parametrize(("replicas", "hosts", "existing", "budget", "made", "truncated"), CASES)
def test_creates_are_capped_per_pass(
    replicas: int, hosts: int, existing: int, budget: int, made: int, truncated: bool
) -> None:
    extra: dict[str, Any] = {"maxReplicas": MAX_INT32}
    if hosts > 1:
        extra["numOfHosts"] = hosts
    rc = cluster([group(replicas=replicas, **extra)])
    pods = [head()]
    for i in range(existing):
        pods.append(pod(PodSlot("wg", replica_index=i)))
    p = chunked(rc, pods, budget)
    workers = worker_creates(p)
    assert len(workers) == made
    assert p.truncated is truncated
    if hosts > 1:  # whole slices only: every replica name has numOfHosts Pods
        by_replica: dict[str, int] = {}
        for obj in workers:
            name = obj["metadata"]["labels"]["ray.io/worker-group-replica-name"]
            by_replica[name] = by_replica.get(name, 0) + 1
        assert set(by_replica.values()) == {hosts}
    else:  # indexes continue after the existing Pods
        indexes = [int(o["metadata"]["labels"]["ray.io/worker-group-replica-index"]) for o in workers]
        assert indexes == list(range(existing, existing + made))


def test_head_counts_against_the_budget() -> None:
    p = chunked(cluster([group(replicas=5, maxReplicas=10)]), [], 3)
    assert sum(isinstance(a, Create) for a in p.actions) == 3
    assert len(worker_creates(p)) == 2
    assert p.truncated


def test_scale_down_creates_nothing() -> None:
    rc = cluster([group(replicas=1, maxReplicas=MAX_INT32)])
    pods = [head(), *(pod(PodSlot("wg", replica_index=i)) for i in range(5))]
    p = chunked(rc, pods, 10)
    assert not p.truncated and not worker_creates(p)


def test_planning_memory_does_not_grow_with_replicas() -> None:
    rc = cluster([group(replicas=MAX_INT32, maxReplicas=MAX_INT32)])
    tracemalloc.start()
    try:
        chunked(rc, [head()], 50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20


def test_budget_take() -> None:
    budget = Budget(10)
    assert budget.take(3) == 3 and not budget.truncated
    assert budget.take(3, unit=4) == 1 and budget.truncated  # 7 left: one slice of 4
    assert budget.take(1) == 1 and budget.left == 2
    fresh = Budget(2)
    assert fresh.take(5, unit=8) == 1 and fresh.truncated and fresh.left == 0  # a lone big slice
    assert Budget(0).take(1) == 0
    deletes = Budget(10, 5)
    assert deletes.cut([1, 2, 3]) == [1, 2, 3] and not deletes.truncated
    assert deletes.cut(["a", "b"], unit=2) == ["a"] and deletes.truncated and deletes.deletes_left == 0


def test_smallest_free_is_lazy() -> None:
    assert list(smallest_free([0, 2, 5], 4)) == [1, 3, 4, 6]
    assert list(itertools.islice(smallest_free([], MAX_INT32), 3)) == [0, 1, 2]
    assert list(smallest_free([1], 0)) == []


# -- errors -> condition text -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            SpecValueError("rayStartParams.dashboard-port", "abc", "a port number (1-65535)").at(
                "spec.workerGroupSpecs[0]"
            ),
            'spec.workerGroupSpecs[0].rayStartParams.dashboard-port: "abc" is not a port number (1-65535)',
        ),
        (
            RayStartConflict("rayStartParams['labels'] is not supported"),
            "rayStartParams['labels'] is not supported",
        ),
        (QuantityError("'x' is not a quantity"), "'x' is not a quantity"),
    ],
)
def test_our_errors_keep_their_message(exc: Exception, expected: str) -> None:
    assert spec_problem(exc) == expected


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("invalid literal for int() with base 10: 'abc'"),
        TypeError("'NoneType' object is not subscriptable"),
        AttributeError("'str' object has no attribute 'get'"),
        KeyError("containers"),
    ],
)
def test_python_errors_do_not_leak_their_text(exc: Exception) -> None:
    text = spec_problem(exc)
    assert str(exc) not in text and "int()" not in text and "NoneType" not in text
    assert type(exc).__name__ in text


@pytest.mark.parametrize(
    ("value", "ok"),
    [("8265", True), (" 52365 ", True), ("abc", False), ("0", False), ("70000", False), ("٣", False)],
)
def test_port_param(value: str, ok: bool) -> None:
    if ok:
        assert port_param({"dashboard-port": value}, "dashboard-port", 1) == int(value)
    else:
        with pytest.raises(SpecValueError, match=r"rayStartParams.dashboard-port: .* is not a port number"):
            port_param({"dashboard-port": value}, "dashboard-port", 1)
    assert port_param({}, "dashboard-port", 7) == 7


def test_pod_factory_names_the_group_path() -> None:
    rc = cluster(
        [group("a"), group("b", rayStartParams={"dashboard-agent-listen-port": "abc"})],
    )
    make = pod_factory(rc, settings=BuildSettings())
    make(PodSlot("a"))
    with pytest.raises(SpecValueError) as info:
        make(PodSlot("b"))
    assert str(info.value) == (
        "spec.workerGroupSpecs[1].rayStartParams.dashboard-agent-listen-port: "
        '"abc" is not a port number (1-65535)'
    )


def test_max_creates_flag() -> None:
    assert load_settings([]).max_creates_per_pass == 500
    assert load_settings(["--max-creates-per-pass", "50"]).max_creates_per_pass == 50
    with pytest.raises(SettingsError, match="--max-creates-per-pass 0 must be greater than 0"):
        load_settings(["--max-creates-per-pass", "0"])


def deletes_of(p: Plan) -> list[str]:
    return [a.name for a in p.actions if isinstance(a, Delete)]


def test_scale_down_deletes_one_chunk_per_pass() -> None:
    rc = cluster([group(replicas=1, maxReplicas=MAX_INT32)])
    pods = [head(), *(pod(PodSlot("wg", replica_index=i)) for i in range(50))]
    p = chunked(rc, pods, 10)
    assert len(deletes_of(p)) == 10 and p.truncated
    p = chunked(rc, pods[:12], 10)  # 11 workers, 1 wanted: exactly the chunk
    assert len(deletes_of(p)) == 10 and not p.truncated


def test_multi_host_scale_down_deletes_whole_slices_per_chunk() -> None:
    rc = cluster([group(replicas=0, numOfHosts=4, maxReplicas=MAX_INT32)])
    pods = [head()]
    for r in range(5):
        for h in range(4):
            pods.append(pod(PodSlot("wg", replica_index=r, replica_name=f"wg-r{r}", host_index=h)))
    p = chunked(rc, pods, 10)  # 2 whole slices fit in 10
    assert len(deletes_of(p)) == 8 and p.truncated


def test_suspend_deletes_one_chunk_per_pass() -> None:
    rc = cluster([group(replicas=3, maxReplicas=MAX_INT32)], suspend=True)
    pods = [head(), *(pod(PodSlot("wg", replica_index=i)) for i in range(30))]
    p = chunked(rc, pods, 10)
    assert len(deletes_of(p)) == 10 and p.truncated
