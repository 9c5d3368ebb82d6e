"""Pure planning for one RayCluster pass: what to create and delete.

`plan_cluster()` looks at the cluster, the Pods and children the cache shows, the desired children the
builders produced and the expectation state, and returns a `Plan`: an ordered list of actions, the
suspend phase (which drives status), and an optional error that stops the pass. Nothing here does I/O;
the `Applier` performs the plan in one batch, stopping at the first failed action. Randomness (multi-host
replica names) comes from the injected `rand5`.

Work per pass is bounded: at most `max_creates` Pods are planned (and built) per pass, and as many
deleted, multi-host replicas only whole; when more are due the plan is `truncated` and the reconciler
requeues the cluster at the back of the queue, so the next chunk is planned from the then-current spec
and cache. Nothing here allocates in proportion to `replicas`, only to the Pods that exist and the chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from ray_operator.builders.resources import clamp_replicas, hosts
from ray_operator.constants import (
    ANN_DISABLE_PROVISIONED_HEAD_RESTART,
    LABEL_GROUP,
    LABEL_HOST_INDEX,
    LABEL_NODE_TYPE,
    LABEL_REPLICA_INDEX,
    LABEL_REPLICA_NAME,
    NODE_TYPE_HEAD,
    NODE_TYPE_WORKER,
)
from ray_operator.features import RAY_CLUSTER_STATUS_CONDITIONS, RAY_MULTI_HOST_INDEXING, FeatureGates
from ray_operator.models import RayCluster, WorkerGroupSpec
from ray_operator.raycluster.status import (
    PROVISIONED,
    SUSPENDED,
    SUSPENDING,
    SuspendPhase,
    is_true,
)
from rayside.objects import JSON, is_deleting, labels_of, name_of

HEAD_KEY = ""  # expectations / group key of the head
T = TypeVar("T")


@dataclass(frozen=True)
class PodSlot:
    """Where a new Pod goes: group None = head; indexes only for workers with multi-host indexing on."""

    group: str | None
    replica_index: int | None = None
    replica_name: str | None = None
    host_index: int | None = None


@dataclass(frozen=True)
class Create:
    obj: JSON
    group: str | None = None  # Pods: expectation group ("" = head); None for other kinds
    marker: str | None = None
    tolerate_exists: bool = True


@dataclass(frozen=True)
class Delete:
    kind: str
    name: str
    group: str | None = None
    marker: str | None = None
    expect: bool = True  # remember it in the scale expectations (False on the deletion path)


@dataclass(frozen=True)
class ClearWorkersToDelete:
    """JSON-patch `scaleStrategy.workersToDelete` of group `index` to [] if it still equals `expected`."""

    index: int
    expected: tuple[str, ...]


Action = Create | Delete | ClearWorkersToDelete


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    phase: SuspendPhase = SuspendPhase.NONE
    error: str | None = None  # stops the pass after the actions; status still written
    marker: str | None = None
    truncated: bool = False  # more Pods are missing than this pass may create: requeue at once


@dataclass
class Budget:
    """Pod creates (`left`) and deletes (`deletes_left`) this pass may still plan, one chunk each;
    `truncated` once one was held back."""

    left: int
    deletes_left: int | None = None  # None: as many as `left` starts with
    used: int = 0
    deletes_used: int = 0
    truncated: bool = False

    def __post_init__(self) -> None:
        if self.deletes_left is None:
            self.deletes_left = self.left

    def take(self, wanted: int, unit: int = 1) -> int:
        """How many of `wanted` units of `unit` Pods each (a multi-host replica is one unit) may be
        created. A unit larger than the whole chunk still goes out alone in a fresh budget."""
        units = _fit(wanted, unit, self.left, self.used)
        self.used += units * unit
        self.left = max(0, self.left - units * unit)
        self.truncated |= units < wanted
        return units

    def cut(self, items: Sequence[T], unit: int = 1) -> list[T]:
        """The leading `items` (each a unit of `unit` Pods) that may be deleted this pass."""
        left = self.deletes_left or 0
        units = _fit(len(items), unit, left, self.deletes_used)
        self.deletes_used += units * unit
        self.deletes_left = max(0, left - units * unit)
        self.truncated |= units < len(items)
        return list(items[:units])


def _fit(wanted: int, unit: int, left: int, used: int) -> int:
    units = min(wanted, left // unit)
    if units == 0 and wanted > 0 and used == 0 and left > 0:
        units = 1
    return units


DEFAULT_MAX_CREATES = 500  # per pass, like the ReplicaSet controller's burst


PodFactory = Callable[[PodSlot], JSON]


# -- small helpers ----------------------------------------------------------------------------------------
def terminating(pod: JSON) -> bool:
    return is_deleting(pod)


def should_delete_pod(pod: JSON) -> bool:
    """Failed/Succeeded Pods, and Running Pods whose Ray container ended with restartPolicy Never."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    if terminating(pod):
        return False
    if phase in ("Failed", "Succeeded"):
        return True
    spec = pod.get("spec") or {}
    if phase != "Running" or spec.get("restartPolicy") != "Never":
        return False
    containers = spec.get("containers") or []
    ray_name = containers[0].get("name") if containers else None
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") == ray_name and (cs.get("state") or {}).get("terminated"):
            return True
    return False


