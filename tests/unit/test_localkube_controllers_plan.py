"""Pure decisions of localkube's controllers: Job plans, garbage-collector plans, namespace cleanup,
and the work queue's de-duplication and delays (with a fake clock)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from localkube.controllers import crd_resources
from localkube.controllers.gc import ABSENT, FOREGROUND, PRESENT, owner_state, plan_dependent, plan_owner
from localkube.controllers.job import (
    TRACKING_FINALIZER,
    JobSettings,
    Observed,
    format_indexes,
    parse_indexes,
    plan_job,
    pod_for,
)
from localkube.controllers.namespace import plan_namespace_cleanup
from rayside.objects import Resource
from rayside.runtime.workqueue import ShutDown, WorkQueue

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
SETTINGS = JobSettings(backoff_base=10.0, backoff_max=360.0)


def job(**spec: Any) -> dict[str, Any]:
    template = {
        "spec": {
            "restartPolicy": spec.pop("restartPolicy", "Never"),
            "containers": [{"name": "c", "image": "i"}],
        }
    }
    status = spec.pop("status", {})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "default", "uid": "job-uid"},
        "spec": {"backoffLimit": 6, "template": template, **spec},
        "status": status,
    }


def pod(name: str, phase: str = "Running", fin: bool = True, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if fin:
        meta["finalizers"] = [TRACKING_FINALIZER]
    meta.update(extra.pop("meta", {}))
    return {"metadata": meta, "status": {"phase": phase, **extra}}


def conds(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c.get("reason", "") for c in status.get("conditions") or [] if c["status"] == "True"}


def test_pod_template_labels_finalizer_and_owner() -> None:
    body = pod_for(job(completions=1))
    meta = body["metadata"]
    assert meta["generateName"] == "j-"
    assert meta["labels"] == {
        "batch.kubernetes.io/controller-uid": "job-uid",
        "batch.kubernetes.io/job-name": "j",
        "controller-uid": "job-uid",
        "job-name": "j",
    }
    assert meta["finalizers"] == [TRACKING_FINALIZER]
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "j",
            "uid": "job-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    indexed = pod_for(job(completions=3, completionMode="Indexed"), 2)["metadata"]
    assert indexed["annotations"]["batch.kubernetes.io/job-completion-index"] == "2"
    assert indexed["generateName"] == "j-2-"


def test_new_job_starts_and_creates_up_to_parallelism() -> None:
    plan = plan_job(job(completions=5, parallelism=2), [], NOW, Observed(), SETTINGS)
    assert len(plan.create) == 2
    assert plan.status is not None
    assert plan.status["startTime"] == "2024-05-01T12:00:00Z"
    assert plan.status["active"] == 2


def test_active_capped_by_remaining_completions_and_expectations() -> None:
    j = job(completions=3, parallelism=5, status={"succeeded": 2})
    assert len(plan_job(j, [], NOW, Observed(), SETTINGS).create) == 1
    assert plan_job(j, [], NOW, Observed(pending_creates=1), SETTINGS).create == []


def test_succeeded_pod_counted_through_uncounted_then_finalizer() -> None:
    j = job(completions=1, status={"startTime": "2024-05-01T11:59:00Z"})
    done = pod("p1", "Succeeded")
    first = plan_job(j, [done], NOW, Observed(), SETTINGS)
    assert first.status is not None
    assert first.status["uncountedTerminatedPods"] == {"succeeded": ["uid-p1"]}
    assert first.remove_finalizer == []  # not persisted yet
    assert "Complete" not in conds(first.status)
    j["status"] = first.status
    second = plan_job(j, [done], NOW, Observed(), SETTINGS)
    assert [p["metadata"]["name"] for p in second.remove_finalizer] == ["p1"]
    j["status"] = second.status or j["status"]
    third = plan_job(j, [pod("p1", "Succeeded", fin=False)], NOW, Observed(), SETTINGS)
    assert third.status is not None
    assert third.status["succeeded"] == 1
    assert third.counted == ["uid-p1"]
    assert conds(third.status) == {
        "SuccessCriteriaMet": "CompletionsReached",
        "Complete": "CompletionsReached",
    }
    assert third.status["completionTime"] == "2024-05-01T12:00:00Z"
    assert third.status["uncountedTerminatedPods"] == {}


def test_counted_pods_are_not_counted_twice() -> None:
    j = job(completions=2, status={"succeeded": 1, "startTime": "2024-05-01T11:59:00Z"})
    plan = plan_job(j, [pod("p1", "Succeeded")], NOW, Observed(counted=frozenset({"uid-p1"})), SETTINGS)
    assert plan.status is None or not plan.status.get("uncountedTerminatedPods")


def test_backoff_limit_exceeded() -> None:
    j = job(completions=1, backoffLimit=1, status={"failed": 2, "startTime": "2024-05-01T11:59:00Z"})
    plan = plan_job(j, [pod("p3")], NOW, Observed(), SETTINGS)
    assert plan.status is not None
    assert conds(plan.status) == {"FailureTarget": "BackoffLimitExceeded"}
    assert [p["metadata"]["name"] for p in plan.delete] == ["p3"]
    j["status"] = plan.status
    final = plan_job(j, [], NOW, Observed(), SETTINGS)
    assert final.status is not None
    failed = next(c for c in final.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"


def test_on_failure_restarts_count_towards_backoff_limit() -> None:
    running = pod("p1", containerStatuses=[{"name": "c", "restartCount": 2}])
    j = job(
        completions=1, backoffLimit=2, restartPolicy="OnFailure", status={"startTime": "2024-05-01T11:59:00Z"}
    )
    plan = plan_job(j, [running], NOW, Observed(), SETTINGS)
    assert plan.status is not None and "FailureTarget" in conds(plan.status)
    j["spec"]["backoffLimit"] = 3
    assert plan_job(j, [running], NOW, Observed(), SETTINGS).delete == []


def test_replacement_waits_for_exponential_backoff() -> None:
    j = job(completions=1, status={"failed": 2, "startTime": "2024-05-01T11:59:00Z"})
    recent = Observed(last_failure=NOW - dt.timedelta(seconds=5))
    plan = plan_job(j, [], NOW, recent, SETTINGS)
    assert plan.create == []
    assert plan.requeue_after == 15.0  # 10 s * 2**(2-1) - 5 s
    later = Observed(last_failure=NOW - dt.timedelta(seconds=25))
    assert len(plan_job(j, [], NOW, later, SETTINGS).create) == 1


def test_active_deadline() -> None:
    j = job(completions=1, activeDeadlineSeconds=30, status={"startTime": "2024-05-01T11:59:00Z"})
    plan = plan_job(j, [pod("p1")], NOW, Observed(), SETTINGS)
    assert plan.status is not None
    assert conds(plan.status)["FailureTarget"] == "DeadlineExceeded"
    young = job(completions=1, activeDeadlineSeconds=300, status={"startTime": "2024-05-01T11:59:00Z"})
    assert plan_job(young, [pod("p1")], NOW, Observed(), SETTINGS).requeue_after == 240.0


def test_suspend_and_resume() -> None:
    j = job(completions=1, suspend=True, status={"startTime": "2024-05-01T11:00:00Z"})
    plan = plan_job(j, [pod("p1")], NOW, Observed(), SETTINGS)
    assert [p["metadata"]["name"] for p in plan.delete] == ["p1"]
    assert plan.create == []
    assert plan.status is not None and conds(plan.status) == {"Suspended": "JobSuspended"}
    j["status"] = plan.status
    j["spec"]["suspend"] = False
    resumed = plan_job(j, [], NOW, Observed(), SETTINGS)
    assert resumed.status is not None
    suspended = next(c for c in resumed.status["conditions"] if c["type"] == "Suspended")
    assert (suspended["status"], suspended["reason"]) == ("False", "JobResumed")
    assert len(resumed.create) == 1


def test_work_queue_mode_completes_when_one_succeeds_and_rest_end() -> None:
    j = job(parallelism=2, status={"startTime": "2024-05-01T11:59:00Z", "succeeded": 1})
    plan = plan_job(j, [pod("p2")], NOW, Observed(), SETTINGS)
    assert plan.create == []
    assert plan.status is not None and "Complete" not in conds(plan.status)
    done = plan_job(j, [], NOW, Observed(), SETTINGS)
    assert done.status is not None and "Complete" in conds(done.status)


def test_pod_deleted_under_the_job_counts_as_failed_unless_we_deleted_it() -> None:
    j = job(completions=1, status={"startTime": "2024-05-01T11:59:00Z"})
    gone = pod("p1", meta={"deletionTimestamp": "2024-05-01T12:00:00Z"})
    plan = plan_job(j, [gone], NOW, Observed(), SETTINGS)
    assert plan.status is not None and plan.status["uncountedTerminatedPods"] == {"failed": ["uid-p1"]}
    ours = plan_job(j, [gone], NOW, Observed(deleted_by_us=frozenset({"uid-p1"})), SETTINGS)
    assert [p["metadata"]["name"] for p in ours.remove_finalizer] == ["p1"]


def test_ttl_after_finished() -> None:
    status = {
        "completionTime": "2024-05-01T11:59:00Z",
        "conditions": [{"type": "Complete", "status": "True"}],
    }
    assert plan_job(job(ttlSecondsAfterFinished=30, status=status), [], NOW, Observed(), SETTINGS).delete_job
    later = plan_job(job(ttlSecondsAfterFinished=100, status=status), [], NOW, Observed(), SETTINGS)
    assert not later.delete_job and later.requeue_after == 40.0


def test_indexed_mode() -> None:
    j = job(
        completions=3, parallelism=3, completionMode="Indexed", status={"startTime": "2024-05-01T11:59:00Z"}
    )
    done = pod("p0", "Succeeded", meta={"annotations": {"batch.kubernetes.io/job-completion-index": "0"}})
    plan = plan_job(j, [done], NOW, Observed(), SETTINGS)
    created = sorted(
        p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in plan.create
    )
    assert created == ["1", "2"]
    assert plan.status is not None and plan.status["completedIndexes"] == "0"
    assert format_indexes({0, 1, 2, 4, 7, 8}) == "0-2,4,7-8"
    assert parse_indexes("0-2,4,7-8") == {0, 1, 2, 4, 7, 8}


def test_unchanged_status_is_not_written() -> None:
    j = job(completions=1)
    first = plan_job(j, [], NOW, Observed(), SETTINGS)
    j["status"] = first.status
    again = plan_job(j, [pod("p1")], NOW, Observed(), SETTINGS)
    j["status"] = again.status or j["status"]
    assert plan_job(j, [pod("p1")], NOW, Observed(), SETTINGS).status is None


# --- garbage collector --------------------------------------------------------------------------------


def dependent(*refs: dict[str, Any], deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "d", "uid": "dep", "ownerReferences": list(refs)}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    return {"metadata": meta}


def test_gc_dependent_decisions() -> None:
    a, b = {"uid": "a"}, {"uid": "b", "blockOwnerDeletion": True}
    assert plan_dependent(dependent(a), {"a": ABSENT}).delete_policy == "Background"
    assert plan_dependent(dependent(a), {"a": PRESENT}).delete_policy is None
    partial = plan_dependent(dependent(a, b), {"a": ABSENT, "b": PRESENT})
    assert partial.delete_policy is None and partial.remove_owner_uids == ["a"]
    assert plan_dependent(dependent(b), {"b": FOREGROUND}).delete_policy == "Foreground"
    assert plan_dependent(dependent(a), {"a": FOREGROUND}).delete_policy == "Background"
    assert plan_dependent(dependent(a, deleting=True), {"a": ABSENT}).delete_policy is None


def test_gc_owner_decisions() -> None:
    owner = {"metadata": {"uid": "o", "deletionTimestamp": "t", "finalizers": ["orphan"]}}
    deps = [dependent({"uid": "o"})]
    orphan = plan_owner(owner, deps)
    assert orphan.strip_from == deps and orphan.remove_finalizer == "orphan"
    owner["metadata"]["finalizers"] = ["foregroundDeletion"]
    blocked = plan_owner(owner, [dependent({"uid": "o", "blockOwnerDeletion": True})])
    assert blocked.remove_finalizer is None and len(blocked.delete_dependents) == 1
    assert plan_owner(owner, [dependent({"uid": "o"})]).remove_finalizer == "foregroundDeletion"
    assert plan_owner(owner, []).remove_finalizer == "foregroundDeletion"
    assert owner_state(owner) == FOREGROUND
    assert owner_state(None) == ABSENT
    assert owner_state({"metadata": {"uid": "x"}}) == PRESENT


def test_namespace_cleanup_plan() -> None:
    res = Resource("", "v1", "configmaps", "ConfigMap", True)
    live = {"metadata": {"name": "a"}}
    waiting = {"metadata": {"name": "b", "deletionTimestamp": "t", "finalizers": ["x"]}}
    to_delete, empty = plan_namespace_cleanup({res: [live, waiting]})
    assert to_delete == [(res, live)] and not empty
    assert plan_namespace_cleanup({res: []}) == ([], True)


def test_crd_resources() -> None:
    crd = {
        "spec": {
            "group": "ray.io",
            "scope": "Namespaced",
            "names": {"plural": "rayclusters", "kind": "RayCluster"},
            "versions": [
                {"name": "v1alpha1", "served": True},
                {"name": "v1", "served": True, "storage": True},
            ],
        },
        "status": {"conditions": [{"type": "Established", "status": "True"}]},
    }
    found = crd_resources(crd)
    assert [r.version for r in found] == ["v1", "v1alpha1"]
    assert found[0].path("ns", "x") == "/apis/ray.io/v1/namespaces/ns/rayclusters/x"
    crd["status"]["conditions"] = []
    assert crd_resources(crd) == []


def test_work_queue_dedup_and_delay() -> None:
    now = [100.0]
    q = WorkQueue(clock=lambda: now[0])
    q.add("a")
    q.add("a")
    q.add_after("b", 5.0)
    assert q.get(timeout=0) == "a"
    q.add("a")  # while processing: becomes ready again after done()
    q.done("a")
    assert q.get(timeout=0) == "a"
    q.done("a")
    now[0] += 6
    assert q.get(timeout=0) == "b"
    q.shutdown()
    with pytest.raises(ShutDown):
        q.get(timeout=0)


# --- endpoints ------------------------------------------------------------------------------------------


def service(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "s", "namespace": "default", "labels": {"app": "x"}}, "spec": spec}


def ep_pod(
    name: str, ip: str, ready: bool, labels: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"u-{name}",
            "labels": labels or {"app": "x"},
        },
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}],
        },
        "status": {
            "podIP": ip,
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": str(ready)}],
            **extra,
        },
    }


def test_desired_endpoints() -> None:
    from localkube.controllers.endpoints import desired_endpoints

    svc = service(
        selector={"app": "x"},
        ports=[{"name": "web", "port": 80, "targetPort": "http"}, {"port": 9, "targetPort": 9}],
    )
    pods = [
        ep_pod("b", "10.0.0.2", True),
        ep_pod("a", "10.0.0.1", False),
        ep_pod("other", "10.0.0.3", True, labels={"app": "y"}),
        ep_pod("noip", "", True),
    ]
    ep = desired_endpoints(svc, pods)
    assert ep is not None
    assert ep["metadata"] == {"name": "s", "namespace": "default", "labels": {"app": "x"}}
    (subset,) = ep["subsets"]
    assert subset["ports"] == [
        {"name": "web", "port": 8080, "protocol": "TCP"},
        {"port": 9, "protocol": "TCP"},
    ]
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.2"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.0.0.1"]
    assert subset["addresses"][0]["targetRef"] == {
        "kind": "Pod",
        "namespace": "default",
        "name": "b",
        "uid": "u-b",
    }
    assert desired_endpoints(service(ports=[{"port": 80}]), pods) is None
    empty = desired_endpoints(service(selector={"app": "none"}), pods)
    assert empty is not None and "subsets" not in empty
