"""Scale planning for a RayCluster, as pure functions: (CR, pods, request) → what to write to the CR.

The autoscaler never creates or deletes pods; it writes ``spec.workerGroupSpecs[i].replicas`` and
``spec.workerGroupSpecs[i].scaleStrategy.workersToDelete`` and the operator acts on them. This module
decides those two fields; :mod:`autoscaler_provider.provider` reads the cluster and sends the patch.

Rules (pods are the autoscaler's unit, replicas the CR's; a replica is a slice of ``numOfHosts`` pods):

* every group is normalised on every plan: ``replicas`` is raised to ``minReplicas`` and to the slices
  actually observed (a user who lowered ``replicas`` without naming pods), and capped at ``maxReplicas``;
* a launch of ``n`` pods of a multi-host group rounds up to whole slices; the extra hosts become
  ``surplus`` that later launches of the group consume before asking for another slice, until the group's
  pods have all appeared (the surplus is then 0: the autoscaler adopts the extra pods itself);
* a termination removes whole slices: each distinct slice touched (pod label
  ``ray.io/worker-group-replica-name``, else GKE's ``replicaIndex``) lowers ``replicas`` by exactly one and
  lists all its hosts in ``workersToDelete``;
* never the head, never an unknown pod or one already listed, never a pod Ray reports busy, nor any host
  of a slice with a busy host (the whole slice would go);
* while any group's ``workersToDelete`` still names a live pod, nothing is planned at all (the operator
  has not caught up); once they are gone the lists are cleared with the next plan that writes.

The patch is guarded by ``test`` ops on the fields the plan read (each written group's name at its
index, its replica counts, bounds and ``workersToDelete``), so a concurrent edit fails the patch instead
of scaling the wrong group or losing the edit; the provider then re-reads and plans again. Status writes,
which the operator makes all the time, do not invalidate a plan.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from rayside.objects import JSON, meta_of, resource_version_of

# Pod labels the operator sets (defined here so this package needs nothing from the operator).
LABEL_CLUSTER = "ray.io/cluster"
LABEL_NODE_TYPE = "ray.io/node-type"
LABEL_GROUP = "ray.io/group"
LABEL_REPLICA_NAME = "ray.io/worker-group-replica-name"
LABEL_GKE_REPLICA_INDEX = "replicaIndex"
HEAD, WORKER = "head", "worker"
_BOUNDS = ("minReplicas", "maxReplicas", "numOfHosts")


@dataclass(frozen=True)
class Pod:
    name: str
    group: str
    kind: str  # head | worker
    running: bool
    slice: str  # the replica (slice) this pod belongs to; its own name for single-host pods


@dataclass(frozen=True)
class Group:
    index: int
    name: str
    replicas: int | None
    min_replicas: int
    max_replicas: int
    hosts: int
    to_delete: tuple[str, ...]
    has_scale_strategy: bool
    raw_to_delete: list[str] | None = None  # workersToDelete exactly as read (None when absent)
    read: tuple[tuple[str, int], ...] = ()  # minReplicas/maxReplicas/numOfHosts as read, when present


@dataclass(frozen=True)
class Cluster:
    """What one CR read and one pod list say: live Ray pods only (no deletionTimestamp)."""

    resource_version: str
    groups: tuple[Group, ...]
    pods: Mapping[str, Pod]

    def group(self, name: str) -> Group | None:
        return self._groups.get(name)

    def workers(self, group: str) -> list[Pod]:
        return self._workers.get(group, [])

    def slice_hosts(self, pod: Pod) -> list[str]:
        """Names of the live pods in ``pod``'s slice (just ``pod`` for a single-host pod), sorted."""
        return self._slices.get((pod.group, pod.slice), [pod.name])

    @cached_property
    def _groups(self) -> dict[str, Group]:
        return {g.name: g for g in reversed(self.groups)}  # the first of duplicate names wins

    @cached_property
    def _workers(self) -> dict[str, list[Pod]]:
        out: dict[str, list[Pod]] = {}
        for pod in self.pods.values():
            if pod.kind == WORKER:
                out.setdefault(pod.group, []).append(pod)
        return out

    @cached_property
    def _slices(self) -> dict[tuple[str, str], list[str]]:
        out: dict[tuple[str, str], list[str]] = {}
        for group, pods in self._workers.items():
            for pod in pods:
                out.setdefault((group, pod.slice), []).append(pod.name)
        return {key: sorted(names) for key, names in out.items()}


