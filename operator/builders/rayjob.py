"""RayJob children: the owned RayCluster, the K8sJobMode
submitter Job, the SidecarMode submitter container, the RayJob-level head Service and the HTTPMode
submit body.

With `BuildSettings.submitter_image` set (and no user `submitterPodTemplate`), the default submitter runs the
lightweight no-Ray submitter `rayside submit <flags> -- <entrypoint>` from that image instead of the `ray job`
CLI script in the Ray image.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import yaml

from ray_operator import constants as c
from ray_operator.builders import containers as ctr
from ray_operator.builders import names
from ray_operator.builders.facts import cluster_facts
from ray_operator.builders.meta import owner_reference
from ray_operator.builders.resources import template_resources
from ray_operator.builders.services import head_service_labels, head_service_ports
from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster, RayClusterSpec, RayJob
from rayside.objects import JSON

DEFAULT_SUBMITTER_RESOURCES: JSON = {
    "limits": {"cpu": "1", "memory": "1Gi"},
    "requests": {"cpu": "500m", "memory": "200Mi"},
}


def go_quote(text: str) -> str:
    """Double-quoted with `\\"`, `\\\\`, `\\n` escapes (like Go's strconv.Quote for printable text)."""
    return json.dumps(text, ensure_ascii=False)


def runtime_env_json(runtime_env_yaml: str) -> str:
    """runtimeEnvYAML → compact JSON with sorted keys (as sigs.k8s.io/yaml produces)."""
    return json.dumps(yaml.safe_load(runtime_env_yaml), separators=(",", ":"), sort_keys=True)


def _mode(job: RayJob) -> str:
    return job.spec.submission_mode or "K8sJobMode"


def _submit_flags(job: RayJob) -> list[str]:
    spec = job.spec
    flags: list[str] = []
    if spec.runtime_env_yaml:
        flags += ["--runtime-env-json", go_quote(runtime_env_json(spec.runtime_env_yaml))]
    if spec.metadata:
        flags += [
            "--metadata-json",
            go_quote(json.dumps(spec.metadata, separators=(",", ":"), sort_keys=True)),
        ]
    return flags


def _resource_flags(job: RayJob) -> list[str]:
    spec = job.spec
    flags: list[str] = []
    if spec.entrypoint_num_cpus and spec.entrypoint_num_cpus > 0:
        flags += ["--entrypoint-num-cpus", f"{spec.entrypoint_num_cpus:f}"]
    if spec.entrypoint_num_gpus and spec.entrypoint_num_gpus > 0:
        flags += ["--entrypoint-num-gpus", f"{spec.entrypoint_num_gpus:f}"]
    if spec.entrypoint_resources:
        flags += ["--entrypoint-resources", go_quote(spec.entrypoint_resources)]
    return flags


def submit_command(job: RayJob, *, job_id: str, address: str, sidecar: bool = False, probe: str = "") -> str:
    """The one-line shell script of the submitter (K8sJobMode; sidecar=True for SidecarMode).

    address: `http://<dashboardURL>` (K8sJobMode) or `http://127.0.0.1:<port>` (sidecar); probe: the URL base
    the wait loop polls (defaults to address; SidecarMode polls `http://localhost:<port>`).
    """
    probe = probe or address
    check = (
        f'python -c "import urllib.request; '
        f"r=urllib.request.urlopen('{probe}/api/gcs_healthz', timeout=10); "
        "exit(0 if b'success' in r.read() else 1)\""
    )
    tokens = [
        "until",
        check,
        ">/dev/null 2>&1 ;",
        "do echo",
        f'"Waiting for Ray Dashboard GCS to become healthy at {address} ..."',
        "; sleep 2 ; done ;",
    ]
    if not sidecar:
        tokens += ["if ! ray job status --address", address, job_id, ">/dev/null 2>&1 ; then"]
    tokens += ["ray job submit --address", address]
    if not sidecar:
        tokens.append("--no-wait")
    tokens += _submit_flags(job)
    if job_id:
        tokens += ["--submission-id", job_id]
    tokens += _resource_flags(job)
    tokens += ["--", (job.spec.entrypoint or "").strip(), ";"]
    if not sidecar:
        tokens += ["fi ; ray job logs --address", address, "--follow", job_id]
    return " ".join(tokens)


def lightweight_submitter_args(job: RayJob) -> list[str]:
    """argv after `rayside submit` for the no-Ray submitter (flags unquoted: no shell in between)."""
    spec = job.spec
    args: list[str] = []
    if spec.runtime_env_yaml:
        args += ["--runtime-env-json", runtime_env_json(spec.runtime_env_yaml)]
    if spec.metadata:
        args += ["--metadata-json", json.dumps(spec.metadata, separators=(",", ":"), sort_keys=True)]
    if spec.entrypoint_resources:
        args += ["--entrypoint-resources", spec.entrypoint_resources]
    for flag, value in (
        ("--entrypoint-num-cpus", spec.entrypoint_num_cpus),
        ("--entrypoint-num-gpus", spec.entrypoint_num_gpus),
    ):
        if value and value > 0:
            args += [flag, f"{value:f}"]
    return [*args, "--", (spec.entrypoint or "").strip()]


def _head_image(spec: RayClusterSpec | None) -> str | None:
    if spec is None:
        return None
    containers = (spec.head_group_spec.template.get("spec") or {}).get("containers") or [{}]
    image = containers[0].get("image")
    return str(image) if image else None


def default_submitter_container(image: str | None) -> JSON:
    """The `ray-job-submitter` container KubeRay uses when no template is given (1 CPU/1Gi, 500m/200Mi)."""
    return {
        "name": c.SUBMITTER_CONTAINER,
        "image": image,
        "resources": copy.deepcopy(DEFAULT_SUBMITTER_RESOURCES),
    }


def submitter_resources(job: RayJob, settings: BuildSettings) -> dict[str, Decimal]:
    """Resources of the submitter (for Volcano minResources / YuniKorn `submittergroup`)."""
    if _mode(job) == "K8sJobMode" and job.spec.submitter_pod_template is not None:
        return template_resources(job.spec.submitter_pod_template)
    template = {"spec": {"containers": [default_submitter_container(None)]}}
    return template_resources(template)


def _submitter_env(
    dashboard_url: str, job_id: str, cluster: RayCluster, settings: BuildSettings
) -> list[JSON]:
    facts = cluster_facts(cluster, settings)
    env = [
        ctr.env_value("PYTHONUNBUFFERED", "1"),
        ctr.env_value("RAY_DASHBOARD_ADDRESS", dashboard_url),
        ctr.env_value("RAY_JOB_SUBMISSION_ID", job_id),
    ]
    env += facts.auth_env()
    return env


def _job_labels(job: RayJob) -> dict[str, str]:
    return {
        c.LABEL_ORIGINATED_FROM_CR_NAME: str(job.metadata.get("name", "")),
        c.LABEL_ORIGINATED_FROM_CRD: c.KIND_RAYJOB,
        c.LABEL_CREATED_BY: c.CREATED_BY,
    }


def _configure_submitter(
    container: JSON, *, script: str, lightweight: list[str] | None, settings: BuildSettings
) -> None:
    if container.get("command"):
        return
    if lightweight is not None:
        container["command"] = ["rayside", "submit"]
        container["args"] = lightweight
        return
    container["command"] = ["/bin/bash", "-cel" if settings.enable_login_shell else "-ce", "--"]
    container["args"] = [script]


def submitter_job(
    job: RayJob, *, cluster: RayCluster, job_id: str, dashboard_url: str, settings: BuildSettings
) -> JSON:
    """The K8sJobMode batch/v1 Job `<rayjob>` running the submitter against `http://<dashboardURL>`.

    Its pod template carries no batch-scheduler metadata: the RayJob controller stamps it through
    `schedulers.stamp(job, template, group=SUBMITTER_GROUP, ...)`."""
    user_template = job.spec.submitter_pod_template
    lightweight: list[str] | None = None
    if user_template is not None:
        template = copy.deepcopy(user_template)
    else:
        image = settings.submitter_image or _head_image(cluster.spec)
        template = {"spec": {"restartPolicy": "Never", "containers": [default_submitter_container(image)]}}
        if settings.submitter_image:
            lightweight = lightweight_submitter_args(job)
    spec = template.setdefault("spec", {})
    containers = spec.setdefault("containers", [{}])
    address = dashboard_url if dashboard_url.startswith("http://") else f"http://{dashboard_url}"
    script = submit_command(job, job_id=job_id, address=address)
    _configure_submitter(containers[0], script=script, lightweight=lightweight, settings=settings)
    env = _submitter_env(dashboard_url, job_id, cluster, settings)
    ctr.append_env(containers[0], env[:3], if_absent=False)
    ctr.append_env(containers[0], env[3:])
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **_job_labels(job)}
    backoff = job.spec.submitter_config.backoff_limit if job.spec.submitter_config else None
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job.metadata.get("name"),
            "namespace": job.metadata.get("namespace") or "default",
            "labels": _job_labels(job),
            "ownerReferences": [owner_reference(job.metadata, kind=c.KIND_RAYJOB)],
        },
        "spec": {"backoffLimit": 2 if backoff is None else backoff, "template": template},
    }


