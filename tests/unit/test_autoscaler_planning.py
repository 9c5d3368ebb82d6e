"""Scale planning (autoscaler_provider.planning) for the acceptance scenarios,
as a table of (RayCluster, pods, request) → exact JSON patch, errors and skips.

Rows list the writes; every patch also carries, before each written group's writes, `test` ops on that
group's groupName, replicas, bounds and workersToDelete as read (`with_guards`; spelled out in
`test_guard_ops_literal`). Where the reference autoscaler is documented as lossy, the row expects the fixed
behaviour and says so: partial slice requests round up (5), a slice is deleted whole and counted once
(6, 6b), a slice with a busy host is not deleted (6c), and scaleStrategy is written with `add` (valid
whether or not the key exists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from autoscaler_provider.planning import Request, patch_ops, plan_scale, read_cluster
from rayside.objects import JSON


def group(
    name: str, replicas: int | None = 0, lo: int = 0, hi: int = 5, hosts: int = 1, **extra: Any
) -> JSON:
    spec: JSON = {"groupName": name, "minReplicas": lo, "maxReplicas": hi, "template": {}}
    if replicas is not None:
        spec["replicas"] = replicas
    if hosts != 1:
        spec["numOfHosts"] = hosts
    if "delete" in extra:
        spec["scaleStrategy"] = {"workersToDelete": extra.pop("delete")}
    spec.update(extra)
    return spec


def cluster(*groups: JSON) -> JSON:
    return {
        "metadata": {"name": "rc", "namespace": "ns", "resourceVersion": "7"},
        "spec": {"headGroupSpec": {}, "workerGroupSpecs": list(groups)},
    }


def pod(name: str, grp: str, slice_name: str = "", running: bool = True, deleting: bool = False) -> JSON:
    labels = {"ray.io/cluster": "rc", "ray.io/node-type": "worker", "ray.io/group": grp}
    if slice_name:
        labels["ray.io/worker-group-replica-name"] = slice_name
    meta: JSON = {"name": name, "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    state: JSON = {"running": {}} if running else {"waiting": {}}
    return {"metadata": meta, "status": {"containerStatuses": [{"state": state}]}}


HEAD = {
    "metadata": {"name": "rc-head-x", "labels": {"ray.io/node-type": "head", "ray.io/group": "headgroup"}},
    "status": {},
}


def slice_pods(prefix: str, grp: str = "tpu", hosts: int = 4) -> list[JSON]:
    return [pod(f"{prefix}{i}", grp, f"{grp}-{prefix}") for i in range(hosts)]


def rep(index: int, value: int, op: str = "replace") -> JSON:
    return {"op": op, "path": f"/spec/workerGroupSpecs/{index}/replicas", "value": value}


def dels(index: int, names: list[str], sub: bool = True) -> JSON:
    if sub:
        return {
            "op": "add",
            "path": f"/spec/workerGroupSpecs/{index}/scaleStrategy/workersToDelete",
            "value": names,
        }
    return {
        "op": "add",
        "path": f"/spec/workerGroupSpecs/{index}/scaleStrategy",
        "value": {"workersToDelete": names},
    }


@dataclass
class Row:
    cr: JSON
    pods: list[JSON]
    request: Request
    ops: list[JSON]
    rejected: dict[str, int] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    surplus: dict[str, int] = field(default_factory=dict)


TPU = {"hosts": 4}
LABELS = [group("small", 0), group("accelerator", 0), group("spot", 0)]
ROWS: dict[str, Row] = {
    "4 tpu slice scale-up: 4 hosts -> one slice": Row(
        cluster(group("tpu", 0, hi=2, **TPU)), [HEAD], Request(launch={"tpu": 4}), [rep(0, 1)]
    ),
    "5 partial slice request rounds up (reference: no patch)": Row(
        cluster(group("tpu", 1, hi=3, **TPU)),
        [HEAD, *slice_pods("a")],
        Request(launch={"tpu": 1}),
        [rep(0, 2)],
        surplus={"tpu": 3},
    ),
    "5 over-max request: capped, 4 hosts rejected": Row(
        cluster(group("tpu", 1, hi=3, **TPU)),
        [HEAD, *slice_pods("a")],
        Request(launch={"tpu": 12}),
        [rep(0, 3)],
        rejected={"tpu": 4},
    ),
    "5b surplus from a round-up is claimed before another slice": Row(
        cluster(group("tpu", 2, hi=3, **TPU)),
        [HEAD, *slice_pods("a")],
        Request(launch={"tpu": 2}, surplus={"tpu": 3}),
        [],
        surplus={"tpu": 1},
    ),
    "5c surplus is dropped once the group's pods all exist": Row(
        cluster(group("tpu", 2, hi=3, **TPU)),
        [HEAD, *slice_pods("a"), *slice_pods("b")],
        Request(launch={"tpu": 2}, surplus={"tpu": 3}),
        [rep(0, 3)],
        surplus={"tpu": 2},
    ),
    "6 one idle host: its whole slice listed, replicas -1 (reference lists one host)": Row(
        cluster(group("tpu", 2, **TPU)),
        [HEAD, *slice_pods("a"), *slice_pods("b")],
        Request(terminate=["a2"]),
        [rep(0, 1), dels(0, ["a0", "a1", "a2", "a3"], sub=False)],
    ),
    "6b idle hosts in two slices: replicas -2 (reference: -1, deleting both)": Row(
        cluster(group("tpu", 2, **TPU)),
        [HEAD, *slice_pods("a"), *slice_pods("b")],
        Request(terminate=["a2", "b1", "a0"]),
        [rep(0, 0), dels(0, ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"], sub=False)],
    ),
    "6c busy hosts in the slice: nothing deleted (reference deletes the busy hosts)": Row(
        cluster(group("tpu", 2, **TPU)),
        [HEAD, *slice_pods("a"), *slice_pods("b")],
        Request(terminate=["a2"], busy={"a0", "a1", "a3", "b0"}),
        [],
        skipped={"a2": "Ray reports it or a host of its slice busy"},
    ),
    "7 pending-deletes gate: nothing planned": Row(
        cluster(group("tpu", 0, **TPU, delete=["a2"]), group("cpu", 0)),
        [HEAD, pod("a2", "tpu", "tpu-a")],
        Request(launch={"tpu": 4, "cpu": 1}),
        [],
        blocked=["tpu"],
    ),
    "7 after the listed pod got a deletionTimestamp: launch and clear": Row(
        cluster(group("tpu", 0, **TPU, delete=["a2"])),
        [HEAD, pod("a2", "tpu", "tpu-a", deleting=True)],
        Request(launch={"tpu": 4}),
        [rep(0, 1), dels(0, [])],
    ),
    "8 label selector picks accelerator-group (index 1)": Row(
        cluster(*LABELS), [HEAD], Request(launch={"accelerator": 1}), [rep(1, 1)]
    ),
    "8 spot tasks -> spot-group replicas 2 (index 2)": Row(
        cluster(*LABELS), [HEAD], Request(launch={"spot": 2}), [rep(2, 2)]
    ),
    "10 normalisation of every group on any scale call": Row(
        cluster(group("a", 7, hi=5), group("b", 0, lo=2, hi=5), group("c", 1, hi=5)),
        [HEAD, *(pod(f"a{i}", "a") for i in range(5)), pod("c1", "c"), pod("c2", "c", running=False)],
        Request(launch={"c": 1}),
        [rep(0, 5), rep(1, 2), rep(2, 3)],
    ),
    "11 single-host terminate": Row(
        cluster(group("cpu", 3)),
        [HEAD, pod("w1", "cpu"), pod("w2", "cpu"), pod("w3", "cpu")],
        Request(terminate=["w2"]),
        [rep(0, 2), dels(0, ["w2"], sub=False)],
    ),
    "11 replicas lowered by hand: rebuilt from the observed pods": Row(
        cluster(group("cpu", 1)),
        [HEAD, pod("w1", "cpu"), pod("w2", "cpu"), pod("w3", "cpu")],
        Request(terminate=["w3"]),
        [rep(0, 2), dels(0, ["w3"], sub=False)],
    ),
    "12 head and ghost: no deletes": Row(
        cluster(group("cpu", 1)),
        [HEAD, pod("w1", "cpu")],
        Request(terminate=["rc-head-x", "ghost"]),
        [],
        skipped={"rc-head-x": "the head is never terminated", "ghost": "no such live pod"},
    ),
    "12 already listed (and gone) is skipped; the finished list is cleared": Row(
        cluster(group("cpu", 1, delete=["w0"])),
        [HEAD, pod("w1", "cpu")],
        Request(terminate=["w0"]),
        [dels(0, [])],
        skipped={"w0": "no such live pod"},
    ),
    "12 busy single-host pod is never terminated": Row(
        cluster(group("cpu", 2)),
        [HEAD, pod("w1", "cpu"), pod("w2", "cpu")],
        Request(terminate=["w1", "w2"], busy={"w1"}),
        [rep(0, 1), dels(0, ["w2"], sub=False)],
        skipped={"w1": "Ray reports it or a host of its slice busy"},
    ),
    "13 external deletion inside a slice: no request, no patch": Row(
        cluster(group("tpu", 1, **TPU)), [HEAD, *slice_pods("a")[:3]], Request(), []
    ),
    "15 maxReplicas lowered to 0: the slice's 4 hosts terminated": Row(
        cluster(group("tpu", 1, hi=0, **TPU)),
        [HEAD, *slice_pods("a")],
        Request(terminate=["a0", "a1", "a2", "a3"]),
        [rep(0, 0), dels(0, ["a0", "a1", "a2", "a3"], sub=False)],
    ),
    "64-host slice: a capped request of 10 hosts gets a whole slice": Row(
        cluster(group("v6e", 0, hi=2, hosts=64)),
        [HEAD],
        Request(launch={"v6e": 10}),
        [rep(0, 1)],
        surplus={"v6e": 54},
    ),
    "3-host slices: 5 hosts -> 2 slices, 1 surplus": Row(
        cluster(group("odd", 0, hosts=3)),
        [HEAD],
        Request(launch={"odd": 5}),
        [rep(0, 2)],
        surplus={"odd": 1},
    ),
    "absent replicas is added; unknown group rejected": Row(
        cluster(group("cpu", None)),
        [HEAD],
        Request(launch={"cpu": 2, "nope": 1}),
        [rep(0, 2, op="add")],
        rejected={"nope": 1},
    ),
    "pods with other node types and other clusters' groups are ignored": Row(
        cluster(group("cpu", 1)),
        [
            HEAD,
            pod("w1", "cpu"),
            {"metadata": {"name": "x", "labels": {"ray.io/node-type": "redis-cleanup"}}},
        ],
        Request(terminate=["x"]),
        [],
        skipped={"x": "no such live pod"},
    ),
}


def with_guards(cr: JSON, writes: list[JSON]) -> list[JSON]:
    """`writes` with each group's guard inserted before its first write."""
    out: list[JSON] = []
    seen: set[int] = set()
    for op in writes:
        index = int(op["path"].split("/")[3])
        if index not in seen:
            seen.add(index)
            spec = cr["spec"]["workerGroupSpecs"][index]
            base = f"/spec/workerGroupSpecs/{index}"
            out.append({"op": "test", "path": f"{base}/groupName", "value": spec["groupName"]})
            for key in ("replicas", "minReplicas", "maxReplicas", "numOfHosts"):
                if key in spec:
                    out.append({"op": "test", "path": f"{base}/{key}", "value": spec[key]})
            if "workersToDelete" in spec.get("scaleStrategy", {}):
                path = f"{base}/scaleStrategy/workersToDelete"
                out.append({"op": "test", "path": path, "value": spec["scaleStrategy"]["workersToDelete"]})
        out.append(op)
    return out


