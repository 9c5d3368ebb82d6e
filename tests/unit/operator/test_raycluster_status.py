"""compute_status / status_changed: counters, conditions, suspend transitions, write-only-on-change (pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ray_operator.models import RayCluster
from ray_operator.raycluster.status import (
    OK,
    Outcome,
    SuspendPhase,
    compute_status,
    get_condition,
    status_changed,
)
from rayside.objects import JSON
from rayside.quantity import quantity_or_zero

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:01:00Z"


def cluster(replicas: int = 2, **spec: Any) -> RayCluster:
    head_tpl = {
        "spec": {"containers": [{"name": "ray", "resources": {"limits": {"cpu": "1", "memory": "2Gi"}}}]}
    }
    wtpl = {
        "spec": {
            "containers": [{"name": "ray", "resources": {"requests": {"cpu": "500m", "nvidia.com/gpu": 1}}}]
        }
    }
    groups = [{"groupName": "wg", "replicas": replicas, "minReplicas": 1, "maxReplicas": 5, "template": wtpl}]
    body = {
        "metadata": {"name": "rc", "namespace": "ns", "generation": 3},
        "spec": {"headGroupSpec": {"template": head_tpl}, "workerGroupSpecs": groups, **spec},
    }
    return RayCluster.model_validate(body)


def pod(node_type: str, *, phase: str = "Running", ready: str | None = "True", name: str = "p") -> JSON:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    return {
        "metadata": {"name": name, "labels": {"ray.io/node-type": node_type}},
        "status": {"phase": phase, "conditions": conditions, "podIP": "10.0.0.1"},
    }


SERVICE = {
    "metadata": {"name": "rc-head-svc"},
    "spec": {
        "clusterIP": "None",
        "ports": [{"name": "dashboard", "port": 8265, "targetPort": 8265}, {"port": 1}],
    },
}


def status(rc: RayCluster, pods: list[JSON], old: JSON | None = None, **kw: Any) -> JSON:
    return compute_status(
        rc,
        old,
        pods=pods,
        head_service=kw.get("service", SERVICE),
        phase=kw.get("phase", SuspendPhase.NONE),
        outcome=kw.get("outcome", OK),
        now=kw.get("now", NOW),
    )


def test_ready_cluster() -> None:
    s = status(cluster(), [pod("head", name="h"), pod("worker"), pod("worker")])
    assert s["state"] == "ready"
    assert s["readyWorkerReplicas"] == s["availableWorkerReplicas"] == 2
    assert s["desiredWorkerReplicas"] == 2 and s["minWorkerReplicas"] == 1 and s["maxWorkerReplicas"] == 5
    assert s["desiredCPU"] == "2" and s["desiredMemory"] == "2Gi" and s["desiredGPU"] == "2"
    assert s["endpoints"] == {"dashboard": "8265"}
    assert s["head"] == {
        "podIP": "10.0.0.1",
        "podName": "h",
        "serviceIP": "10.0.0.1",
        "serviceName": "rc-head-svc",
    }
    assert s["observedGeneration"] == 3
    assert s["stateTransitionTimes"] == {"ready": NOW}
    head_ready = get_condition(s, "HeadPodReady")
    assert head_ready and head_ready["status"] == "True" and head_ready["reason"] == "HeadPodRunningAndReady"
    prov = get_condition(s, "RayClusterProvisioned")
    assert prov and prov["status"] == "True" and prov["reason"] == "AllPodRunningAndReadyFirstTime"


def test_not_ready_while_missing_pods_or_unready_or_failed_pass() -> None:
    assert "state" not in status(cluster(), [pod("head"), pod("worker")])
    assert "state" not in status(cluster(), [pod("head"), pod("worker"), pod("worker", ready="False")])
    failed = status(cluster(), [pod("head"), pod("worker"), pod("worker")], outcome=Outcome("boom", None))
    assert "state" not in failed
    s = status(cluster(), [])
    cond = get_condition(s, "HeadPodReady")
    assert cond and cond["reason"] == "HeadPodNotFound"
    prov = get_condition(s, "RayClusterProvisioned")
    assert prov and prov["status"] == "False" and prov["reason"] == "RayClusterPodsProvisioning"


def test_state_is_sticky_and_provisioned_never_flips_back() -> None:
    first = status(cluster(), [pod("head"), pod("worker"), pod("worker")])
    later = status(cluster(), [pod("head"), pod("worker")], old=first, now=LATER)
    assert later["state"] == "ready"
    prov = get_condition(later, "RayClusterProvisioned")
    assert prov and prov["status"] == "True" and prov["lastTransitionTime"] == NOW
    assert later["availableWorkerReplicas"] == 1


def test_replica_failure_set_and_removed() -> None:
    s = status(cluster(), [], outcome=Outcome("create failed: quota", "FailedCreateWorkerPod"))
    cond = get_condition(s, "ReplicaFailure")
    assert cond and cond["reason"] == "FailedCreateWorkerPod" and cond["message"] == "create failed: quota"
    kept = status(cluster(), [], old=s, outcome=Outcome("unmarked", None))
    assert get_condition(kept, "ReplicaFailure") is not None
    assert get_condition(status(cluster(), [], old=s), "ReplicaFailure") is None


def test_suspend_transitions() -> None:
    rc = cluster(suspend=True)
    suspending = status(rc, [pod("head")], phase=SuspendPhase.SUSPENDING)
    assert (get_condition(suspending, "RayClusterSuspending") or {})["status"] == "True"
    assert "state" not in suspending
    done = status(rc, [], old=suspending, phase=SuspendPhase.SUSPENDING)
    assert done["state"] == "suspended"
    assert (get_condition(done, "RayClusterSuspending") or {})["status"] == "False"
    assert (get_condition(done, "RayClusterSuspended") or {})["status"] == "True"
    prov = get_condition(done, "RayClusterProvisioned") or {}
    assert prov["status"] == "False" and prov["message"] == "RayCluster has been suspended"
    resumed = status(cluster(), [], old=done, phase=SuspendPhase.NONE)
    assert (get_condition(resumed, "RayClusterSuspended") or {})["status"] == "False"
    assert resumed["state"] == "suspended"  # sticky until ready again


def test_suspended_group_counts_zero() -> None:
    rc = cluster()
    rc.spec.worker_group_specs[0].suspend = True  # type: ignore[index]
    s = status(rc, [pod("head")])
    assert s["desiredWorkerReplicas"] == 0 and s["state"] == "ready"


def test_status_changed_ignores_timestamps_and_resources() -> None:
    a = status(cluster(), [pod("head"), pod("worker"), pod("worker")])
    b = status(cluster(), [pod("head"), pod("worker"), pod("worker")], old=a, now=LATER)
    assert not status_changed(a, b)
    b["desiredCPU"] = "99"
    assert not status_changed(a, b)
    c = status(cluster(), [pod("head"), pod("worker")], old=a, now=LATER)
    assert status_changed(a, c)
    assert status_changed(None, a)


def test_quantity_or_zero_parses_like_the_builders_and_counts_junk_as_zero() -> None:
    assert quantity_or_zero("500m") * 2 == 1
    assert quantity_or_zero("1Gi") == 1024**3
    assert quantity_or_zero(3) == 3
    assert quantity_or_zero("1e3") == 1000
    assert quantity_or_zero("250n") * 4 == Decimal("1e-6")  # the builders' parser knows n and u too
    for junk in ("bogus", "1.2.3", "", None, True, [1]):  # "1.2.3" raised InvalidOperation before
        assert quantity_or_zero(junk) == 0
