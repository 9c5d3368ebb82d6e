"""plan_deletion: deletionRules stages, legacy onSuccess/onFailure, shutdownAfterJobFinishes, the gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from ray_operator.features import FeatureGates
from ray_operator.models.rayjob import RayJobSpec
from ray_operator.rayjob.deletion import (
    DeleteCluster,
    DeleteSelf,
    DeleteWorkers,
    DeletionAction,
    DeletionSpec,
    DeletionStatus,
    Policy,
    Rule,
    plan_deletion,
)

END = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
GATES = FeatureGates()
GATE_OFF = FeatureGates.parse("RayJobDeletionPolicy=false")
CLUSTER = "job-abcde"

W, C, S, N = Policy.DELETE_WORKERS, Policy.DELETE_CLUSTER, Policy.DELETE_SELF, Policy.DELETE_NONE
STAGED = (
    Rule(W, job_status="FAILED", ttl_seconds=30),
    Rule(C, job_status="FAILED", ttl_seconds=60),
    Rule(S, job_status="FAILED", ttl_seconds=90),
)


@dataclass(frozen=True)
class Row:
    spec: DeletionSpec
    age: float
    expect: tuple[DeletionAction, ...]
    requeue: float | None
    job_status: str = "FAILED"
    deployment: str = "Failed"
    cluster_exists: bool = True
    workers_suspended: bool = False
    gates: FeatureGates = field(default=GATES)


def rules(*items: Rule) -> DeletionSpec:
    return DeletionSpec(rules=items)


ROWS = {
    # --- one rule per policy
    "rule-DeleteWorkers-due": Row(rules(Rule(W, job_status="FAILED")), 0, (DeleteWorkers(CLUSTER),), None),
    "rule-DeleteCluster-due": Row(rules(Rule(C, job_status="FAILED")), 0, (DeleteCluster(CLUSTER),), None),
    "rule-DeleteSelf-due": Row(rules(Rule(S, job_status="FAILED")), 0, (DeleteSelf(),), None),
    "rule-DeleteNone-is-a-no-op": Row(rules(Rule(N, job_status="FAILED")), 0, (), None),
    # --- conditions
    "rule-jobStatus-mismatch-ignored": Row(rules(Rule(C, job_status="SUCCEEDED")), 99, (), None),
    "rule-jobDeploymentStatus-Failed-matches-infra-failure": Row(
        rules(Rule(C, deployment_status="Failed")), 0, (DeleteCluster(CLUSTER),), None, job_status=""
    ),
    "rule-jobDeploymentStatus-Failed-not-on-Complete": Row(
        rules(Rule(C, deployment_status="Failed")), 0, (), None, job_status="SUCCEEDED", deployment="Complete"
    ),
    "rule-STOPPED-matches-nothing": Row(
        rules(Rule(C, job_status="SUCCEEDED"), Rule(C, job_status="FAILED")),
        10,
        (),
        None,
        job_status="STOPPED",
        deployment="Complete",
    ),
    # --- TTL edges
    "ttl-just-before-due-requeues-remainder": Row(
        rules(Rule(C, job_status="FAILED", ttl_seconds=10)), 9.5, (), 0.5
    ),
    "ttl-exactly-at-due-fires": Row(
        rules(Rule(C, job_status="FAILED", ttl_seconds=10)), 10, (DeleteCluster(CLUSTER),), None
    ),
    "ttl-after-due-fires": Row(
        rules(Rule(C, job_status="FAILED", ttl_seconds=10)), 10.5, (DeleteCluster(CLUSTER),), None
    ),
    # --- staged execution
    "stages-before-first": Row(rules(*STAGED), 29, (), 1),
    "stages-first-DeleteWorkers": Row(rules(*STAGED), 30, (DeleteWorkers(CLUSTER),), 30),
    "stages-DeleteWorkers-done-waits-for-next": Row(rules(*STAGED), 45, (), 15, workers_suspended=True),
    "stages-second-DeleteCluster": Row(
        rules(*STAGED), 60, (DeleteCluster(CLUSTER),), 30, workers_suspended=True
    ),
    "stages-cluster-gone-no-going-back-to-workers": Row(rules(*STAGED), 75, (), 15, cluster_exists=False),
    "stages-third-DeleteSelf": Row(rules(*STAGED), 90, (DeleteSelf(),), None, cluster_exists=False),
    "stages-overdue-runs-most-destructive-only": Row(rules(*STAGED), 1000, (DeleteSelf(),), None),
    "stages-overdue-cluster-before-self": Row(rules(*STAGED[:2]), 1000, (DeleteCluster(CLUSTER),), None),
    "stages-listed-out-of-order-same-result": Row(
        rules(*reversed(STAGED)), 30, (DeleteWorkers(CLUSTER),), 30
    ),
    "stages-DeleteNone-then-DeleteCluster": Row(
        rules(Rule(N, job_status="FAILED"), Rule(C, job_status="FAILED", ttl_seconds=5)), 1, (), 4
    ),
    # --- clusterSelector: never touch a selected cluster
    "selector-DeleteCluster-dropped": Row(
        DeletionSpec(rules=(Rule(C, job_status="FAILED"),), uses_cluster_selector=True), 0, (), None
    ),
    "selector-DeleteWorkers-dropped": Row(
        DeletionSpec(rules=(Rule(W, job_status="FAILED"),), uses_cluster_selector=True), 0, (), None
    ),
    "selector-DeleteSelf-kept": Row(
        DeletionSpec(rules=(Rule(S, job_status="FAILED"),), uses_cluster_selector=True),
        0,
        (DeleteSelf(),),
        None,
    ),
    "selector-shutdownAfterJobFinishes-keeps-cluster": Row(
        DeletionSpec(shutdown_after_job_finishes=True, uses_cluster_selector=True), 0, (), None
    ),
    # --- legacy onSuccess / onFailure
    "legacy-onSuccess-DeleteCluster": Row(
        DeletionSpec(on_success=C, on_failure=N), 0, (DeleteCluster(CLUSTER),), None, job_status="SUCCEEDED"
    ),
    "legacy-onFailure-DeleteWorkers": Row(
        DeletionSpec(on_success=C, on_failure=W), 0, (DeleteWorkers(CLUSTER),), None
    ),
    "legacy-onFailure-DeleteSelf": Row(DeletionSpec(on_success=N, on_failure=S), 0, (DeleteSelf(),), None),
    "legacy-DeleteNone": Row(DeletionSpec(on_success=C, on_failure=N), 0, (), None),
    "legacy-STOPPED-nothing": Row(
        DeletionSpec(on_success=C, on_failure=C), 0, (), None, job_status="STOPPED"
    ),
    "legacy-ttl-before": Row(
        DeletionSpec(
            on_success=C, on_failure=C, shutdown_after_job_finishes=True, ttl_seconds_after_finished=20
        ),
        19,
        (),
        1,
    ),
    "legacy-ttl-at": Row(
        DeletionSpec(
            on_success=C, on_failure=C, shutdown_after_job_finishes=True, ttl_seconds_after_finished=20
        ),
        20,
        (DeleteCluster(CLUSTER),),
        None,
    ),
    "legacy-already-done": Row(DeletionSpec(on_success=C, on_failure=C), 0, (), None, cluster_exists=False),
    # --- shutdownAfterJobFinishes (no strategy)
    "shutdown-ttl-just-before": Row(
        DeletionSpec(shutdown_after_job_finishes=True, ttl_seconds_after_finished=10), 9.5, (), 0.5
    ),
    "shutdown-ttl-at": Row(
        DeletionSpec(shutdown_after_job_finishes=True, ttl_seconds_after_finished=10),
        10,
        (DeleteCluster(CLUSTER),),
        None,
    ),
    "shutdown-ttl-after": Row(
        DeletionSpec(shutdown_after_job_finishes=True, ttl_seconds_after_finished=10),
        11,
        (DeleteCluster(CLUSTER),),
        None,
    ),
    "shutdown-cluster-already-gone": Row(
        DeletionSpec(shutdown_after_job_finishes=True), 5, (), None, cluster_exists=False
    ),
    "shutdown-delete-self-option": Row(
        DeletionSpec(shutdown_after_job_finishes=True, delete_self_after_finish=True),
        0,
        (DeleteSelf(),),
        None,
    ),
    "no-strategy-no-shutdown-keeps-everything": Row(DeletionSpec(), 1000, (), None),
    # --- gate and Kueue decision
    "gate-off-ignores-rules": Row(rules(Rule(C, job_status="FAILED")), 0, (), None, gates=GATE_OFF),
    "gate-off-falls-back-to-shutdown": Row(
        DeletionSpec(rules=(Rule(W, job_status="FAILED"),), shutdown_after_job_finishes=True),
        0,
        (DeleteCluster(CLUSTER),),
        None,
        gates=GATE_OFF,
    ),
    "kueue-rules-plus-shutdown-shutdown-wins": Row(
        DeletionSpec(
            rules=(Rule(W, job_status="FAILED"), Rule(S, job_status="FAILED", ttl_seconds=60)),
            shutdown_after_job_finishes=True,
        ),
        0,
        (DeleteCluster(CLUSTER),),
        None,
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_plan_deletion(row: Row) -> None:
    status = DeletionStatus(
        job_status=row.job_status,
        deployment_status=row.deployment,
        cluster_name=CLUSTER,
        cluster_exists=row.cluster_exists,
        workers_suspended=row.workers_suspended,
    )
    actions, requeue = plan_deletion(row.spec, status, END, END + timedelta(seconds=row.age), row.gates)
    assert actions == row.expect
    assert requeue == row.requeue


def test_from_spec_reads_rules_and_legacy() -> None:
    spec = RayJobSpec.model_validate(
        {
            "clusterSelector": {"ray.io/cluster": "shared"},
            "deletionStrategy": {
                "deletionRules": [
                    {"policy": "DeleteSelf", "condition": {"jobStatus": "SUCCEEDED", "ttlSeconds": 5}},
                    {"policy": "DeleteNone", "condition": {"jobDeploymentStatus": "Failed"}},
                ]
            },
        }
    )
    assert DeletionSpec.from_spec(spec) == DeletionSpec(
        rules=(Rule(S, job_status="SUCCEEDED", ttl_seconds=5), Rule(N, deployment_status="Failed")),
        uses_cluster_selector=True,
    )
    legacy = RayJobSpec.model_validate(
        {
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 7,
            "deletionStrategy": {
                "onSuccess": {"policy": "DeleteCluster"},
                "onFailure": {"policy": "DeleteNone"},
            },
        }
    )
    assert DeletionSpec.from_spec(legacy, delete_self_after_finish=True) == DeletionSpec(
        on_success=C,
        on_failure=N,
        shutdown_after_job_finishes=True,
        ttl_seconds_after_finished=7,
        delete_self_after_finish=True,
    )
