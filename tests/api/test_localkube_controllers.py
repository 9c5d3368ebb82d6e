"""localkube's built-in controllers against a real server with the official client: garbage collection
(background, foreground, orphan, dangling, custom resources), namespace lifecycle and the Job controller.

One server (controllers + simulated kubelet) per module; every test works in its own namespace.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from tests.api.conftest import create_widget_crd, wait_for

pytestmark = pytest.mark.api
EXIT = "localkube.rayside.io/exit-code"
RUN = "localkube.rayside.io/run-seconds"
_names = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalKube]:
    with running(
        controllers=True, kubelet="simulated", kubelet_options={"ready_delay": 0.1, "job_run_seconds": 0.3}
    ) as lk:
        yield lk


@pytest.fixture
def api(cluster: LocalKube) -> Any:
    return cluster.api_client()


@pytest.fixture
def ns(api: Any) -> str:
    name = f"t{next(_names)}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def gone(read: Any, *args: Any) -> bool:
    try:
        read(*args)
    except ApiException as exc:
        return exc.status == 404
    return False


def owner_and_dependent(core: Any, ns: str, block: bool = False) -> tuple[Any, Any]:
    owner = core.create_namespaced_config_map(ns, {"metadata": {"name": "owner"}})
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
        "blockOwnerDeletion": block,
    }
    dep = core.create_namespaced_secret(ns, {"metadata": {"name": "dep", "ownerReferences": [ref]}})
    return owner, dep


def test_background_deletion_removes_dependents(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    owner_and_dependent(core, ns)
    core.delete_namespaced_config_map("owner", ns, propagation_policy="Background")
    wait_for(lambda: gone(core.read_namespaced_secret, "dep", ns), what="dependent deleted")


def test_orphan_deletion_keeps_dependents_without_owner_refs(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    owner_and_dependent(core, ns)
    resp = core.delete_namespaced_config_map("owner", ns, propagation_policy="Orphan")
    assert resp is not None
    wait_for(lambda: gone(core.read_namespaced_config_map, "owner", ns), what="owner gone")
    dep = core.read_namespaced_secret("dep", ns)
    assert not dep.metadata.owner_references


def test_foreground_deletion_waits_for_blocking_dependents(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    owner_and_dependent(core, ns, block=True)
    # a finalizer on the dependent keeps it (and therefore the owner) around until we release it
    core.patch_namespaced_secret("dep", ns, {"metadata": {"finalizers": ["example.com/hold"]}})
    core.delete_namespaced_config_map("owner", ns, propagation_policy="Foreground")
    owner = core.read_namespaced_config_map("owner", ns)
    assert "foregroundDeletion" in owner.metadata.finalizers
    wait_for(
        lambda: core.read_namespaced_secret("dep", ns).metadata.deletion_timestamp, what="dependent deleting"
    )
    assert "foregroundDeletion" in core.read_namespaced_config_map("owner", ns).metadata.finalizers
    core.patch_namespaced_secret("dep", ns, [{"op": "remove", "path": "/metadata/finalizers"}])
    wait_for(lambda: gone(core.read_namespaced_config_map, "owner", ns), what="owner gone after dependent")


def test_dangling_owner_reference_is_collected(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "ghost",
        "uid": "00000000-0000-0000-0000-000000000000",
    }
    core.create_namespaced_secret(ns, {"metadata": {"name": "orphan", "ownerReferences": [ref]}})
    wait_for(lambda: gone(core.read_namespaced_secret, "orphan", ns), what="dangling dependent deleted")


def test_partially_dangling_refs_are_removed(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, {"metadata": {"name": "alive"}})
    refs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "alive", "uid": owner.metadata.uid},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "ghost",
            "uid": "00000000-0000-0000-0000-000000000001",
        },
    ]
    core.create_namespaced_secret(ns, {"metadata": {"name": "half", "ownerReferences": refs}})
    wait_for(
        lambda: len(core.read_namespaced_secret("half", ns).metadata.owner_references) == 1,
        what="ref dropped",
    )
    assert core.read_namespaced_secret("half", ns).metadata.owner_references[0].name == "alive"


def test_gc_works_for_custom_resources(api: Any, ns: str) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    try:
        create_widget_crd(api)
    except ApiException as exc:
        assert exc.status == 409  # another test of this module installed it
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    w = wait_for(lambda: _try_create(custom, ns, body), what="widget created")
    ref = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": w["metadata"]["uid"]}
    core.create_namespaced_config_map(ns, {"metadata": {"name": "of-widget", "ownerReferences": [ref]}})
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "cm-owner"}})
    cm_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm-owner", "uid": cm.metadata.uid}
    child = {**body, "metadata": {"name": "child", "ownerReferences": [cm_ref]}}
    custom.create_namespaced_custom_object("example.com", "v1", ns, "widgets", child)
    custom.delete_namespaced_custom_object("example.com", "v1", ns, "widgets", "w")
    wait_for(lambda: gone(core.read_namespaced_config_map, "of-widget", ns), what="CR dependent deleted")
    core.delete_namespaced_config_map("cm-owner", ns)
    wait_for(
        lambda: gone(custom.get_namespaced_custom_object, "example.com", "v1", ns, "widgets", "child"),
        what="CR owned by a ConfigMap deleted",
    )


def _try_create(custom: Any, ns: str, body: dict[str, Any]) -> Any:
    try:
        return custom.create_namespaced_custom_object("example.com", "v1", ns, "widgets", body)
    except ApiException as exc:
        if exc.status == 404:  # CRD endpoints not served yet
            return None
        raise


def test_namespace_lifecycle(api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "doomed"}})
    wait_for(lambda: core.list_namespaced_service_account("doomed").items, what="default ServiceAccount")
    assert [sa.metadata.name for sa in core.list_namespaced_service_account("doomed").items] == ["default"]
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "plain"}})
    core.create_namespaced_config_map(
        "doomed", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    )
    core.delete_namespace("doomed")
    assert core.read_namespace("doomed").status.phase == "Terminating"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("doomed", {"metadata": {"name": "late"}})
    assert err.value.status == 403
    wait_for(lambda: gone(core.read_namespaced_config_map, "plain", "doomed"), what="contents deleted")
    wait_for(
        lambda: core.read_namespaced_config_map("held", "doomed").metadata.deletion_timestamp,
        what="held deleting",
    )
    assert not gone(core.read_namespace, "doomed")  # still waiting for the finalizer
    core.patch_namespaced_config_map("held", "doomed", {"metadata": {"$patch": "merge", "finalizers": None}})
    wait_for(lambda: gone(core.read_namespace, "doomed"), what="namespace removed")


def test_default_service_account_is_recreated(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    wait_for(lambda: core.list_namespaced_service_account(ns).items, what="default ServiceAccount")
    core.delete_namespaced_service_account("default", ns)
    wait_for(lambda: not gone(core.read_namespaced_service_account, "default", ns), what="recreated")


def job_body(name: str, **spec: Any) -> dict[str, Any]:
    annotations = spec.pop("annotations", {})
    policy = spec.pop("restartPolicy", "Never")
    pod_spec = {"restartPolicy": policy, "containers": [{"name": "c", "image": "busybox"}]}
    template = {"metadata": {"annotations": annotations}, "spec": pod_spec}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {**spec, "template": template},
    }


def condition(job: Any, ctype: str) -> Any:
    conditions = (job.status.conditions if job.status else None) or []
    return next((c for c in conditions if c.type == ctype and c.status == "True"), None)


def test_job_runs_to_completion(api: Any, ns: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job(ns, job_body("ok", completions=2, parallelism=1))
    done = wait_for(
        lambda: condition(batch.read_namespaced_job("ok", ns), "Complete"), timeout=60, what="Complete"
    )
    assert done.reason == "CompletionsReached"
    job = batch.read_namespaced_job("ok", ns)
    assert job.status.succeeded == 2
    assert job.status.completion_time is not None and job.status.start_time is not None
    assert condition(job, "SuccessCriteriaMet") is not None
    pods = core.list_namespaced_pod(ns, label_selector="batch.kubernetes.io/job-name=ok").items
    assert len(pods) == 2
    for p in pods:
        assert p.metadata.labels["job-name"] == "ok"
        assert p.metadata.labels["controller-uid"] == job.metadata.uid
        assert p.metadata.owner_references[0].uid == job.metadata.uid
        assert p.metadata.owner_references[0].controller is True
        assert p.metadata.generate_name == "ok-"
    wait_for(
        lambda: all(not p.metadata.finalizers for p in core.list_namespaced_pod(ns).items), what="finalizers"
    )

    def reasons() -> set[str]:
        events = core.list_namespaced_event(ns, field_selector="involvedObject.name=ok").items
        return {e.reason for e in events}

    wait_for(lambda: reasons() >= {"SuccessfulCreate", "Completed"}, what="job events")


def test_job_backoff_limit_exceeded(api: Any, ns: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(ns, job_body("bad", completions=1, backoffLimit=1, annotations={EXIT: "1"}))
    failed = wait_for(
        lambda: condition(batch.read_namespaced_job("bad", ns), "Failed"), timeout=60, what="Failed"
    )
    assert failed.reason == "BackoffLimitExceeded"
    assert failed.message == "Job has reached the specified backoff limit"
    assert batch.read_namespaced_job("bad", ns).status.failed == 2


def test_job_active_deadline(api: Any, ns: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    body = job_body("slow", completions=1, activeDeadlineSeconds=1, annotations={RUN: "600"})
    batch.create_namespaced_job(ns, body)
    failed = wait_for(
        lambda: condition(batch.read_namespaced_job("slow", ns), "Failed"), timeout=60, what="Failed"
    )
    assert failed.reason == "DeadlineExceeded"
    wait_for(lambda: not core.list_namespaced_pod(ns).items, what="pods removed")


def test_job_suspend_and_resume(api: Any, ns: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job(ns, job_body("later", completions=1, suspend=True))
    wait_for(lambda: condition(batch.read_namespaced_job("later", ns), "Suspended"), what="Suspended")
    assert core.list_namespaced_pod(ns).items == []
    batch.patch_namespaced_job("later", ns, {"spec": {"suspend": False}})
    wait_for(
        lambda: condition(batch.read_namespaced_job("later", ns), "Complete"), timeout=60, what="Complete"
    )


def test_job_delete_orphans_pods_by_default(api: Any, ns: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job(ns, job_body("keep", parallelism=1, annotations={RUN: "600"}))
    wait_for(lambda: core.list_namespaced_pod(ns).items, what="pod created")
    _data, _status, headers = batch.delete_namespaced_job_with_http_info("keep", ns)
    assert "Warning" in headers
    wait_for(lambda: gone(batch.read_namespaced_job, "keep", ns), what="job deleted")
    pods = core.list_namespaced_pod(ns).items
    assert len(pods) == 1 and not pods[0].metadata.owner_references
    batch.create_namespaced_job(ns, job_body("drop", parallelism=1, annotations={RUN: "600"}))
    wait_for(lambda: core.list_namespaced_pod(ns, label_selector="job-name=drop").items, what="pod created")
    batch.delete_namespaced_job("drop", ns, propagation_policy="Background")
    wait_for(
        lambda: not core.list_namespaced_pod(ns, label_selector="job-name=drop").items, what="pods deleted"
    )


def test_indexed_job(api: Any, ns: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job(ns, job_body("idx", completions=3, parallelism=3, completionMode="Indexed"))
    wait_for(lambda: condition(batch.read_namespaced_job("idx", ns), "Complete"), timeout=60, what="Complete")
    assert batch.read_namespaced_job("idx", ns).status.completed_indexes == "0-2"
    indexes = sorted(
        p.metadata.annotations["batch.kubernetes.io/job-completion-index"]
        for p in core.list_namespaced_pod(ns).items
    )
    assert indexes == ["0", "1", "2"]
    assert json.dumps(indexes)


def test_endpoints_follow_ready_pods(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    svc = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    core.create_namespaced_service(ns, svc)
    pod = {
        "metadata": {"name": "w1", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }
    core.create_namespaced_pod(ns, pod)

    def addresses() -> list[str]:
        try:
            ep = core.read_namespaced_endpoints("web", ns)
        except ApiException:
            return []
        return [a.ip for s in ep.subsets or [] for a in s.addresses or []]

    ips = wait_for(addresses, what="ready pod in endpoints")
    assert ips == [core.read_namespaced_pod("w1", ns).status.pod_ip]
    assert core.read_namespaced_endpoints("web", ns).subsets[0].ports[0].port == 8080
    core.delete_namespaced_pod("w1", ns, grace_period_seconds=0)
    wait_for(lambda: not addresses(), what="endpoints emptied")
    core.delete_namespaced_service("web", ns)
    wait_for(lambda: gone(core.read_namespaced_endpoints, "web", ns), what="endpoints deleted")