@pytest.mark.parametrize("name", list(ROWS))
def test_scenario(name: str) -> None:
    row = ROWS[name]
    view = read_cluster(row.cr, row.pods)
    plan = plan_scale(view, row.request)
    assert patch_ops(view, plan) == with_guards(row.cr, row.ops)
    assert plan.rejected == row.rejected
    assert plan.blocked == row.blocked
    assert plan.skipped == row.skipped
    assert plan.surplus == row.surplus


def test_plan_is_pure_and_repeatable() -> None:
    row = ROWS["10 normalisation of every group on any scale call"]
    before = repr(row.cr), repr(row.pods)
    view = read_cluster(row.cr, row.pods)
    assert patch_ops(view, plan_scale(view, row.request)) == patch_ops(view, plan_scale(view, row.request))
    assert (repr(row.cr), repr(row.pods)) == before


def test_gke_replica_index_label_identifies_slices() -> None:
    pods = [
        {"metadata": {"name": f"p{i}", "labels": {"ray.io/node-type": "worker", "ray.io/group": "tpu",
                                                  "replicaIndex": f"tpu-{i // 2}"}}}
        for i in range(4)
    ]  # fmt: skip
    view = read_cluster(cluster(group("tpu", 2, hosts=2)), pods)
    plan = plan_scale(view, Request(terminate=["p3"]))
    assert patch_ops(view, plan)[-2:] == [rep(0, 1), dels(0, ["p2", "p3"], sub=False)]