@dataclass(frozen=True)
class Request:
    launch: Mapping[str, int] = field(default_factory=dict)
    terminate: Sequence[str] = ()
    busy: Collection[str] = frozenset()
    surplus: Mapping[str, int] = field(default_factory=dict)


@dataclass
class Plan:
    replicas: dict[str, int] = field(default_factory=dict)  # group → new replicas (changed ones only)
    deletes: dict[str, list[str]] = field(default_factory=dict)  # group → new workersToDelete
    clears: list[str] = field(default_factory=list)  # groups whose finished workersToDelete is emptied
    rejected: dict[str, int] = field(default_factory=dict)  # launched pods not granted (maxReplicas)
    blocked: list[str] = field(default_factory=list)  # groups with pending deletes: nothing was planned
    skipped: dict[str, str] = field(default_factory=dict)  # terminate id → why it was not terminated
    surplus: dict[str, int] = field(default_factory=dict)  # group → launched hosts not yet claimed

    @property
    def writes(self) -> bool:
        return bool(self.replicas or self.deletes or self.clears)


# -- reading ------------------------------------------------------------------------------------------------
def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def read_cluster(raycluster: JSON, pods: Sequence[JSON]) -> Cluster:
    """The planning view of a RayCluster and its pods (pods being deleted count as gone)."""
    return Cluster(resource_version_of(raycluster), read_groups(raycluster), read_pods(pods))


def read_groups(raycluster: JSON) -> tuple[Group, ...]:
    """The worker groups of a RayCluster as read (after a patch only these are read again)."""
    groups = []
    for index, spec in enumerate((raycluster.get("spec") or {}).get("workerGroupSpecs") or []):
        strategy = spec.get("scaleStrategy")
        raw = strategy.get("workersToDelete") if isinstance(strategy, dict) else None
        listed = raw if isinstance(raw, list) else []
        replicas = spec.get("replicas")
        groups.append(
            Group(
                index=index,
                name=str(spec.get("groupName")),
                replicas=replicas if isinstance(replicas, int) else None,
                min_replicas=_int(spec.get("minReplicas"), 0),
                max_replicas=_int(spec.get("maxReplicas"), 2147483647),
                hosts=max(1, _int(spec.get("numOfHosts"), 1)),
                to_delete=tuple(str(n) for n in listed),
                has_scale_strategy=isinstance(strategy, dict),
                raw_to_delete=listed if isinstance(raw, list) else None,
                read=tuple((k, spec[k]) for k in _BOUNDS if isinstance(spec.get(k), int)),
            )
        )
    return tuple(groups)


def read_pods(pods: Sequence[JSON]) -> dict[str, Pod]:
    """Live head and worker pods by name (pods being deleted count as gone)."""
    view: dict[str, Pod] = {}
    for pod in pods:
        meta = meta_of(pod)  # once per pod: this loop runs over every pod on every update
        labels = meta.get("labels") or {}
        kind = labels.get(LABEL_NODE_TYPE)
        if meta.get("deletionTimestamp") or kind not in (HEAD, WORKER):
            continue
        name = str(meta.get("name") or "")
        slice_id = labels.get(LABEL_REPLICA_NAME) or labels.get(LABEL_GKE_REPLICA_INDEX) or name
        view[name] = Pod(name, labels.get(LABEL_GROUP, ""), kind, is_running(pod), slice_id)
    return view