def suspend_phase(cluster: RayCluster, status: JSON | None, gates: FeatureGates) -> SuspendPhase:
    """Atomic suspend: once Suspending, keep deleting Pods even if `spec.suspend` flips back."""
    suspend = bool(cluster.spec.suspend)
    if not gates.enabled(RAY_CLUSTER_STATUS_CONDITIONS):
        return SuspendPhase.SUSPENDING if suspend else SuspendPhase.NONE
    if is_true(status, SUSPENDING):
        return SuspendPhase.SUSPENDING
    if is_true(status, SUSPENDED):
        return SuspendPhase.SUSPENDED if suspend else SuspendPhase.NONE
    return SuspendPhase.SUSPENDING if suspend else SuspendPhase.NONE


def smallest_free(used: Iterable[int], count: int) -> Iterator[int]:
    """The `count` smallest non-negative integers not in `used`, lazily (memory: O(len(used)))."""
    taken, found, i = set(used), 0, 0
    while found < count:
        if i not in taken:
            found += 1
            yield i
        i += 1


def _int_label(pod: JSON, key: str) -> int | None:
    value = labels_of(pod).get(key)
    return int(value) if value is not None and value.isdigit() else None


# -- head -------------------------------------------------------------------------------------------------
def _plan_head(
    cluster: RayCluster,
    heads: list[JSON],
    status: JSON | None,
    make_pod: PodFactory,
    plan: Plan,
    budget: Budget,
) -> None:
    if len(heads) > 1:
        plan.error = f"{len(heads)} head pods found for RayCluster {cluster.metadata.get('name')}; expected 1"
        return
    if len(heads) == 1:
        if should_delete_pod(heads[0]) and budget.cut([heads[0]]):
            plan.actions.append(Delete("Pod", name_of(heads[0]), HEAD_KEY, "FailedDeleteHeadPod"))
            plan.error = f"head Pod {name_of(heads[0])} is unhealthy; deleted it"
        return
    annotations = cluster.metadata.get("annotations") or {}
    if is_true(status, PROVISIONED) and annotations.get(ANN_DISABLE_PROVISIONED_HEAD_RESTART) == "true":
        return
    if budget.take(1):
        plan.actions.append(Create(make_pod(PodSlot(None)), HEAD_KEY, "FailedCreateHeadPod"))


# -- single-host worker groups ----------------------------------------------------------------------------
def _plan_group(
    cluster: RayCluster,
    group: WorkerGroupSpec,
    pods: list[JSON],
    *,
    indexing: bool,
    random_delete: bool,
    make_pod: PodFactory,
    plan: Plan,
    budget: Budget,
) -> bool:
    """Plan one numOfHosts=1 group; returns False when the pass must stop after this group."""
    name = group.group_name
    unhealthy = [p for p in pods if should_delete_pod(p)]
    if unhealthy:
        plan.actions += [
            Delete("Pod", name_of(p), name, "FailedDeleteWorkerPod") for p in budget.cut(unhealthy)
        ]
        plan.error = f"deleted {len(unhealthy)} unhealthy worker Pod(s) of group {name}"
        return False
    to_delete = set((group.scale_strategy.workers_to_delete if group.scale_strategy else None) or [])
    doomed = [p for p in pods if name_of(p) in to_delete]
    plan.actions += [Delete("Pod", name_of(p), name, "FailedDeleteWorkerPod") for p in budget.cut(doomed)]
    remaining = [p for p in pods if name_of(p) not in to_delete]
    diff = clamp_replicas(group) * hosts(group) - len(remaining)
    if diff > 0:
        free = smallest_free(
            (i for p in remaining if (i := _int_label(p, LABEL_REPLICA_INDEX)) is not None), budget.take(diff)
        )
        for index in free:
            slot = PodSlot(name, replica_index=index) if indexing else PodSlot(name)
            plan.actions.append(Create(make_pod(slot), name, "FailedCreateWorkerPod"))
    elif diff < 0 and (random_delete or not cluster.spec.enable_in_tree_autoscaling):
        # Prefer Pods that are not Running, then the highest replica indexes.
        order = sorted(
            remaining,
            key=lambda p: (
                (p.get("status") or {}).get("phase") == "Running",
                -(_int_label(p, LABEL_REPLICA_INDEX) or 0),
            ),
        )
        plan.actions += [
            Delete("Pod", name_of(p), name, "FailedDeleteWorkerPod") for p in budget.cut(order[:-diff])
        ]
    return True


