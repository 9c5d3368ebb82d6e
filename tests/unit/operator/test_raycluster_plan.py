"""plan_cluster / plan_pods: scaling, workersToDelete, multi-host slices, suspend, unhealthy Pods (pure)."""

from __future__ import annotations

import itertools
from typing import Any

from ray_operator.features import FeatureGates
from ray_operator.models import RayCluster
from ray_operator.raycluster.plan import (
    ClearWorkersToDelete,
    Create,
    Delete,
    Plan,
    PodSlot,
    plan_cluster,
    pod_slot_labels,
    should_delete_pod,
    suspend_phase,
)
from ray_operator.raycluster.status import SuspendPhase
from rayside.objects import JSON

GATES = FeatureGates()
_names = itertools.count()


def cluster(groups: list[JSON] | None = None, *, status: JSON | None = None, **spec: Any) -> RayCluster:
    template = {"spec": {"containers": [{"name": "ray", "image": "ray"}]}}
    body: JSON = {
        "metadata": {"name": "rc", "namespace": "ns", "generation": 1},
        "spec": {"headGroupSpec": {"template": template}, "workerGroupSpecs": groups or [], **spec},
    }
    if status is not None:
        body["status"] = status
    return RayCluster.model_validate(body)


def group(name: str = "wg", replicas: int = 2, **extra: Any) -> JSON:
    template = {"spec": {"containers": [{"name": "ray", "image": "ray"}]}}
    return {
        "groupName": name,
        "replicas": replicas,
        "minReplicas": 0,
        "maxReplicas": 10,
        "template": template,
        **extra,
    }


def make_pod(slot: PodSlot) -> JSON:
    labels = {"ray.io/cluster": "rc", "ray.io/node-type": "head" if slot.group is None else "worker"}
    labels["ray.io/group"] = "headgroup" if slot.group is None else slot.group
    labels.update(pod_slot_labels(slot))
    return {"kind": "Pod", "metadata": {"generateName": "rc-", "labels": labels}, "spec": {"containers": []}}


def pod(slot: PodSlot, phase: str = "Running", name: str | None = None) -> JSON:
    obj = make_pod(slot)
    obj["metadata"]["name"] = name or f"p{next(_names)}"
    obj["status"] = {"phase": phase}
    return obj


def head() -> JSON:
    return pod(PodSlot(None), name="rc-head-x")


def plan(
    rc: RayCluster,
    pods: list[JSON],
    *,
    gates: FeatureGates = GATES,
    unsatisfied: frozenset[str] = frozenset(),
) -> Plan:
    rand = iter(f"r{i:04d}" for i in itertools.count())
    return plan_cluster(
        rc,
        pods=pods,
        children=[],
        existing=set(),
        gates=gates,
        unsatisfied=unsatisfied,
        make_pod=make_pod,
        rand5=lambda: next(rand),
    )


def creates(p: Plan) -> list[JSON]:
    return [a.obj for a in p.actions if isinstance(a, Create)]


def deletes(p: Plan) -> list[str]:
    return [a.name for a in p.actions if isinstance(a, Delete)]


def test_new_cluster_creates_head_and_workers_with_smallest_indexes() -> None:
    p = plan(cluster([group(replicas=3)]), [])
    made = creates(p)
    assert [o["metadata"]["labels"]["ray.io/node-type"] for o in made] == [
        "head",
        "worker",
        "worker",
        "worker",
    ]
    assert [o["metadata"]["labels"].get("ray.io/worker-group-replica-index") for o in made[1:]] == [
        "0",
        "1",
        "2",
    ]
    assert p.error is None


def test_replicas_are_clamped_to_max() -> None:
    p = plan(cluster([group(replicas=10, maxReplicas=3)]), [head()])
    assert len(creates(p)) == 3


def test_fill_the_gap_in_replica_indexes() -> None:
    pods = [head(), pod(PodSlot("wg", 0)), pod(PodSlot("wg", 2))]
    made = creates(plan(cluster([group(replicas=3)]), pods))
    assert [o["metadata"]["labels"]["ray.io/worker-group-replica-index"] for o in made] == ["1"]


