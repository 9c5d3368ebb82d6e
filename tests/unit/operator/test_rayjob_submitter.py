"""Golden objects of the rayside submitter: K8sJobMode Job and SidecarMode head container."""

from __future__ import annotations

import copy
from typing import Any

from ray_operator.builders import rayjob as kuberay
from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster, RayJob
from ray_operator.rayjob.submitter import rayjob_cluster, sidecar_container, submitter_job
from tests.unit.operator.golden import load

IMAGE = "rayside/submitter:dev"
RAYSIDE = BuildSettings(submitter_image=IMAGE)
KUBERAY = BuildSettings()
URL = "job-b5n7q-head-svc.ns.svc.cluster.local:8265"
RESOURCES = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "200Mi"}}
LABELS = {
    "ray.io/originated-from-cr-name": "job",
    "ray.io/originated-from-crd": "RayJob",
    "app.kubernetes.io/created-by": "kuberay-operator",
}
TOKEN_ENV = [
    {"name": "RAY_AUTH_MODE", "value": "token"},
    {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": "job-b5n7q", "key": "auth_token"}}},
]


def k8s_job(*, template: bool = False, token: bool = True) -> RayJob:
    data = copy.deepcopy(load("rayjob-k8sjob.yaml"))
    if not template:
        data["spec"].pop("submitterPodTemplate", None)
    if token:
        data["spec"]["rayClusterSpec"]["authOptions"] = {"mode": "token"}
    return RayJob.model_validate(data)


def sidecar_job(*, token: bool = False) -> RayJob:
    data = copy.deepcopy(load("rayjob-sidecar.yaml"))
    if token:
        data["spec"]["rayClusterSpec"]["authOptions"] = {"mode": "token"}
    return RayJob.model_validate(data)


def cluster_of(job: RayJob, name: str, settings: BuildSettings) -> RayCluster:
    return RayCluster.model_validate(rayjob_cluster(job, name=name, job_id="id", settings=settings))


def test_k8s_job_mode_golden() -> None:
    job = k8s_job()
    cluster = cluster_of(job, "job-b5n7q", RAYSIDE)
    got = submitter_job(job, cluster=cluster, job_id="job-x2k9p", dashboard_url=URL, settings=RAYSIDE)
    assert got == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "job",
            "namespace": "ns",
            "labels": LABELS,
            "ownerReferences": [
                {
                    "apiVersion": "ray.io/v1",
                    "kind": "RayJob",
                    "name": "job",
                    "uid": "0b7c6a52-1111-4c1e-9d3e-000000000003",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 3,
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "ray-job-submitter",
                            "image": IMAGE,
                            "resources": RESOURCES,
                            "command": ["python3.11", "-m", "submitter"],
                            "args": [
                                "--runtime-env-json",
                                '{"env_vars":{"counter_name":"test_counter"},"pip":["requests==2.26.0"]}',
                                "--metadata-json",
                                '{"owner":"alice"}',
                                "--entrypoint-resources",
                                '{"custom": 1}',
                                "--entrypoint-num-cpus",
                                "1.500000",
                                "--",
                                "python /home/ray/samples/sample_code.py",
                            ],
                            "env": [
                                {"name": "PYTHONUNBUFFERED", "value": "1"},
                                {"name": "RAY_DASHBOARD_ADDRESS", "value": URL},
                                {"name": "RAY_JOB_SUBMISSION_ID", "value": "job-x2k9p"},
                                *TOKEN_ENV,
                            ],
                        }
                    ],
                },
            },
        },
    }


def test_k8s_job_mode_user_template_and_backoff_honoured() -> None:
    job = k8s_job(template=True)
    cluster = cluster_of(job, "job-b5n7q", RAYSIDE)
    got = submitter_job(job, cluster=cluster, job_id="job-x2k9p", dashboard_url=URL, settings=RAYSIDE)
    container = got["spec"]["template"]["spec"]["containers"][0]
    assert got["spec"]["backoffLimit"] == 3
    assert (container["name"], container["image"]) == ("my-submitter", "rayproject/ray:2.52.0")
    assert container["command"] == ["/bin/bash", "-ce", "--"]
    assert "--submission-id job-x2k9p" in container["args"][0]