# -- multi-host worker groups -----------------------------------------------------------------------------
def _plan_multi_host(
    cluster: RayCluster,
    group: WorkerGroupSpec,
    pods: list[JSON],
    *,
    make_pod: PodFactory,
    rand5: Callable[[], str],
    random_delete: bool,
    plan: Plan,
    budget: Budget,
) -> bool:
    """Replicas of numOfHosts Pods are created and deleted whole."""
    name, n = group.group_name, hosts(group)
    replicas: dict[str, list[JSON]] = {}
    for pod in pods:
        replicas.setdefault(labels_of(pod).get(LABEL_REPLICA_NAME, ""), []).append(pod)

    def drop(replica: str) -> None:
        plan.actions.extend(
            Delete("Pod", name_of(p), name, "FailedDeleteWorkerPod") for p in replicas.pop(replica)
        )

    broken = [r for r, ps in replicas.items() if len(ps) < n or any(should_delete_pod(p) for p in ps)]
    to_delete = set((group.scale_strategy.workers_to_delete if group.scale_strategy else None) or [])
    listed = [r for r, ps in replicas.items() if r not in broken and any(name_of(p) in to_delete for p in ps)]
    for replica in budget.cut(broken + listed, n):
        drop(replica)
    if broken or listed:
        plan.error = (
            f"deleted {len(broken) + len(listed)} incomplete/unhealthy/requested replica(s) of group {name}"
        )
        return False
    want = clamp_replicas(group)
    have = sorted(replicas, key=lambda r: min(_int_label(p, LABEL_REPLICA_INDEX) or 0 for p in replicas[r]))
    if want > len(have):
        used = (
            i for ps in replicas.values() for p in ps if (i := _int_label(p, LABEL_REPLICA_INDEX)) is not None
        )
        for index in smallest_free(used, budget.take(want - len(have), n)):
            replica_name = f"{name}-{rand5()}"
            for host in range(n):
                slot = PodSlot(name, replica_index=index, replica_name=replica_name, host_index=host)
                plan.actions.append(Create(make_pod(slot), name, "FailedCreateWorkerPod"))
    elif want < len(have) and (random_delete or not cluster.spec.enable_in_tree_autoscaling):
        for replica in budget.cut(have[want:], n):
            drop(replica)
    return True


def _clear_workers_to_delete(cluster: RayCluster, pods_by_group: dict[str, list[JSON]], plan: Plan) -> None:
    """Clear `workersToDelete` of groups none of whose listed Pods exist any more."""
    for index, group in enumerate(cluster.spec.worker_group_specs or []):
        listed = tuple((group.scale_strategy.workers_to_delete if group.scale_strategy else None) or [])
        present = {name_of(p) for p in pods_by_group.get(group.group_name, [])}
        if listed and not present.intersection(listed):
            plan.actions.append(ClearWorkersToDelete(index, listed))


# -- the whole pass ---------------------------------------------------------------------------------------
def plan_pods(
    cluster: RayCluster,
    status: JSON | None,
    pods: list[JSON],
    *,
    gates: FeatureGates,
    unsatisfied: frozenset[str],
    make_pod: PodFactory,
    rand5: Callable[[], str],
    plan: Plan,
    random_delete: bool = False,
    max_creates: int = DEFAULT_MAX_CREATES,
) -> None:
    """Pod work of one pass (suspend, head, each worker group), appended to `plan`; at most
    `max_creates` Pod creates (`plan.truncated` when more were due)."""
    budget = Budget(max_creates)
    try:
        _plan_pods(cluster, status, pods, gates, unsatisfied, make_pod, rand5, plan, random_delete, budget)
    finally:
        plan.truncated = budget.truncated


