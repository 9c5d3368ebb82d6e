"""The objects that run the no-Ray rayside submitter for a RayJob (pure builders).

`ray_operator.builders.rayjob` already builds the KubeRay-compatible children; this module reuses it and
adds what it lacks for the rayside submitter image (`BuildSettings.submitter_image`, the operator's
`--submitter-image`):

* K8sJobMode: `submitter_job` is the builders' Job. With a submitter image and no `submitterPodTemplate`
  its container runs `python3.11 -m submitter <flags> -- <entrypoint>` (exit 0 on any terminal status:
  the operator reads the outcome from the dashboard); a user template and `submitterConfig.backoffLimit`
  are honoured as in KubeRay.
* SidecarMode: `sidecar_container` runs `python3.11 -m submitter --sidecar --fail-on-job-failure` from the
  submitter image against `http://127.0.0.1:<dashboard port>` (it waits for the head itself and exits 1
  on FAILED); without an image it is KubeRay's `ray job submit` script in the head image.
  `rayjob_cluster` builds the owned cluster with that sidecar.

The submission id and dashboard address reach the submitter through `RAY_JOB_SUBMISSION_ID` /
`RAY_DASHBOARD_ADDRESS`; the Ray token only as `RAY_AUTH_TOKEN` from a `secretKeyRef` (never argv or a
literal env value).
"""

from __future__ import annotations

from ray_operator import constants as c
from ray_operator.builders import containers as ctr
from ray_operator.builders import names
from ray_operator.builders import rayjob as kuberay
from ray_operator.builders.facts import cluster_facts
from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster, RayJob
from rayside.objects import JSON

RAYSIDE_SUBMIT = ["python3.11", "-m", "submitter"]
"""The submitter image has no `rayside` script (only `/usr/bin/python3.11` on `PATH=/usr/bin`, its
entrypoint being `python3.11 -m submitter`); a command is still given so that a runtime without images (the
process kubelet) runs the same program from its own `PATH`."""
SIDECAR_FLAGS = ["--sidecar", "--fail-on-job-failure"]


def dashboard_address(cluster: RayCluster, settings: BuildSettings) -> str:
    """`<head service fqdn>:<dashboard port>`: the address a cluster's dashboard has once it is up."""
    namespace = str(cluster.metadata.get("namespace") or "default")
    host = names.fqdn(names.head_service_name(cluster), namespace, settings.cluster_domain)
    return f"{host}:{kuberay.dashboard_port(cluster.spec)}"


def submitter_job(
    job: RayJob,
    *,
    cluster: RayCluster,
    job_id: str,
    dashboard_url: str,
    settings: BuildSettings,
    with_cluster: bool = False,
) -> JSON:
    """The K8sJobMode batch/v1 Job `<rayjob>` (see module docstring). `with_cluster`: created together with
    the cluster (a gang member), so the rayside submitter waits for the dashboard without a time limit."""
    obj = kuberay.submitter_job(
        job, cluster=cluster, job_id=job_id, dashboard_url=dashboard_url, settings=settings
    )
    container = obj["spec"]["template"]["spec"]["containers"][0]
    if settings.submitter_image and container.get("command") == ["rayside", "submit"]:
        container["command"] = list(RAYSIDE_SUBMIT)
        if with_cluster:
            container["args"] = ["--wait-timeout", "0", *container.get("args", [])]
    return obj


def sidecar_container(job: RayJob, *, cluster: RayCluster, job_id: str, settings: BuildSettings) -> JSON:
    """The SidecarMode `ray-job-submitter` container for the head Pod of `cluster`."""
    if not settings.submitter_image:
        return kuberay.sidecar_submitter_container(job, cluster=cluster, job_id=job_id, settings=settings)
    container = kuberay.default_submitter_container(settings.submitter_image)
    container["command"] = list(RAYSIDE_SUBMIT)
    container["args"] = [*SIDECAR_FLAGS, *kuberay.lightweight_submitter_args(job)]
    address = f"http://127.0.0.1:{kuberay.dashboard_port(cluster.spec)}"
    env = [
        ctr.env_value("PYTHONUNBUFFERED", "1"),
        ctr.env_value("RAY_DASHBOARD_ADDRESS", address),
        ctr.env_value("RAY_JOB_SUBMISSION_ID", job_id),
        *cluster_facts(cluster, settings).auth_env(),
    ]
    ctr.append_env(container, env)
    return container


def rayjob_cluster(job: RayJob, *, name: str, job_id: str, settings: BuildSettings) -> JSON:
    """The owned RayCluster; in SidecarMode its head carries `sidecar_container` (the rayside one if set)."""
    obj = kuberay.rayjob_cluster(job, name=name, job_id=job_id, settings=settings)
    if (job.spec.submission_mode or "K8sJobMode") != "SidecarMode" or not settings.submitter_image:
        return obj
    head_spec = obj["spec"]["headGroupSpec"]["template"]["spec"]
    kept = [item for item in head_spec["containers"] if item.get("name") != c.SUBMITTER_CONTAINER]
    cluster = RayCluster.model_validate(obj)
    head_spec["containers"] = [
        *kept,
        sidecar_container(job, cluster=cluster, job_id=job_id, settings=settings),
    ]
    return obj