def test_sidecar_golden_token_from_secret_only() -> None:
    job = sidecar_job(token=True)
    cluster = cluster_of(job, "job-b5n7q", RAYSIDE)
    got = sidecar_container(job, cluster=cluster, job_id="sidecar-job-x7z9k", settings=RAYSIDE)
    assert got == {
        "name": "ray-job-submitter",
        "image": IMAGE,
        "resources": RESOURCES,
        "command": ["python3.11", "-m", "submitter"],
        "args": [
            "--sidecar",
            "--fail-on-job-failure",
            "--",
            'python -c "import ray; ray.init(); print(ray.cluster_resources())"',
        ],
        "env": [
            {"name": "PYTHONUNBUFFERED", "value": "1"},
            {"name": "RAY_DASHBOARD_ADDRESS", "value": "http://127.0.0.1:8265"},
            {"name": "RAY_JOB_SUBMISSION_ID", "value": "sidecar-job-x7z9k"},
            *TOKEN_ENV,
        ],
    }


def test_sidecar_uses_the_head_dashboard_port() -> None:
    data = copy.deepcopy(load("rayjob-sidecar.yaml"))
    head = data["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    head["ports"] = [{"name": "dashboard", "containerPort": 9265}]
    job = RayJob.model_validate(data)
    got = sidecar_container(job, cluster=cluster_of(job, "c", RAYSIDE), job_id="i", settings=RAYSIDE)
    assert {"name": "RAY_DASHBOARD_ADDRESS", "value": "http://127.0.0.1:9265"} in got["env"]


def test_cluster_head_carries_exactly_one_rayside_sidecar() -> None:
    job = sidecar_job()
    obj = rayjob_cluster(job, name="sidecar-job-q2w4r", job_id="sidecar-job-x7z9k", settings=RAYSIDE)
    head = obj["spec"]["headGroupSpec"]["template"]["spec"]
    assert [c["name"] for c in head["containers"]] == ["ray-head", "ray-job-submitter"]
    assert head["containers"][1]["image"] == IMAGE
    assert head["containers"][1]["args"][:2] == ["--sidecar", "--fail-on-job-failure"]
    assert head["restartPolicy"] == "Never"
    assert obj["metadata"]["annotations"]["ray.io/disable-provisioned-head-restart"] == "true"


def test_without_submitter_image_kuberay_objects_unchanged() -> None:
    job = sidecar_job()
    ours = rayjob_cluster(job, name="c", job_id="i", settings=KUBERAY)
    assert ours == kuberay.rayjob_cluster(job, name="c", job_id="i", settings=KUBERAY)
    k8s = k8s_job(token=False)
    assert rayjob_cluster(k8s, name="c", job_id="i", settings=RAYSIDE) == kuberay.rayjob_cluster(
        k8s, name="c", job_id="i", settings=RAYSIDE
    )


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [s for value in obj.values() for s in _strings(value)]
    if isinstance(obj, list):
        return [s for value in obj for s in _strings(value)]
    return [obj] if isinstance(obj, str) else []


def test_no_token_literal_anywhere() -> None:
    job = k8s_job()
    cluster = cluster_of(job, "job-b5n7q", RAYSIDE)
    objects = [
        submitter_job(job, cluster=cluster, job_id="j", dashboard_url=URL, settings=RAYSIDE),
        sidecar_container(sidecar_job(token=True), cluster=cluster, job_id="j", settings=RAYSIDE),
    ]
    for obj in objects:
        containers = obj["spec"]["template"]["spec"]["containers"] if "spec" in obj else [obj]
        for container in containers:
            token = [e for e in container["env"] if e["name"] == "RAY_AUTH_TOKEN"]
            assert token and all("value" not in e and "secretKeyRef" in e["valueFrom"] for e in token)
            assert not any("TOKEN" in s for s in _strings(container.get("args", [])))