def _plan_pods(
    cluster: RayCluster,
    status: JSON | None,
    pods: list[JSON],
    gates: FeatureGates,
    unsatisfied: frozenset[str],
    make_pod: PodFactory,
    rand5: Callable[[], str],
    plan: Plan,
    random_delete: bool,
    budget: Budget,
) -> None:
    plan.phase = suspend_phase(cluster, status, gates)
    if plan.phase is SuspendPhase.SUSPENDING:
        plan.actions += budget.cut(_delete_all(pods, None, "FailedDeleteAllPods"))
        return
    if plan.phase is SuspendPhase.SUSPENDED:
        return
    heads = [p for p in pods if labels_of(p).get(LABEL_NODE_TYPE) == NODE_TYPE_HEAD]
    if HEAD_KEY not in unsatisfied:
        _plan_head(cluster, heads, status, make_pod, plan, budget)
        if plan.error:
            return
    by_group: dict[str, list[JSON]] = {}
    for pod in pods:
        if labels_of(pod).get(LABEL_NODE_TYPE) == NODE_TYPE_WORKER:
            by_group.setdefault(labels_of(pod).get(LABEL_GROUP, ""), []).append(pod)
    indexing = gates.enabled(RAY_MULTI_HOST_INDEXING)
    for group in cluster.spec.worker_group_specs or []:
        if group.group_name in unsatisfied:
            continue
        group_pods = by_group.get(group.group_name, [])
        worker = _Worker(indexing, make_pod, rand5, random_delete, plan, budget)
        if not _plan_worker_group(cluster, group, group_pods, worker):
            return
    if not unsatisfied:
        _clear_workers_to_delete(cluster, by_group, plan)


def _delete_all(pods: list[JSON], group: str | None, reason: str) -> list[Delete]:
    """Delete every pod that is not already terminating (each labelled with its own group if none given)."""
    return [
        Delete("Pod", name_of(p), group or labels_of(p).get(LABEL_GROUP), reason)
        for p in pods
        if not terminating(p)
    ]


@dataclass(frozen=True)
class _Worker:
    """What planning a worker group needs besides the group and its Pods."""

    indexing: bool
    make_pod: PodFactory
    rand5: Callable[[], str]
    random_delete: bool
    plan: Plan
    budget: Budget


def _plan_worker_group(
    cluster: RayCluster, group: WorkerGroupSpec, group_pods: list[JSON], w: _Worker
) -> bool:
    """One worker group: suspended, multi-host slices, or plain replicas. False stops the pass."""
    if group.suspend:
        w.plan.actions += w.budget.cut(_delete_all(group_pods, group.group_name, "FailedDeleteWorkerPod"))
        return True
    if hosts(group) > 1 and w.indexing:
        return _plan_multi_host(
            cluster,
            group,
            group_pods,
            make_pod=w.make_pod,
            rand5=w.rand5,
            random_delete=w.random_delete,
            plan=w.plan,
            budget=w.budget,
        )
    return _plan_group(
        cluster,
        group,
        group_pods,
        indexing=w.indexing,
        random_delete=w.random_delete,
        make_pod=w.make_pod,
        plan=w.plan,
        budget=w.budget,
    )


def plan_children(desired: list[JSON], existing: set[tuple[str, str]], plan: Plan) -> None:
    """Create every desired child (Secret, Services, RBAC, PodGroups...) whose (kind, name) is absent."""
    for obj in desired:
        if (str(obj.get("kind")), name_of(obj)) not in existing:
            plan.actions.append(Create(obj))


def plan_cluster(
    cluster: RayCluster,
    *,
    pods: list[JSON],
    children: list[JSON],
    existing: set[tuple[str, str]],
    gates: FeatureGates,
    unsatisfied: frozenset[str],
    make_pod: PodFactory,
    rand5: Callable[[], str],
    random_delete: bool = False,
    max_creates: int = DEFAULT_MAX_CREATES,
) -> Plan:
    """The whole pass for a valid, operator-managed cluster: children first, then at most `max_creates`
    Pod creates (`Plan.truncated` when more are due)."""
    plan = Plan()
    status = cluster.status.to_dict() if cluster.status else None
    plan_children(children, existing, plan)
    plan_pods(
        cluster,
        status,
        pods,
        gates=gates,
        unsatisfied=unsatisfied,
        make_pod=make_pod,
        rand5=rand5,
        plan=plan,
        random_delete=random_delete,
        max_creates=max_creates,
    )
    return plan


def pod_slot_labels(slot: PodSlot) -> dict[str, str]:
    """The multi-host indexing labels a Pod in `slot` carries (workers only)."""
    labels: dict[str, str] = {}
    if slot.replica_index is not None:
        labels[LABEL_REPLICA_INDEX] = str(slot.replica_index)
    if slot.replica_name is not None:
        labels[LABEL_REPLICA_NAME] = slot.replica_name
    if slot.host_index is not None:
        labels[LABEL_HOST_INDEX] = str(slot.host_index)
    return labels


__all__ = [
    "DEFAULT_MAX_CREATES",
    "SUSPENDED",
    "Action",
    "Budget",
    "ClearWorkersToDelete",
    "Create",
    "Delete",
    "Plan",
    "PodSlot",
    "plan_cluster",
    "plan_pods",
    "should_delete_pod",
    "smallest_free",
    "suspend_phase",
]
