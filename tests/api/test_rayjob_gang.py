"""Gang scheduling of a whole RayJob (cluster Pods + the K8sJobMode submitter Pod) and the Kueue handshake,
against localkube (simulated kubelet) with the operator in-process and a stub Ray dashboard.

Volcano's and scheduler-plugins' PodGroup CRDs are installed as schema-less CRDs (no scheduler runs: the
simulated kubelet binds every Pod); the tests check what the operator writes: the PodGroup, the Pods'
scheduler metadata, and that the submitter Pod exists before the cluster is ready (otherwise a gang that
counts it could never form). Kueue's webhook is not emulated: a queued RayJob is created with
`suspend: true`, as Kueue's webhook would make it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import install_crds
from tests.api.test_operator import podgroup_crd
from tests.api.test_rayjob import NS, Api, JobsStub, OperatorThread, rayjob, running_job, wait_for
from tests.support import kube

pytestmark = pytest.mark.api
Obj = dict[str, Any]
VOLCANO = ("scheduling.volcano.sh", "v1beta1")
PLUGINS = ("scheduling.x-k8s.io", "v1alpha1")
SUBMITTER_SELECTOR = "job-name=job"


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    options = {"ready_delay": 0.2, "job_run_seconds": 2.0}
    with running(
        bookmark_interval=1.0, kubelet="simulated", kubelet_options=options, controllers=True
    ) as server:
        install_crds(server.kube_client())
        yield server


@pytest.fixture
def api(lk: LocalKube) -> Api:
    ext = client.ApiextensionsV1Api(lk.api_client())
    gang = Api(lk)
    for group, version in (VOLCANO, PLUGINS):
        ext.create_custom_resource_definition(podgroup_crd(group, version))
        served = functools.partial(gang.crs.list_namespaced_custom_object, group, version, NS, "podgroups")
        kube.wait_for(served, 60.0, f"podgroups.{group} served", interval=0.1, ignore=(ApiException,))
    return gang


@pytest.fixture
def stub() -> Iterator[JobsStub]:
    server = JobsStub().start()
    yield server
    server.stop()


@pytest.fixture
def operator(lk: LocalKube, stub: JobsStub) -> Iterator[OperatorThread]:
    op = OperatorThread(lk, stub, "--reconcile-concurrency", "2")
    op.start()
    yield op
    op.stop()


def with_resources(job: Obj, *, workers: int) -> Obj:
    """Head and each worker request 1 CPU / 1Gi; `workers` replicas."""
    cluster = job["spec"]["rayClusterSpec"]
    requests = {"requests": {"cpu": "1", "memory": "1Gi"}}
    cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"] = requests
    worker = cluster["workerGroupSpecs"][0]
    worker["template"]["spec"]["containers"][0]["resources"] = requests
    worker.update(replicas=workers, minReplicas=0, maxReplicas=workers)
    return job


def podgroup(api: Api, gv: tuple[str, str], name: str) -> Obj | None:
    try:
        return dict(api.crs.get_namespaced_custom_object(gv[0], gv[1], NS, "podgroups", name))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def min_member(api: Api, name: str) -> int:
    return int(((podgroup(api, VOLCANO, name) or {}).get("spec") or {}).get("minMember", -1))


def cluster_pods(api: Api, cluster: str) -> list[Any]:
    return list(api.core.list_namespaced_pod(NS, label_selector=f"ray.io/cluster={cluster}").items)


def submitter_pods(api: Api) -> list[Any]:
    return list(api.core.list_namespaced_pod(NS, label_selector=SUBMITTER_SELECTOR).items)


def test_volcano_one_pod_group_for_cluster_and_submitter(
    api: Api, stub: JobsStub, operator: OperatorThread
) -> None:
    job = with_resources(rayjob(shutdownAfterJobFinishes=True), workers=2)
    job["metadata"]["labels"] = {"ray.io/scheduler-name": "volcano", "volcano.sh/queue-name": "q1"}
    api.create(job)
    pg = wait_for(lambda: podgroup(api, VOLCANO, "ray-job-pg"), what="the RayJob's PodGroup")
    assert pg["spec"]["minMember"] == 1 + 2 + 1  # head + workers + the submitter
    # 3 x (1 CPU, 1Gi) + the default submitter (500m, 200Mi)
    assert pg["spec"]["minResources"] == {"cpu": "3500m", "memory": str(3 * 1024**3 + 200 * 1024**2)}
    assert pg["spec"]["queue"] == "q1"
    assert [(o["kind"], o["name"]) for o in pg["metadata"]["ownerReferences"]] == [("RayJob", "job")]
    status = running_job(api)
    cluster = status["rayClusterName"]
    wait_for(lambda: len(cluster_pods(api, cluster)) == 3, what="cluster Pods")
    pods = [*cluster_pods(api, cluster), *submitter_pods(api)]
    assert len(pods) == 4
    for pod in pods:
        assert pod.spec.scheduler_name == "volcano"
        assert pod.metadata.annotations["scheduling.k8s.io/group-name"] == "ray-job-pg"
        assert pod.metadata.labels["volcano.sh/queue-name"] == "q1"
    tasks = {pod.metadata.annotations["volcano.sh/task-spec"] for pod in pods}
    assert tasks == {"headgroup", "wg", "submittergroup"}
    assert "FailedToCreateSubmitterJob" not in api.reasons()
    # on completion the PodGroup no longer counts the submitter; deleting the RayJob removes it (owner ref)
    stub.set(status["jobId"], "SUCCEEDED")
    wait_for(lambda: api.deployment() == "Complete", what="Complete")
    wait_for(lambda: min_member(api, "ray-job-pg") < 4, what="PodGroup shrunk to the live cluster")
    api.crs.delete_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", "job")
    wait_for(lambda: podgroup(api, VOLCANO, "ray-job-pg") is None, what="PodGroup garbage-collected")


def test_yunikorn_task_groups_on_every_pod(api: Api, stub: JobsStub, operator: OperatorThread) -> None:
    job = with_resources(rayjob(), workers=1)
    job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["minReplicas"] = 1
    job["metadata"]["labels"] = {
        "ray.io/scheduler-name": "yunikorn",
        "ray.io/gang-scheduling-enabled": "true",
        "yunikorn.apache.org/app-id": "app-1",
        "yunikorn.apache.org/queue": "root.q",
    }
    api.create(job)
    cluster = running_job(api)["rayClusterName"]
    wait_for(lambda: len(cluster_pods(api, cluster)) == 2, what="cluster Pods")
    pods = [*cluster_pods(api, cluster), *submitter_pods(api)]
    assert len(pods) == 3
    names = set()
    for pod in pods:
        assert pod.spec.scheduler_name == "yunikorn"
        assert pod.metadata.labels["applicationId"] == "app-1"
        assert pod.metadata.labels["queue"] == "root.q"
        groups = json.loads(pod.metadata.annotations["yunikorn.apache.org/task-groups"])
        assert [(g["name"], g["minMember"]) for g in groups] == [
            ("headgroup", 1),
            ("wg", 1),
            ("submittergroup", 1),
        ]
        names.add(pod.metadata.annotations["yunikorn.apache.org/task-group-name"])
    assert names == {"headgroup", "wg", "submittergroup"}


def test_scheduler_plugins_one_pod_group_named_after_the_rayjob(
    api: Api, stub: JobsStub, operator: OperatorThread
) -> None:
    job = with_resources(rayjob(), workers=1)
    job["metadata"]["labels"] = {
        "ray.io/scheduler-name": "scheduler-plugins",
        "ray.io/gang-scheduling-enabled": "true",
    }
    api.create(job)
    pg = wait_for(lambda: podgroup(api, PLUGINS, "job"), what="the RayJob's PodGroup")
    assert pg["spec"]["minMember"] == 3
    cluster = running_job(api)["rayClusterName"]
    wait_for(lambda: len(cluster_pods(api, cluster)) == 2, what="cluster Pods")
    assert podgroup(api, PLUGINS, cluster) is None  # no second group for the RayJob's cluster
    for pod in [*cluster_pods(api, cluster), *submitter_pods(api)]:
        assert pod.metadata.labels["scheduling.x-k8s.io/pod-group"] == "job"


def test_kueue_suspended_rayjob_waits_then_runs_on_a_fresh_cluster(
    api: Api, stub: JobsStub, operator: OperatorThread
) -> None:
    job = rayjob(suspend=True, shutdownAfterJobFinishes=True)
    job["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "user-queue"}
    api.create(job)
    wait_for(lambda: api.deployment() == "Suspended", what="created suspended (queued)")
    assert api.clusters() == [] and submitter_pods(api) == []
    api.patch({"spec": {"suspend": False}})  # admitted
    first = running_job(api)["rayClusterName"]
    assert api.cluster(first)["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "user-queue"  # type: ignore[index]
    for pod in cluster_pods(api, first):
        assert "kueue.x-k8s.io/queue-name" not in (pod.metadata.labels or {})
    api.patch({"spec": {"suspend": True}})  # preempted
    wait_for(lambda: api.deployment() == "Suspended", what="Suspending -> Suspended")
    assert {"Suspending", "Suspended"} <= api.reasons()
    api.patch({"spec": {"suspend": False}})
    assert running_job(api)["rayClusterName"] != first


def test_kueue_suspended_rayjob_needs_shutdown_after_job_finishes(
    api: Api, stub: JobsStub, operator: OperatorThread
) -> None:
    job = rayjob(suspend=True, shutdownAfterJobFinishes=False)
    job["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "user-queue"}
    with pytest.raises(ApiException) as refused:
        api.create(job)
    assert refused.value.status == 422
    assert "shutdownAfterJobFinishes set to false is not allowed to be suspended" in str(refused.value.body)
    assert not api.exists()


def test_managed_by_multikueue_is_left_alone(api: Api, stub: JobsStub, operator: OperatorThread) -> None:
    job = rayjob(managedBy="kueue.x-k8s.io/multikueue", shutdownAfterJobFinishes=True)
    job["metadata"]["labels"] = {
        "kueue.x-k8s.io/queue-name": "user-queue",
        "ray.io/scheduler-name": "volcano",
    }
    api.create(job)
    api.create(rayjob("witness"))  # a RayJob the operator does manage: proof it has run past the first one
    running_job(api, "witness")
    assert api.status() == {}
    assert not api.get()["metadata"].get("finalizers")
    assert [c for c in api.clusters() if c["metadata"]["name"].startswith("job-")] == []
    assert podgroup(api, VOLCANO, "ray-job-pg") is None
    assert api.batch.list_namespaced_job(NS, label_selector="job-name=job").items == []


def test_submitter_is_created_with_the_cluster_not_after_it_is_ready(stub: JobsStub) -> None:
    """No scheduler binds Volcano's Pods here (the kubelet binds only default-scheduler Pods), so the cluster
    never gets ready; the submitter Job and its Pod exist anyway, so Volcano could admit the whole gang."""
    options = {"ready_delay": 0.2, "scheduler_names": ["default-scheduler"]}
    with running(kubelet="simulated", kubelet_options=options, controllers=True) as server:
        install_crds(server.kube_client())
        ext = client.ApiextensionsV1Api(server.api_client())
        ext.create_custom_resource_definition(podgroup_crd(*VOLCANO))
        api = Api(server)
        served = functools.partial(api.crs.list_namespaced_custom_object, *VOLCANO, NS, "podgroups")
        kube.wait_for(served, 60.0, "podgroups served", interval=0.1, ignore=(ApiException,))
        op = OperatorThread(server, stub).start()
        try:
            job = rayjob()
            job["metadata"]["labels"] = {"ray.io/scheduler-name": "volcano"}
            api.create(job)
            pods = wait_for(lambda: submitter_pods(api), what="submitter Pod")
            assert pods[0].spec.scheduler_name == "volcano" and not pods[0].spec.node_name
            cluster = api.status()["rayClusterName"]
            wait_for(lambda: len(cluster_pods(api, cluster)) == 2, what="cluster Pods (pending)")
            assert all(not pod.spec.node_name for pod in cluster_pods(api, cluster))
            assert api.deployment() == "Initializing"
            assert min_member(api, "ray-job-pg") == 3  # head + 1 worker + the submitter
            args = api.batch.read_namespaced_job("job", NS).spec.template.spec.containers[0]
            assert args.env and {e.name for e in args.env} >= {
                "RAY_DASHBOARD_ADDRESS",
                "RAY_JOB_SUBMISSION_ID",
            }
            address = next(e.value for e in args.env if e.name == "RAY_DASHBOARD_ADDRESS")
            assert address.endswith(f"{cluster}-head-svc.{NS}.svc.cluster.local:8265")
        finally:
            op.stop()