def test_terminating_below_min_keeps_min() -> None:
    view = read_cluster(cluster(group("cpu", 2, lo=2)), [HEAD, pod("w1", "cpu"), pod("w2", "cpu")])
    plan = plan_scale(view, Request(terminate=["w1"]))
    assert patch_ops(view, plan)[-1:] == [dels(0, ["w1"], sub=False)]
    assert not plan.replicas


def test_guard_ops_literal() -> None:
    """The guard of scenario 7 (group 0 read as replicas 0, workersToDelete [a2]), op by op."""
    row = ROWS["7 after the listed pod got a deletionTimestamp: launch and clear"]
    view = read_cluster(row.cr, row.pods)
    assert patch_ops(view, plan_scale(view, row.request)) == [
        {"op": "test", "path": "/spec/workerGroupSpecs/0/groupName", "value": "tpu"},
        {"op": "test", "path": "/spec/workerGroupSpecs/0/replicas", "value": 0},
        {"op": "test", "path": "/spec/workerGroupSpecs/0/minReplicas", "value": 0},
        {"op": "test", "path": "/spec/workerGroupSpecs/0/maxReplicas", "value": 5},
        {"op": "test", "path": "/spec/workerGroupSpecs/0/numOfHosts", "value": 4},
        {"op": "test", "path": "/spec/workerGroupSpecs/0/scaleStrategy/workersToDelete", "value": ["a2"]},
        {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 1},
        {"op": "add", "path": "/spec/workerGroupSpecs/0/scaleStrategy/workersToDelete", "value": []},
    ]
