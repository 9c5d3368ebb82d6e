"""The GCS fault-tolerance Redis cleanup Job `<cluster>-redis-cleanup`.

Created when a RayCluster with Redis-backed GCS FT is deleted, after its head Pod is gone: a clone of the
head Pod (same image, env — so `RAY_REDIS_ADDRESS`, `REDIS_PASSWORD` and the storage namespace come from
the same place, as references, never as values here) reduced to the Ray container, labelled node type
`redis-cleanup`, 200m/256Mi, no probes, `restartPolicy: Never`, `backoffLimit: 0`,
`activeDeadlineSeconds: 300`, running Ray's `cleanup_redis_storage` for the cluster's storage namespace.
"""

from __future__ import annotations

from ray_operator import constants as c
from ray_operator.builders import containers as ctr
from ray_operator.builders import names
from ray_operator.builders.meta import owner_reference
from ray_operator.builders.pods import head_pod
from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster
from rayside.objects import JSON

NODE_TYPE_REDIS_CLEANUP = "redis-cleanup"
JOB_BACKOFF_LIMIT = 0
JOB_ACTIVE_DEADLINE_SECONDS = 300
CLEANUP_RESOURCES = {"cpu": "200m", "memory": "256Mi"}

# Reads everything from the container's environment: the first address of RAY_REDIS_ADDRESS (a bare
# host:port means redis://), credentials from REDIS_USERNAME/REDIS_PASSWORD or the URL, the namespace from
# RAY_external_storage_namespace. Exits 1 when Ray reports the namespace was not deleted.
CLEANUP_SCRIPT = (
    "import os, sys; "
    "from urllib.parse import urlparse; "
    "from ray._private.gcs_utils import cleanup_redis_storage; "
    "first = os.environ.get('RAY_REDIS_ADDRESS', '').split(',')[0]; "
    "url = urlparse(first if '://' in first else 'redis://' + first); "
    "done = cleanup_redis_storage(host=url.hostname, port=url.port, "
    "username=os.environ.get('REDIS_USERNAME', url.username), "
    "password=os.environ.get('REDIS_PASSWORD', url.password or ''), "
    "use_ssl=url.scheme == 'rediss', "
    "storage_namespace=os.environ.get('RAY_external_storage_namespace')); "
    "sys.exit(0 if done else 1)"
)
CLEANUP_HINT = (
    "echo 'Deleting the GCS storage namespace of this RayCluster from Redis. If this fails, delete the "
    "namespace by hand and remove the finalizer ray.io/gcs-ft-redis-cleanup-finalizer "
    "(see https://docs.ray.io/en/master/cluster/kubernetes/user-guides/kuberay-gcs-ft.html)'"
)
CLEANUP_ENV = (
    ctr.env_value("RAY_redis_db_connect_retries", "120"),
    ctr.env_value("RAY_redis_db_connect_wait_milliseconds", "500"),
)


def redis_cleanup_job(cluster: RayCluster, *, settings: BuildSettings) -> JSON:
    """The batch/v1 Job that deletes the cluster's storage namespace from Redis, owned by the cluster."""
    pod = head_pod(cluster, settings=settings)
    meta, spec = pod["metadata"], pod["spec"]
    labels = {**(meta.get("labels") or {}), c.LABEL_NODE_TYPE: NODE_TYPE_REDIS_CLEANUP}
    annotations = dict(meta.get("annotations") or {})
    ray = spec["containers"][0]
    ray["command"] = settings.shell()
    ray["args"] = [f'{CLEANUP_HINT} && python -c "{CLEANUP_SCRIPT}"']
    ray.pop("livenessProbe", None)
    ray.pop("readinessProbe", None)
    ray["env"] = [*(ray.get("env") or []), *(dict(e) for e in CLEANUP_ENV)]
    ray["resources"] = {"limits": dict(CLEANUP_RESOURCES), "requests": dict(CLEANUP_RESOURCES)}
    spec["containers"] = [ray]
    spec["restartPolicy"] = "Never"
    template_meta: JSON = {"labels": labels}
    if annotations:
        template_meta["annotations"] = annotations
    name = str(cluster.metadata.get("name", ""))
    job_meta: JSON = {
        "name": names.redis_cleanup_job_name(name),
        "namespace": cluster.metadata.get("namespace", ""),
        "labels": dict(labels),
        "ownerReferences": [owner_reference(cluster.metadata, kind=c.KIND_RAYCLUSTER)],
    }
    if annotations:
        job_meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_meta,
        "spec": {
            "backoffLimit": JOB_BACKOFF_LIMIT,
            "activeDeadlineSeconds": JOB_ACTIVE_DEADLINE_SECONDS,
            "template": {"metadata": template_meta, "spec": spec},
        },
    }
