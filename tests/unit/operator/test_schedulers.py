"""Batch-scheduler objects and Pod metadata for acceptance scenarios 26-29, plus per-CR selection."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ray_operator import schedulers
from ray_operator.builders import (
    BuildSettings,
    head_pod,
    rayjob_cluster,
    submitter_job,
    submitter_resources,
    worker_pod,
)
from ray_operator.constants import HEAD_GROUP, SUBMITTER_GROUP
from ray_operator.models import RayCluster, RayJob
from ray_operator.rayjob.submitter import dashboard_address
from ray_operator.rayjob.submitter import submitter_job as rayside_submitter_job
from ray_operator.schedulers import (
    REGISTRY,
    UnknownScheduler,
    scheduler_for,
    scheduler_named,
    scheduler_plugins,
    stamp,
    volcano,
)
from tests.unit.operator.golden import load


def cluster(labels: dict[str, str], **spec: Any) -> RayCluster:
    data = copy.deepcopy(load("raycluster-minimal.yaml"))
    data["metadata"]["labels"] = labels
    data["spec"].update(spec)
    return RayCluster.model_validate(data)


def pods(rc: RayCluster, settings: BuildSettings) -> list[dict[str, Any]]:
    groups = rc.spec.worker_group_specs or []
    head = stamp(rc, head_pod(rc, settings=settings), group=HEAD_GROUP, settings=settings)
    workers = [
        stamp(rc, worker_pod(rc, g, settings=settings), group=g.group_name, settings=settings) for g in groups
    ]
    return [head, *workers]


def job(labels: dict[str, str] | None = None) -> RayJob:
    data = copy.deepcopy(load("rayjob-k8sjob.yaml"))
    data["metadata"]["labels"] = labels or {}
    del data["spec"]["submitterPodTemplate"]
    data["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].update(replicas=2, minReplicas=0)
    return RayJob.model_validate(data)


VOLCANO = BuildSettings(batch_scheduler="volcano")


def test_scenario26_volcano_raycluster() -> None:
    rc = cluster({"volcano.sh/queue-name": "q1"})
    group = volcano.cluster_pod_group(rc)
    assert group is not None
    assert group["apiVersion"] == "scheduling.volcano.sh/v1beta1" and group["metadata"]["name"] == "ray-rc-pg"
    assert group["spec"]["minMember"] == 3 and group["spec"]["queue"] == "q1"
    assert group["spec"]["minResources"] == {"cpu": "3", "memory": str(4 * 1024**3)}
    assert group["metadata"]["ownerReferences"][0]["name"] == "rc"
    for pod in pods(rc, VOLCANO):
        assert pod["spec"]["schedulerName"] == "volcano"
        assert pod["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == "ray-rc-pg"
        assert pod["metadata"]["labels"]["volcano.sh/queue-name"] == "q1"
    tasks = [p["metadata"]["annotations"]["volcano.sh/task-spec"] for p in pods(rc, VOLCANO)]
    assert tasks == ["headgroup", "wg"]


def test_volcano_autoscaling_uses_min_replicas() -> None:
    rc = cluster({}, enableInTreeAutoscaling=True)
    group = volcano.cluster_pod_group(rc)
    assert group is not None and group["spec"]["minMember"] == 1
    assert "queue" not in group["spec"]


def test_scenario27_volcano_rayjob() -> None:
    rj = job({"volcano.sh/queue-name": "q1"})
    submitter = submitter_resources(rj, VOLCANO)
    group = volcano.job_pod_group(rj, submitter=submitter)
    assert group["metadata"]["name"] == "ray-job-pg"
    assert group["metadata"]["ownerReferences"][0]["kind"] == "RayJob"
    assert group["spec"]["minMember"] == 4  # head + 2 workers + the submitter (created with the cluster)
    assert group["spec"]["minResources"] == {"cpu": "1500m", "memory": str(2 * 1024**3 + 200 * 1024**2)}
    rc_obj = rayjob_cluster(rj, name="job-b5n7q", job_id="job-x2k9p", settings=VOLCANO)
    rc_obj = stamp(rj, rc_obj, group="", settings=VOLCANO)  # the RayJob controller, K8sJobMode
    assert "schedulerName" not in rc_obj["spec"]
    rc = RayCluster.model_validate(rc_obj)
    assert volcano.cluster_pod_group(rc) is None
    head = stamp(rc, head_pod(rc, settings=VOLCANO), group=HEAD_GROUP, settings=VOLCANO)
    assert head["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == "ray-job-pg"
    sub = submitter_job(rj, cluster=rc, job_id="job-x2k9p", dashboard_url="d:8265", settings=VOLCANO)
    template = stamp(rj, sub["spec"]["template"], group=SUBMITTER_GROUP, settings=VOLCANO)
    assert template["metadata"]["annotations"]["volcano.sh/task-spec"] == "submittergroup"
    assert template["spec"]["schedulerName"] == "volcano"
    done = volcano.job_pod_group_on_completion(rj, None)
    assert done["spec"]["minMember"] == 0 and done["spec"]["minResources"] == {}


def test_volcano_rejects_selector_rayjob() -> None:
    data = copy.deepcopy(load("rayjob-sidecar.yaml"))
    del data["spec"]["rayClusterSpec"]
    data["spec"]["clusterSelector"] = {"ray.io/cluster": "rc"}
    with pytest.raises(volcano.GangSchedulingUnsupported, match="referencing an existing RayCluster"):
        volcano.job_pod_group(RayJob.model_validate(data), submitter=None)


def test_scenario28_yunikorn_gang() -> None:
    settings = BuildSettings(batch_scheduler="yunikorn")
    labels = {
        "ray.io/gang-scheduling-enabled": "true",
        "yunikorn.apache.org/app-id": "app1",
        "yunikorn.apache.org/queue": "root.q",
    }
    rc = cluster(labels)
    rc.spec.worker_group_specs[0].min_replicas = 2  # type: ignore[index]
    head, worker = pods(rc, settings)
    for pod, group in ((head, "headgroup"), (worker, "wg")):
        assert pod["spec"]["schedulerName"] == "yunikorn"
        assert pod["metadata"]["labels"]["applicationId"] == "app1"
        assert pod["metadata"]["labels"]["queue"] == "root.q"
        assert pod["metadata"]["annotations"]["yunikorn.apache.org/task-group-name"] == group
    groups = json.loads(head["metadata"]["annotations"]["yunikorn.apache.org/task-groups"])
    assert [(g["name"], g["minMember"]) for g in groups] == [("headgroup", 1), ("wg", 2)]
    assert groups[0]["minResource"] == {"cpu": "1", "memory": str(2 * 1024**3)}
    rj = job(labels)
    rc_obj = stamp(
        rj, rayjob_cluster(rj, name="job-b5n7q", job_id="id", settings=settings), group="", settings=settings
    )
    job_groups = json.loads(rc_obj["metadata"]["annotations"]["yunikorn.apache.org/task-groups"])
    assert job_groups[-1]["name"] == "submittergroup" and job_groups[-1]["minMember"] == 1
    rc2 = RayCluster.model_validate(rc_obj)
    inherited_pod = stamp(rc2, head_pod(rc2, settings=settings), group=HEAD_GROUP, settings=settings)
    inherited = inherited_pod["metadata"]["annotations"]["yunikorn.apache.org/task-groups"]
    assert json.loads(inherited) == job_groups
    sub = submitter_job(rj, cluster=rc2, job_id="id", dashboard_url="d:8265", settings=settings)
    sub["spec"]["template"] = stamp(rj, sub["spec"]["template"], group=SUBMITTER_GROUP, settings=settings)
    assert sub["spec"]["template"]["metadata"]["annotations"]["yunikorn.apache.org/task-group-name"] == (
        "submittergroup"
    )


def test_scenario29_kai() -> None:
    settings = BuildSettings(batch_scheduler="kai-scheduler")
    for pod in pods(cluster({"kai.scheduler/queue": "team-a"}), settings):
        assert pod["spec"]["schedulerName"] == "kai-scheduler"
        assert pod["metadata"]["labels"]["kai.scheduler/queue"] == "team-a"


def test_scenario29_scheduler_plugins() -> None:
    settings = BuildSettings(batch_scheduler="scheduler-plugins")
    rc = cluster({"ray.io/gang-scheduling-enabled": "true"})
    group = scheduler_plugins.pod_group(rc)
    assert group is not None
    assert (group["apiVersion"], group["metadata"]["name"]) == ("scheduling.x-k8s.io/v1alpha1", "rc")
    assert group["spec"]["minMember"] == 3
    for pod in pods(rc, settings):
        assert pod["spec"]["schedulerName"] == "scheduler-plugins-scheduler"
        assert pod["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == "rc"
    assert scheduler_plugins.pod_group(cluster({})) is None


def test_per_cr_scheduler_label_overrides_the_operator_setting() -> None:
    assert scheduler_for({"labels": {"ray.io/scheduler-name": "volcano"}}, BuildSettings()) == "volcano"
    assert scheduler_for({"labels": {"ray.io/scheduler-name": "none"}}, VOLCANO) is None
    assert scheduler_for({}, VOLCANO) == "volcano"
    assert "schedulerName" not in head_pod(cluster({}), settings=BuildSettings())["spec"]
    kai_rc = cluster({"ray.io/scheduler-name": "kai-scheduler"})
    picked = stamp(
        kai_rc, head_pod(kai_rc, settings=BuildSettings()), group=HEAD_GROUP, settings=BuildSettings()
    )
    assert picked["spec"]["schedulerName"] == "kai-scheduler"
    with pytest.raises(UnknownScheduler, match="'slurm' is not supported"):
        scheduler_for({"labels": {"ray.io/scheduler-name": "slurm"}}, VOLCANO)


def test_kueue_queue_label_passes_to_the_rayjob_cluster_not_pods() -> None:
    rj = job({"kueue.x-k8s.io/queue-name": "user-queue"})
    rc_obj = rayjob_cluster(rj, name="job-b5n7q", job_id="id", settings=BuildSettings())
    assert rc_obj["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "user-queue"
    rc = RayCluster.model_validate(rc_obj)
    head = stamp(rc, head_pod(rc, settings=BuildSettings()), group=HEAD_GROUP, settings=BuildSettings())
    assert scheduler_named("kueue", BuildSettings()).add_metadata_to_child(rj, head, HEAD_GROUP) == head
    assert "kueue.x-k8s.io/queue-name" not in head["metadata"]["labels"]


def test_every_scheduler_is_behind_the_one_protocol() -> None:
    rc = cluster({"ray.io/gang-scheduling-enabled": "true"})
    rj = job({"ray.io/gang-scheduling-enabled": "true"})
    for name in REGISTRY:
        scheduler = scheduler_named(name, BuildSettings())
        assert scheduler.name == name
        child = scheduler.add_metadata_to_child(rj, {"kind": "RayCluster", "spec": {}}, "")
        assert "schedulerName" not in child["spec"]  # only Pods get a schedulerName
        assert isinstance(scheduler.objects_on_submission(rc), list)
        assert isinstance(scheduler.objects_on_completion(rj, None), list)
    kinds = {
        n: [o["kind"] for o in scheduler_named(n, BuildSettings()).objects_on_submission(rc)]
        for n in REGISTRY
    }
    assert kinds == {
        "volcano": ["PodGroup"],
        "yunikorn": [],
        "kai-scheduler": [],
        "scheduler-plugins": ["PodGroup"],
        "kueue": [],
    }
    job_group = scheduler_named("volcano", BuildSettings()).objects_on_submission(rj)
    assert [g["metadata"]["ownerReferences"][0]["kind"] for g in job_group] == ["RayJob"]
    done = scheduler_named("volcano", BuildSettings()).objects_on_completion(rj, None)
    assert done[0]["spec"]["minMember"] == 0
    with pytest.raises(KeyError, match="registered: volcano"):
        scheduler_named("slurm", BuildSettings())


def test_volcano_rayjob_sidecar_counts_submitter_resources_not_a_pod() -> None:
    data = copy.deepcopy(load("rayjob-k8sjob.yaml"))
    data["metadata"]["labels"] = {}
    del data["spec"]["submitterPodTemplate"]
    data["spec"]["submissionMode"] = "SidecarMode"
    data["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].update(replicas=2, minReplicas=0)
    rj = RayJob.model_validate(data)
    (group,) = schedulers.scheduler_named("volcano", VOLCANO).objects_on_submission(rj)
    assert group["spec"]["minMember"] == 3  # the sidecar lives in the head Pod
    assert group["spec"]["minResources"] == {"cpu": "1500m", "memory": str(2 * 1024**3 + 200 * 1024**2)}


@pytest.mark.parametrize(
    ("labels", "settings", "mode", "expected"),
    [
        ({}, VOLCANO, "K8sJobMode", True),
        ({"ray.io/scheduler-name": "yunikorn"}, BuildSettings(), "K8sJobMode", True),
        ({"ray.io/scheduler-name": "kai-scheduler"}, BuildSettings(), "K8sJobMode", True),
        ({"ray.io/scheduler-name": "none"}, VOLCANO, "K8sJobMode", False),
        ({}, BuildSettings(), "K8sJobMode", False),
        ({}, BuildSettings(batch_scheduler="kueue"), "K8sJobMode", False),
        ({}, VOLCANO, "SidecarMode", False),
        ({}, VOLCANO, "HTTPMode", False),
        ({"ray.io/scheduler-name": "bogus"}, VOLCANO, "K8sJobMode", False),
    ],
)
def test_submitter_in_gang(
    labels: dict[str, str], settings: BuildSettings, mode: str, expected: bool
) -> None:
    rj = job(labels)
    rj.spec.submission_mode = mode
    assert schedulers.submitter_in_gang(rj, settings) is expected


def test_submitter_created_with_the_cluster_waits_for_the_dashboard_forever() -> None:
    settings = BuildSettings(batch_scheduler="volcano", submitter_image="rayside/submitter:1")
    rj = job()
    rc = RayCluster.model_validate(rayjob_cluster(rj, name="job-b5n7q", job_id="id", settings=settings))
    early = rayside_submitter_job(
        rj, cluster=rc, job_id="id", dashboard_url="d:8265", settings=settings, with_cluster=True
    )
    late = rayside_submitter_job(rj, cluster=rc, job_id="id", dashboard_url="d:8265", settings=settings)
    early_args = early["spec"]["template"]["spec"]["containers"][0]["args"]
    late_args = late["spec"]["template"]["spec"]["containers"][0]["args"]
    assert early_args == ["--wait-timeout", "0", *late_args]
    assert dashboard_address(rc, settings) == "job-b5n7q-head-svc.ns.svc.cluster.local:8265"


def test_scheduler_plugins_rayjob_one_gang_with_the_submitter() -> None:
    settings = BuildSettings(batch_scheduler="scheduler-plugins")
    rj = job({"ray.io/gang-scheduling-enabled": "true"})
    (group,) = scheduler_named("scheduler-plugins", settings).objects_on_submission(rj)
    assert group["metadata"]["name"] == "job"
    assert group["metadata"]["ownerReferences"][0]["kind"] == "RayJob"
    assert group["spec"] == {
        "minMember": 4,  # head + 2 workers + the submitter
        "minResources": {"cpu": "1500m", "memory": str(2 * 1024**3 + 200 * 1024**2)},
    }
    rc_obj = stamp(
        rj, rayjob_cluster(rj, name="job-b5n7q", job_id="id", settings=settings), group="", settings=settings
    )
    rc = RayCluster.model_validate(rc_obj)
    assert scheduler_named("scheduler-plugins", settings).objects_on_submission(rc) == []
    for pod in pods(rc, settings):
        assert pod["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == "job"
    sub = submitter_job(rj, cluster=rc, job_id="id", dashboard_url="d:8265", settings=settings)
    template = stamp(rj, sub["spec"]["template"], group=SUBMITTER_GROUP, settings=settings)
    assert template["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == "job"
    assert template["spec"]["schedulerName"] == "scheduler-plugins-scheduler"


def test_kai_rayjob_submitter_and_pods_share_the_queue() -> None:
    settings = BuildSettings(batch_scheduler="kai-scheduler")
    rj = job({"kai.scheduler/queue": "team-a"})
    rc_obj = stamp(
        rj, rayjob_cluster(rj, name="job-b5n7q", job_id="id", settings=settings), group="", settings=settings
    )
    rc = RayCluster.model_validate(rc_obj)
    sub = submitter_job(rj, cluster=rc, job_id="id", dashboard_url="d:8265", settings=settings)
    template = stamp(rj, sub["spec"]["template"], group=SUBMITTER_GROUP, settings=settings)
    for pod in [*pods(rc, settings), template]:
        assert pod["metadata"]["labels"]["kai.scheduler/queue"] == "team-a"
        assert pod["spec"]["schedulerName"] == "kai-scheduler"
    assert scheduler_named("kai-scheduler", settings).objects_on_submission(rj) == []