def dashboard_port(spec: RayClusterSpec) -> int:
    """The head container port named `dashboard`, else 8265."""
    containers = (spec.head_group_spec.template.get("spec") or {}).get("containers") or [{}]
    for port in containers[0].get("ports") or []:
        if port.get("name") == "dashboard":
            return int(port["containerPort"])
    return c.DEFAULT_DASHBOARD_PORT


def sidecar_submitter_container(
    job: RayJob, *, cluster: RayCluster, job_id: str, settings: BuildSettings
) -> JSON:
    """The SidecarMode `ray-job-submitter` container appended to the head Pod template."""
    port = dashboard_port(cluster.spec)
    container = default_submitter_container(_head_image(cluster.spec))
    script = submit_command(
        job, job_id=job_id, address=f"http://127.0.0.1:{port}", sidecar=True, probe=f"http://localhost:{port}"
    )
    _configure_submitter(container, script=script, lightweight=None, settings=settings)
    env = _submitter_env("", job_id, cluster, settings)
    ctr.append_env(container, env)
    return container


def rayjob_cluster(job: RayJob, *, name: str, job_id: str, settings: BuildSettings) -> JSON:
    """The RayCluster `<name>` (= status.rayClusterName) a RayJob owns; raises ValueError without a spec.

    In K8sJobMode with a batch scheduler the RayJob controller stamps it through
    `schedulers.stamp(job, cluster, group="", ...)` (labels/annotations only)."""
    if job.spec.ray_cluster_spec is None:
        raise ValueError("spec.rayClusterSpec is required to create a RayCluster for a RayJob")
    mode = _mode(job)
    labels = {
        **(job.metadata.get("labels") or {}),
        c.LABEL_ORIGINATED_FROM_CR_NAME: str(job.metadata.get("name", "")),
        c.LABEL_ORIGINATED_FROM_CRD: c.KIND_RAYJOB,
        c.LABEL_JOB_SUBMISSION_MODE: mode,
    }
    annotations = dict(job.metadata.get("annotations") or {})
    if mode == "SidecarMode":
        annotations[c.ANN_DISABLE_PROVISIONED_HEAD_RESTART] = "true"
    metadata: JSON = {"name": name, "namespace": job.metadata.get("namespace") or "default", "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    metadata["ownerReferences"] = [owner_reference(job.metadata, kind=c.KIND_RAYJOB)]
    spec = job.spec.ray_cluster_spec.model_dump(by_alias=True, exclude_unset=True, mode="json")
    obj: JSON = {"apiVersion": c.API_VERSION, "kind": c.KIND_RAYCLUSTER, "metadata": metadata, "spec": spec}
    if mode == "SidecarMode":
        cluster = RayCluster.model_validate(obj)
        head_template = spec["headGroupSpec"].setdefault("template", {})
        head_spec = head_template.setdefault("spec", {})
        head_spec.setdefault("containers", []).append(
            sidecar_submitter_container(job, cluster=cluster, job_id=job_id, settings=settings)
        )
        head_spec["restartPolicy"] = "Never"
    return obj


def rayjob_head_service(job: RayJob, cluster: RayCluster, *, settings: BuildSettings) -> JSON:
    """`<rayjob>-head-svc`: the cluster's head Service re-labelled for and owned by the RayJob."""
    from ray_operator.builders.services import head_service

    service = head_service(cluster, settings=settings)
    job_name = str(job.metadata.get("name", ""))
    service["metadata"] = {
        "name": names.default_head_service_name(job_name),
        "namespace": job.metadata.get("namespace") or "default",
        "labels": {
            c.LABEL_ORIGINATED_FROM_CR_NAME: job_name,
            c.LABEL_ORIGINATED_FROM_CRD: c.KIND_RAYJOB,
            c.LABEL_NODE_TYPE: c.NODE_TYPE_HEAD,
            c.LABEL_IDENTIFIER: f"{job_name}-head",
        },
        "ownerReferences": [owner_reference(job.metadata, kind=c.KIND_RAYJOB)],
    }
    service["spec"]["selector"] = head_service_labels(cluster, str(cluster.metadata.get("name", "")))
    service["spec"]["ports"] = service["spec"].get("ports") or head_service_ports(
        cluster.spec.head_group_spec.template
    )
    return service


def http_submit_body(job: RayJob, *, job_id: str) -> JSON:
    """HTTPMode: the JSON body the operator POSTs to `/api/jobs/`."""
    spec = job.spec
    body: JSON = {"entrypoint": (spec.entrypoint or "").strip(), "submission_id": job_id}
    if spec.metadata:
        body["metadata"] = dict(spec.metadata)
    if spec.runtime_env_yaml:
        body["runtime_env"] = yaml.safe_load(spec.runtime_env_yaml)
    if spec.entrypoint_num_cpus:
        body["entrypoint_num_cpus"] = spec.entrypoint_num_cpus
    if spec.entrypoint_num_gpus:
        body["entrypoint_num_gpus"] = spec.entrypoint_num_gpus
    if spec.entrypoint_resources:
        body["entrypoint_resources"] = json.loads(spec.entrypoint_resources)
    return body
