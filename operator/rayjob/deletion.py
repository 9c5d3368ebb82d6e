"""What to delete after a RayJob finished, and when (operator-spec §4.8): a pure planner.

`plan_deletion(spec, status, finished_at, now, gates)` returns the deletion actions due in this pass and
the seconds until the next one falls due. Precedence:

1. A RayJob that runs on a selected cluster (`clusterSelector`) never deletes that cluster or its workers
   (`DeleteCluster`/`DeleteWorkers` are dropped). Unlike KubeRay, which skips all deletion in that mode,
   a `DeleteSelf` rule still applies: validation accepts it, and the RayJob owns no cluster to take along.
2. Gate `RayJobDeletionPolicy` on and `deletionStrategy` set:
   * `deletionRules`: a rule matches when its condition names the RayJob's `jobStatus` or its
     `jobDeploymentStatus`; it falls due at `finished_at + ttlSeconds` (due *at* that instant). Stages run in
     TTL order, each once: a stage counts as done when the world shows its effect (DeleteWorkers: cluster
     gone or every worker group suspended; DeleteCluster: cluster gone; DeleteNone: always). Among the due,
     not yet done stages only the most destructive one runs (DeleteSelf > DeleteCluster > DeleteWorkers),
     so a controller that was down past several TTLs jumps straight to the strongest stage and never goes
     back to a weaker one (a deleted cluster makes DeleteWorkers done).
   * legacy `onSuccess`/`onFailure`: the policy for SUCCEEDED or FAILED (nothing for STOPPED or an
     infrastructure failure with no Ray status), due at `finished_at + ttlSecondsAfterFinished`.
   With the gate off the strategy is ignored (validation already rejects it) and rule 3 applies.
3. No (effective) strategy: `shutdownAfterJobFinishes` deletes the cluster at
   `finished_at + ttlSecondsAfterFinished`; the submitter Job stays for its logs. With the operator
   option `delete_self_after_finish` (KubeRay's `DELETE_RAYJOB_CR_AFTER_JOB_FINISHES`) the RayJob itself
   goes instead.
4. Otherwise nothing.

Kueue (kubernetes-sigs/kueue#3994): Kueue requires `shutdownAfterJobFinishes: true` on every queued RayJob
and returns the whole quota as soon as `jobDeploymentStatus` is Complete/Failed. Delayed or partial
cleanup rules (DeleteWorkers, or any TTL > 0) would then keep Pods running after their quota was given
back, so rules do **not** combine with `shutdownAfterJobFinishes`: validation keeps rejecting the pair,
and if both ever reach this planner the `shutdownAfterJobFinishes` + TTL behaviour wins and the rules
are ignored (the quota-safe reading: the cluster goes when Kueue believes it went).

Nothing here does I/O or reads a clock; the reconciler executes the returned actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ray_operator.features import RAY_JOB_DELETION_POLICY, FeatureGates
from ray_operator.models.rayjob import RayJobSpec


class Policy(StrEnum):
    """A deletion policy; the value order of `STRENGTH` is how destructive it is."""

    DELETE_NONE = "DeleteNone"
    DELETE_WORKERS = "DeleteWorkers"
    DELETE_CLUSTER = "DeleteCluster"
    DELETE_SELF = "DeleteSelf"


STRENGTH: dict[Policy, int] = {
    Policy.DELETE_NONE: 0,
    Policy.DELETE_WORKERS: 1,
    Policy.DELETE_CLUSTER: 2,
    Policy.DELETE_SELF: 3,
}


@dataclass(frozen=True)
class DeleteWorkers:
    """Suspend every worker group of the RayJob's cluster (head stays for debugging)."""

    cluster: str


@dataclass(frozen=True)
class DeleteCluster:
    """Delete the RayJob's cluster (the submitter Job is kept for its logs)."""

    cluster: str


@dataclass(frozen=True)
class DeleteSelf:
    """Delete the RayJob itself (garbage collection removes what it owns)."""


DeletionAction = DeleteWorkers | DeleteCluster | DeleteSelf


@dataclass(frozen=True)
class Rule:
    """One `deletionRules[]` entry: policy, exactly one condition value, TTL in seconds."""

    policy: Policy
    job_status: str | None = None
    deployment_status: str | None = None
    ttl_seconds: int = 0

    def matches(self, job_status: str, deployment_status: str) -> bool:
        """Whether the condition names the RayJob's current jobStatus or jobDeploymentStatus."""
        if self.job_status is not None:
            return self.job_status == job_status
        return self.deployment_status is not None and self.deployment_status == deployment_status