def test_scale_down_without_autoscaler_prefers_pending_then_highest_index() -> None:
    pods = [
        head(),
        pod(PodSlot("wg", 0), name="a"),
        pod(PodSlot("wg", 1), name="b"),
        pod(PodSlot("wg", 2), "Pending", "c"),
    ]
    p = plan(cluster([group(replicas=1)]), pods)
    assert deletes(p) == ["c", "b"]
    assert not creates(p)


def test_scale_down_with_autoscaler_only_deletes_workers_to_delete() -> None:
    pods = [
        head(),
        pod(PodSlot("wg", 0), name="a"),
        pod(PodSlot("wg", 1), name="b"),
        pod(PodSlot("wg", 2), name="c"),
    ]
    rc = cluster([group(replicas=1)], enableInTreeAutoscaling=True)
    assert deletes(plan(rc, pods)) == []
    rc = cluster(
        [group(replicas=1, scaleStrategy={"workersToDelete": ["a", "c"]})], enableInTreeAutoscaling=True
    )
    p = plan(rc, pods)
    assert deletes(p) == ["a", "c"]
    assert not creates(p)
    assert not [a for a in p.actions if isinstance(a, ClearWorkersToDelete)]


def test_workers_to_delete_is_cleared_once_the_pods_are_gone() -> None:
    rc = cluster(
        [group(replicas=1, scaleStrategy={"workersToDelete": ["a", "c"]})], enableInTreeAutoscaling=True
    )
    p = plan(rc, [head(), pod(PodSlot("wg", 1), name="b")])
    assert [a for a in p.actions if isinstance(a, ClearWorkersToDelete)] == [
        ClearWorkersToDelete(0, ("a", "c"))
    ]
    # ...but not while an expectation of the group is outstanding
    p = plan(rc, [head(), pod(PodSlot("wg", 1), name="b")], unsatisfied=frozenset({"wg"}))
    assert not p.actions


def test_workers_to_delete_without_autoscaler_replaces_the_pod() -> None:
    rc = cluster([group(replicas=2, scaleStrategy={"workersToDelete": ["a"]})])
    p = plan(rc, [head(), pod(PodSlot("wg", 0), name="a"), pod(PodSlot("wg", 1), name="b")])
    assert deletes(p) == ["a"]
    assert [o["metadata"]["labels"]["ray.io/worker-group-replica-index"] for o in creates(p)] == ["0"]


def test_failed_worker_is_deleted_and_nothing_created_this_pass() -> None:
    p = plan(
        cluster([group(replicas=2)]), [head(), pod(PodSlot("wg", 0), "Failed", "bad"), pod(PodSlot("wg", 1))]
    )
    assert deletes(p) == ["bad"]
    assert not creates(p)
    assert p.error


