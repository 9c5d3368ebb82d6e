"""Pure helpers of the apply side: event summaries, object paths, the slim Pod cache transform."""

from __future__ import annotations

from ray_operator.raycluster.applier import Applied
from ray_operator.raycluster.assembly import slim_pod
from ray_operator.raycluster.reconciler import summarize
from ray_operator.raycluster.status import Outcome
from rayside.objects import JSON, resource_of


def object_path(obj: JSON, namespace: str, name: str | None = None) -> str:
    return resource_of(obj).path(namespace, name)


def test_one_event_per_group_and_verb_never_per_pod() -> None:
    applied = Applied(created={"": ["h"], "wg": [f"w{i}" for i in range(7)]}, deleted={"wg": ["x"]})
    events = summarize(applied)
    assert [(t, r) for t, r, _ in events] == [
        ("Normal", "CreatedHeadPod"),
        ("Normal", "CreatedWorkerPod"),
        ("Normal", "DeletedWorkerPod"),
    ]
    assert events[1][2] == "Created 7 worker Pod(s) of group wg: w0, w1, w2, w3, w4, ..."
    failed = summarize(Applied(failure=Outcome("ServerError (500): boom", "FailedCreateWorkerPod")))
    assert failed == [("Warning", "FailedToCreateWorkerPod", "ServerError (500): boom")]
    assert summarize(Applied(failure=Outcome("shutting down", None))) == []


def test_object_paths() -> None:
    assert object_path({"kind": "Pod", "apiVersion": "v1"}, "ns") == "/api/v1/namespaces/ns/pods"
    role = {"kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1"}
    assert object_path(role, "ns", "rc") == "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles/rc"
    pg = {"kind": "PodGroup", "apiVersion": "scheduling.x-k8s.io/v1alpha1"}
    assert object_path(pg, "ns") == "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/ns/podgroups"


def test_slim_pod_keeps_what_planning_and_status_read() -> None:
    pod = {
        "metadata": {
            "name": "p",
            "labels": {"a": "b"},
            "managedFields": [{"x": 1}],
            "deletionTimestamp": "t",
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "ray", "env": [{"name": "X"}]}],
            "volumes": [],
        },
        "status": {"phase": "Running", "podIP": "1.2.3.4"},
    }
    slim = slim_pod(pod)
    assert slim["metadata"] == {"name": "p", "labels": {"a": "b"}, "deletionTimestamp": "t"}
    assert slim["spec"] == {"restartPolicy": "Never", "containers": [{"name": "ray"}]}
    assert slim["status"] == pod["status"]