@dataclass(frozen=True)
class DeletionSpec:
    """The spec fields the planner reads (see `from_spec`)."""

    rules: tuple[Rule, ...] | None = None
    on_success: Policy | None = None
    on_failure: Policy | None = None
    shutdown_after_job_finishes: bool = False
    ttl_seconds_after_finished: int = 0
    uses_cluster_selector: bool = False
    delete_self_after_finish: bool = False

    @property
    def has_strategy(self) -> bool:
        """Whether `deletionStrategy` is set (rules or legacy pair)."""
        return self.rules is not None or self.on_success is not None or self.on_failure is not None

    @classmethod
    def from_spec(cls, spec: RayJobSpec, *, delete_self_after_finish: bool = False) -> DeletionSpec:
        """Read a typed `RayJob.spec`; `delete_self_after_finish` is the operator-wide option."""
        strategy = spec.deletion_strategy
        rules: tuple[Rule, ...] | None = None
        on_success = on_failure = None
        if strategy is not None:
            if strategy.deletion_rules is not None:
                rules = tuple(
                    Rule(
                        policy=Policy(rule.policy),
                        job_status=rule.condition.job_status,
                        deployment_status=rule.condition.job_deployment_status,
                        ttl_seconds=rule.condition.ttl_seconds or 0,
                    )
                    for rule in strategy.deletion_rules
                )
            if strategy.on_success is not None and strategy.on_success.policy:
                on_success = Policy(strategy.on_success.policy)
            if strategy.on_failure is not None and strategy.on_failure.policy:
                on_failure = Policy(strategy.on_failure.policy)
        return cls(
            rules=rules,
            on_success=on_success,
            on_failure=on_failure,
            shutdown_after_job_finishes=bool(spec.shutdown_after_job_finishes),
            ttl_seconds_after_finished=spec.ttl_seconds_after_finished or 0,
            uses_cluster_selector=bool(spec.cluster_selector),
            delete_self_after_finish=delete_self_after_finish,
        )


@dataclass(frozen=True)
class DeletionStatus:
    """What the planner needs to know about the finished RayJob and its cluster."""

    job_status: str
    deployment_status: str
    cluster_name: str
    cluster_exists: bool = True
    """False once the cluster is gone or being deleted."""
    workers_suspended: bool = False
    """True when every worker group of the cluster has `suspend: true`."""


Plan = tuple[tuple[DeletionAction, ...], float | None]
"""(actions due now, seconds until the next stage falls due or None)."""


def _done(policy: Policy, status: DeletionStatus) -> bool:
    if policy is Policy.DELETE_NONE:
        return True
    if policy is Policy.DELETE_WORKERS:
        return not status.cluster_exists or status.workers_suspended
    if policy is Policy.DELETE_CLUSTER:
        return not status.cluster_exists
    return False


def _action(policy: Policy, status: DeletionStatus) -> tuple[DeletionAction, ...]:
    if policy is Policy.DELETE_WORKERS:
        return (DeleteWorkers(status.cluster_name),)
    if policy is Policy.DELETE_CLUSTER:
        return (DeleteCluster(status.cluster_name),)
    if policy is Policy.DELETE_SELF:
        return (DeleteSelf(),)
    return ()


def _allowed(policy: Policy, spec: DeletionSpec) -> bool:
    """A selected cluster is not ours: never delete it or its workers."""
    return not (spec.uses_cluster_selector and policy in (Policy.DELETE_WORKERS, Policy.DELETE_CLUSTER))


def _single(policy: Policy | None, ttl: int, spec: DeletionSpec, status: DeletionStatus, age: float) -> Plan:
    """One policy at one TTL (legacy strategy and shutdownAfterJobFinishes)."""
    if policy is None or not _allowed(policy, spec) or _done(policy, status):
        return (), None
    if age < ttl:
        return (), ttl - age
    return _action(policy, status), None


def _plan_rules(rules: tuple[Rule, ...], spec: DeletionSpec, status: DeletionStatus, age: float) -> Plan:
    matching = [
        rule
        for rule in rules
        if rule.matches(status.job_status, status.deployment_status) and _allowed(rule.policy, spec)
    ]
    due = [rule for rule in matching if age >= rule.ttl_seconds]
    pending = [rule.ttl_seconds - age for rule in matching if age < rule.ttl_seconds]
    todo = [rule for rule in due if not _done(rule.policy, status)]
    requeue = min(pending) if pending else None
    if not todo:
        return (), requeue
    strongest = max(todo, key=lambda rule: STRENGTH[rule.policy])
    return _action(strongest.policy, status), requeue


def plan_deletion(
    spec: DeletionSpec,
    status: DeletionStatus,
    finished_at: datetime,
    now: datetime,
    gates: FeatureGates,
) -> Plan:
    """Deletion actions due at `now` for a RayJob that finished (endTime) at `finished_at`."""
    age = (now - finished_at).total_seconds()
    strategy_on = gates.enabled(RAY_JOB_DELETION_POLICY) and spec.has_strategy
    if strategy_on and not (spec.rules is not None and spec.shutdown_after_job_finishes):
        if spec.rules is not None:
            return _plan_rules(spec.rules, spec, status, age)
        policy = {"SUCCEEDED": spec.on_success, "FAILED": spec.on_failure}.get(status.job_status)
        return _single(policy, spec.ttl_seconds_after_finished, spec, status, age)
    if spec.shutdown_after_job_finishes:
        policy = Policy.DELETE_SELF if spec.delete_self_after_finish else Policy.DELETE_CLUSTER
        return _single(policy, spec.ttl_seconds_after_finished, spec, status, age)
    return (), None