def is_running(pod: JSON) -> bool:
    """The Ray container (the first) is running."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return bool(statuses) and "running" in (statuses[0].get("state") or {})


# -- planning -----------------------------------------------------------------------------------------------
def plan_scale(cluster: Cluster, request: Request) -> Plan:
    """What to write for ``request`` (launch shape in pods, pods to terminate) given ``cluster``."""
    plan = Plan()
    listed = {name for g in cluster.groups for name in g.to_delete}
    plan.blocked = [g.name for g in cluster.groups if any(n in cluster.pods for n in g.to_delete)]
    if plan.blocked:
        plan.surplus = dict(request.surplus)
        return plan
    units: dict[str, int] = {}
    for group in cluster.groups:
        observed = sum(1 for p in cluster.workers(group.name) if p.name not in listed)
        base = max(group.replicas or 0, group.min_replicas, math.ceil(observed / group.hosts))
        units[group.name] = base
        surplus = request.surplus.get(group.name, 0)
        plan.surplus[group.name] = 0 if observed >= base * group.hosts else surplus
    _plan_launches(cluster, request.launch, units, plan)
    _plan_terminations(cluster, request, listed, units, plan)
    for group in cluster.groups:
        target = min(max(units[group.name], group.min_replicas), group.max_replicas)
        if target != group.replicas:
            plan.replicas[group.name] = target
        if group.to_delete and group.name not in plan.deletes:
            plan.clears.append(group.name)
    plan.surplus = {g: n for g, n in plan.surplus.items() if n > 0}
    return plan


def _plan_launches(cluster: Cluster, shape: Mapping[str, int], units: dict[str, int], plan: Plan) -> None:
    for name, count in shape.items():
        group = cluster.group(name)
        if group is None or count <= 0:
            if group is None and count > 0:
                plan.rejected[name] = count
            continue
        claimed = min(plan.surplus.get(name, 0), count)
        plan.surplus[name] = plan.surplus.get(name, 0) - claimed
        need = count - claimed
        if need == 0:
            continue
        room = max(0, group.max_replicas - units[name])
        granted = min(math.ceil(need / group.hosts), room)
        units[name] += granted
        if granted * group.hosts >= need:
            plan.surplus[name] += granted * group.hosts - need
        else:
            plan.rejected[name] = need - granted * group.hosts


def _plan_terminations(
    cluster: Cluster, request: Request, listed: set[str], units: dict[str, int], plan: Plan
) -> None:
    busy = set(request.busy)
    touched: set[tuple[str, str]] = set()  # (group, slice) already removed by this plan
    for name in request.terminate:
        pod = cluster.pods.get(name)
        reason = _skip_reason(cluster, pod, name, listed)
        if pod is not None and reason is None and (pod.group, pod.slice) not in touched:
            hosts = cluster.slice_hosts(pod)
            if any(h in listed for h in hosts):
                reason = "its slice is already being deleted"
            elif any(h in busy for h in hosts):
                reason = "Ray reports it or a host of its slice busy"
            else:
                touched.add((pod.group, pod.slice))
                units[pod.group] = max(0, units[pod.group] - 1)
                plan.deletes.setdefault(pod.group, []).extend(hosts)
        if reason:
            plan.skipped[name] = reason


def _skip_reason(cluster: Cluster, pod: Pod | None, name: str, listed: set[str]) -> str | None:
    if pod is None:
        return "no such live pod"
    if pod.kind == HEAD:
        return "the head is never terminated"
    if cluster.group(pod.group) is None:
        return f"group {pod.group!r} is not in the RayCluster"
    if name in listed:
        return "already in workersToDelete"
    return None


# -- the patch ----------------------------------------------------------------------------------------------
def patch_ops(cluster: Cluster, plan: Plan) -> list[JSON]:
    """The JSON patch for ``plan``; [] when there is nothing to write.

    Optimistic concurrency on exactly what the plan read: before a group's writes, ``test`` ops check its
    ``groupName`` at that index, its ``replicas``, ``minReplicas``, ``maxReplicas``, ``numOfHosts`` and
    ``workersToDelete`` (those present) still hold the values planned from. A concurrent edit of any of
    them fails the whole patch (the provider re-reads and plans again); a status write does not.
    """
    ops: list[JSON] = []
    for group in cluster.groups:
        writes = _group_writes(group, plan)
        if not writes:
            continue
        base = f"/spec/workerGroupSpecs/{group.index}"
        ops.append({"op": "test", "path": f"{base}/groupName", "value": group.name})
        if group.replicas is not None:
            ops.append({"op": "test", "path": f"{base}/replicas", "value": group.replicas})
        ops.extend({"op": "test", "path": f"{base}/{key}", "value": value} for key, value in group.read)
        if group.raw_to_delete is not None:
            path = f"{base}/scaleStrategy/workersToDelete"
            ops.append({"op": "test", "path": path, "value": group.raw_to_delete})
        ops.extend(writes)
    return ops


def _group_writes(group: Group, plan: Plan) -> list[JSON]:
    base = f"/spec/workerGroupSpecs/{group.index}"
    writes: list[JSON] = []
    if group.name in plan.replicas:
        verb = "replace" if group.replicas is not None else "add"
        writes.append({"op": verb, "path": f"{base}/replicas", "value": plan.replicas[group.name]})
    names = plan.deletes.get(group.name, [] if group.name in plan.clears else None)
    if names is not None:
        if group.has_scale_strategy:
            writes.append({"op": "add", "path": f"{base}/scaleStrategy/workersToDelete", "value": names})
        else:
            writes.append({"op": "add", "path": f"{base}/scaleStrategy", "value": {"workersToDelete": names}})
    return writes
