"""RayJob builders: cluster, submitter Job/sidecar, head Service, HTTPMode body (scenarios 15, 20, 22)."""

from __future__ import annotations

import copy
from typing import Any

from ray_operator.builders import (
    BuildSettings,
    head_pod,
    http_submit_body,
    rayjob_cluster,
    rayjob_head_service,
    submit_command,
    submitter_job,
)
from ray_operator.models import RayCluster, RayJob
from tests.unit.operator.golden import load

SETTINGS = BuildSettings()


def rayjob(name: str = "rayjob-k8sjob.yaml", **spec: Any) -> RayJob:
    data = copy.deepcopy(load(name))
    data["spec"].update(spec)
    return RayJob.model_validate(data)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_kuberay_submit_command_example() -> None:
    job = RayJob.model_validate(
        {
            "metadata": {"name": "job"},
            "spec": {
                "entrypoint": " echo no quote 'single quote' \"double quote\" ",
                "runtimeEnvYAML": "test: test",
                "metadata": {"testKey": "testValue"},
                "entrypointNumCpus": 1,
                "entrypointNumGpus": 0.5,
                "entrypointResources": '{"Custom_1": 1, "Custom_2": 5.5}',
                "clusterSelector": {"ray.io/cluster": "rc"},
            },
        }
    )
    command = submit_command(job, job_id="testJobId", address="http://127.0.0.1:8265")
    assert command.startswith(
        'until python -c "import urllib.request; '
        "r=urllib.request.urlopen('http://127.0.0.1:8265/api/gcs_healthz', timeout=10); "
        "exit(0 if b'success' in r.read() else 1)\" >/dev/null 2>&1 ; do echo "
        '"Waiting for Ray Dashboard GCS to become healthy at http://127.0.0.1:8265 ..." ; sleep 2 ; done ; '
    )
    assert command.endswith(
        "if ! ray job status --address http://127.0.0.1:8265 testJobId >/dev/null 2>&1 ; then "
        "ray job submit --address http://127.0.0.1:8265 --no-wait "
        '--runtime-env-json "{\\"test\\":\\"test\\"}" '
        '--metadata-json "{\\"testKey\\":\\"testValue\\"}" '
        "--submission-id testJobId --entrypoint-num-cpus 1.000000 --entrypoint-num-gpus 0.500000 "
        '--entrypoint-resources "{\\"Custom_1\\": 1, \\"Custom_2\\": 5.5}" '
        "-- echo no quote 'single quote' \"double quote\" ; "
        "fi ; ray job logs --address http://127.0.0.1:8265 --follow testJobId"
    )


def test_scenario15_owned_cluster() -> None:
    job = rayjob()
    obj = rayjob_cluster(job, name="job-b5n7q", job_id="job-x2k9p", settings=SETTINGS)
    meta = obj["metadata"]
    assert (obj["kind"], meta["name"], meta["namespace"]) == ("RayCluster", "job-b5n7q", "ns")
    assert meta["labels"]["ray.io/originated-from-cr-name"] == "job"
    assert meta["labels"]["ray.io/originated-from-crd"] == "RayJob"
    assert meta["labels"]["ray.io/job-submission-mode"] == "K8sJobMode"
    assert meta["labels"]["kueue.x-k8s.io/queue-name"] == "user-queue"
    assert meta["ownerReferences"][0]["kind"] == "RayJob" and meta["ownerReferences"][0]["name"] == "job"
    assert job.spec.ray_cluster_spec is not None
    assert obj["spec"] == job.spec.ray_cluster_spec.to_dict()
    head = head_pod(RayCluster.model_validate(obj), settings=SETTINGS)
    tags = env_of(head["spec"]["containers"][0])["RAY_USAGE_STATS_EXTRA_TAGS"]
    assert tags.endswith("kuberay_crd=RayJob")


def test_scenario15_submitter_job() -> None:
    job = rayjob()
    job.spec.submitter_pod_template = None
    job.spec.submitter_config = None
    cluster = RayCluster.model_validate(
        rayjob_cluster(job, name="job-b5n7q", job_id="job-x2k9p", settings=SETTINGS)
    )
    url = "job-b5n7q-head-svc.ns.svc.cluster.local:8265"
    obj = submitter_job(job, cluster=cluster, job_id="job-x2k9p", dashboard_url=url, settings=SETTINGS)
    assert (obj["apiVersion"], obj["kind"], obj["metadata"]["name"]) == ("batch/v1", "Job", "job")
    assert obj["spec"]["backoffLimit"] == 2
    assert obj["metadata"]["labels"] == {
        "ray.io/originated-from-cr-name": "job",
        "ray.io/originated-from-crd": "RayJob",
        "app.kubernetes.io/created-by": "kuberay-operator",
    }
    template = obj["spec"]["template"]
    assert template["spec"]["restartPolicy"] == "Never"
    assert template["metadata"]["labels"]["app.kubernetes.io/created-by"] == "kuberay-operator"
    container = template["spec"]["containers"][0]
    assert (container["name"], container["image"]) == ("ray-job-submitter", "rayproject/ray:2.52.0")
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "200Mi"}
    assert container["command"] == ["/bin/bash", "-ce", "--"]
    assert f"ray job logs --address http://{url} --follow job-x2k9p" in container["args"][0]
    env = env_of(container)
    assert env["PYTHONUNBUFFERED"] == "1" and env["RAY_DASHBOARD_ADDRESS"] == url
    assert env["RAY_JOB_SUBMISSION_ID"] == "job-x2k9p" and "RAY_AUTH_TOKEN" not in env