def test_should_delete_pod_rules() -> None:
    running = {"metadata": {}, "spec": {"containers": [{"name": "ray"}], "restartPolicy": "Never"}}
    terminated = {
        "phase": "Running",
        "containerStatuses": [{"name": "ray", "state": {"terminated": {"exitCode": 1}}}],
    }
    assert should_delete_pod({**running, "status": terminated})
    always = {**running, "spec": {**running["spec"], "restartPolicy": "Always"}, "status": terminated}
    assert not should_delete_pod(always)
    assert should_delete_pod({"metadata": {}, "status": {"phase": "Succeeded"}})
    assert not should_delete_pod({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Failed"}})


def test_unsatisfied_group_is_skipped() -> None:
    p = plan(cluster([group(replicas=2)]), [head()], unsatisfied=frozenset({"wg"}))
    assert p.actions == []
    p = plan(cluster([group(replicas=2)]), [], unsatisfied=frozenset({""}))
    assert [o["metadata"]["labels"]["ray.io/node-type"] for o in creates(p)] == ["worker", "worker"]


def test_two_heads_is_an_error() -> None:
    p = plan(cluster([group()]), [head(), pod(PodSlot(None), name="h2")])
    assert p.error and "2 head pods" in p.error
    assert not p.actions


def test_multi_host_creates_whole_slices() -> None:
    p = plan(cluster([group("tpu", replicas=2, numOfHosts=4)]), [head()])
    made = creates(p)
    assert len(made) == 8
    labels = [o["metadata"]["labels"] for o in made]
    assert {lab["ray.io/worker-group-replica-name"] for lab in labels} == {"tpu-r0000", "tpu-r0001"}
    assert sorted(lab["ray.io/replica-host-index"] for lab in labels) == [
        "0",
        "0",
        "1",
        "1",
        "2",
        "2",
        "3",
        "3",
    ]
    assert sorted(lab["ray.io/worker-group-replica-index"] for lab in labels) == ["0"] * 4 + ["1"] * 4


def slice_pods(replica: str, index: int, n: int = 4, phase: str = "Running") -> list[JSON]:
    return [pod(PodSlot("tpu", index, replica, h), phase, f"{replica}-{h}") for h in range(n)]


def test_multi_host_incomplete_slice_is_deleted_whole_then_recreated() -> None:
    rc = cluster([group("tpu", replicas=2, numOfHosts=4)])
    pods = [head(), *slice_pods("tpu-a", 0), *slice_pods("tpu-b", 1, n=3)]
    p = plan(rc, pods)
    assert sorted(deletes(p)) == ["tpu-b-0", "tpu-b-1", "tpu-b-2"]
    assert not creates(p)
    p = plan(rc, [head(), *slice_pods("tpu-a", 0)])
    labels = [o["metadata"]["labels"] for o in creates(p)]
    assert len(labels) == 4
    assert {lab["ray.io/worker-group-replica-index"] for lab in labels} == {"1"}


def test_multi_host_failed_pod_replaces_its_slice_and_scale_down_is_whole() -> None:
    rc = cluster([group("tpu", replicas=1, numOfHosts=2)])
    pods = [head(), *slice_pods("tpu-a", 0, 2), *slice_pods("tpu-b", 1, 2)]
    pods[1]["status"]["phase"] = "Failed"
    assert sorted(deletes(plan(rc, pods))) == ["tpu-a-0", "tpu-a-1"]
    pods[1]["status"]["phase"] = "Running"
    assert sorted(deletes(plan(rc, pods))) == ["tpu-b-0", "tpu-b-1"]


def test_multi_host_without_indexing_gate_counts_pods() -> None:
    gates = FeatureGates.parse("RayMultiHostIndexing=false")
    p = plan(cluster([group("tpu", replicas=1, numOfHosts=2)]), [head()], gates=gates)
    made = creates(p)
    assert len(made) == 2
    assert "ray.io/worker-group-replica-index" not in made[0]["metadata"]["labels"]


def test_suspend_is_atomic() -> None:
    pods = [head(), pod(PodSlot("wg", 0), name="w")]
    rc = cluster([group()], suspend=True)
    assert suspend_phase(rc, None, GATES) is SuspendPhase.SUSPENDING
    p = plan(rc, pods)
    assert sorted(deletes(p)) == ["rc-head-x", "w"]
    suspending = {"conditions": [{"type": "RayClusterSuspending", "status": "True"}]}
    resumed = cluster([group()], suspend=False, status=suspending)
    assert suspend_phase(resumed, suspending, GATES) is SuspendPhase.SUSPENDING
    suspended = {"conditions": [{"type": "RayClusterSuspended", "status": "True"}]}
    assert suspend_phase(cluster([group()], suspend=True), suspended, GATES) is SuspendPhase.SUSPENDED
    assert plan(cluster([group()], suspend=True, status=suspended), []).actions == []
    assert suspend_phase(cluster([group()], suspend=False), suspended, GATES) is SuspendPhase.NONE


def test_suspended_group_deletes_only_its_pods() -> None:
    pods = [head(), pod(PodSlot("wg", 0), name="w"), pod(PodSlot("other", 0), name="o")]
    rc = cluster([group(suspend=True), group("other", replicas=1)])
    p = plan(rc, pods)
    assert deletes(p) == ["w"]
    assert not creates(p)


def test_children_created_only_when_missing() -> None:
    rc = cluster([group(replicas=0)])
    svc = {"kind": "Service", "metadata": {"name": "rc-head-svc"}}
    secret = {"kind": "Secret", "metadata": {"name": "rc"}}
    p = plan_cluster(
        rc,
        pods=[head()],
        children=[secret, svc],
        existing={("Service", "rc-head-svc")},
        gates=GATES,
        unsatisfied=frozenset(),
        make_pod=make_pod,
        rand5=lambda: "x",
    )
    assert creates(p) == [secret]