def test_submitter_template_and_auth() -> None:
    job = rayjob()
    assert job.spec.ray_cluster_spec is not None
    job.spec.ray_cluster_spec.auth_options = RayCluster.model_validate(
        {"spec": {"headGroupSpec": {"template": {}}, "authOptions": {"mode": "token"}}}
    ).spec.auth_options
    cluster = RayCluster.model_validate(rayjob_cluster(job, name="job-b5n7q", job_id="id", settings=SETTINGS))
    obj = submitter_job(job, cluster=cluster, job_id="id", dashboard_url="d:8265", settings=SETTINGS)
    assert obj["spec"]["backoffLimit"] == 3
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "my-submitter" and container["command"] == ["/bin/bash", "-ce", "--"]
    env = env_of(container)
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN"] == {"secretKeyRef": {"name": "job-b5n7q", "key": "auth_token"}}


def test_lightweight_submitter_image() -> None:
    job = RayJob.model_validate({**load("rayjob-k8sjob.yaml")})
    job.spec.submitter_pod_template = None
    settings = BuildSettings(submitter_image="rayside/submitter:dev")
    cluster = RayCluster.model_validate(rayjob_cluster(job, name="job-b5n7q", job_id="id", settings=settings))
    container = submitter_job(job, cluster=cluster, job_id="id", dashboard_url="d:8265", settings=settings)[
        "spec"
    ]["template"]["spec"]["containers"][0]
    assert container["image"] == "rayside/submitter:dev" and container["command"] == ["rayside", "submit"]
    assert container["args"][-2:] == ["--", "python /home/ray/samples/sample_code.py"]
    assert container["args"][:2] == [
        "--runtime-env-json",
        '{"env_vars":{"counter_name":"test_counter"},"pip":["requests==2.26.0"]}',
    ]
    assert "--entrypoint-num-cpus" in container["args"] and "1.500000" in container["args"]


def test_scenario22_sidecar_mode() -> None:
    job = rayjob("rayjob-sidecar.yaml")
    obj = rayjob_cluster(job, name="sidecar-job-q2w4r", job_id="sidecar-job-x7z9k", settings=SETTINGS)
    assert obj["metadata"]["annotations"]["ray.io/disable-provisioned-head-restart"] == "true"
    assert obj["metadata"]["labels"]["ray.io/job-submission-mode"] == "SidecarMode"
    head = head_pod(RayCluster.model_validate(obj), settings=SETTINGS)
    assert head["spec"]["restartPolicy"] == "Never"
    names = [c["name"] for c in head["spec"]["containers"]]
    assert names == ["ray-head", "ray-job-submitter"]
    sidecar = head["spec"]["containers"][1]
    script = sidecar["args"][0]
    assert "urlopen('http://localhost:8265/api/gcs_healthz'" in script
    assert "ray job submit --address http://127.0.0.1:8265 --submission-id sidecar-job-x7z9k --" in script
    assert "--no-wait" not in script and "ray job logs" not in script
    assert env_of(sidecar)["RAY_JOB_SUBMISSION_ID"] == "sidecar-job-x7z9k"


def test_rayjob_head_service_selects_the_cluster_head() -> None:
    job = rayjob()
    cluster = RayCluster.model_validate(rayjob_cluster(job, name="job-b5n7q", job_id="id", settings=SETTINGS))
    svc = rayjob_head_service(job, cluster, settings=SETTINGS)
    assert svc["metadata"]["name"] == "job-head-svc"
    assert svc["metadata"]["labels"]["ray.io/identifier"] == "job-head"
    assert svc["metadata"]["ownerReferences"][0]["kind"] == "RayJob"
    assert svc["spec"]["selector"]["ray.io/cluster"] == "job-b5n7q"
    assert svc["spec"]["selector"]["ray.io/identifier"] == "job-b5n7q-head"


def test_scenario20_http_body() -> None:
    body = http_submit_body(rayjob(), job_id="job-x2k9p")
    assert body["submission_id"] == "job-x2k9p"
    assert body["entrypoint"] == "python /home/ray/samples/sample_code.py"
    assert body["runtime_env"] == {"pip": ["requests==2.26.0"], "env_vars": {"counter_name": "test_counter"}}
    assert body["entrypoint_resources"] == {"custom": 1} and body["entrypoint_num_cpus"] == 1.5
