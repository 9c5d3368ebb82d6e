"""GCS fault tolerance with external Redis (`gcsFaultToleranceOptions`): head env, start flags, annotation."""

from __future__ import annotations

from ray_operator import constants as c
from ray_operator.builders import containers as ctr
from ray_operator.models import RayCluster
from ray_operator.models.raycluster import RedisCredential
from rayside.objects import JSON


def uses_redis(cluster: RayCluster) -> bool:
    """GCS FT with Redis: gcsFaultToleranceOptions (backend not rocksdb) or the legacy annotation
    `ray.io/ft-enabled: "true"` (the user then sets RAY_REDIS_ADDRESS / REDIS_PASSWORD env themselves)."""
    options = cluster.spec.gcs_fault_tolerance_options
    if options is not None:
        return options.backend != "rocksdb"
    return str((cluster.metadata.get("annotations") or {}).get(c.ANN_FT_ENABLED, "")).lower() == "true"


def external_storage_namespace(cluster: RayCluster) -> str:
    """options.externalStorageNamespace > annotation `ray.io/external-storage-namespace` > cluster UID."""
    options = cluster.spec.gcs_fault_tolerance_options
    if options is not None and options.external_storage_namespace:
        return options.external_storage_namespace
    annotated = (cluster.metadata.get("annotations") or {}).get(c.ANN_EXTERNAL_STORAGE_NS)
    return str(annotated or cluster.metadata.get("uid", ""))


def _credential_env(name: str, credential: RedisCredential) -> JSON:
    if credential.value_from is not None:
        return {"name": name, "valueFrom": dict(credential.value_from)}
    return ctr.env_value(name, credential.value or "")


def redis_head_env(cluster: RayCluster) -> list[JSON]:
    """RAY_external_storage_namespace, RAY_REDIS_ADDRESS, REDIS_USERNAME / REDIS_PASSWORD for the head."""
    if not uses_redis(cluster):
        return []
    env = [ctr.env_value("RAY_external_storage_namespace", external_storage_namespace(cluster))]
    options = cluster.spec.gcs_fault_tolerance_options
    if options is None:
        return env
    if options.redis_address:
        env.append(ctr.env_value("RAY_REDIS_ADDRESS", options.redis_address))
    if options.redis_username is not None:
        env.append(_credential_env("REDIS_USERNAME", options.redis_username))
    if options.redis_password is not None:
        env.append(_credential_env("REDIS_PASSWORD", options.redis_password))
    return env


def redis_start_params(cluster: RayCluster) -> dict[str, str]:
    """`redis-username=$REDIS_USERNAME` / `redis-password=$REDIS_PASSWORD` for the head `ray start`."""
    options = cluster.spec.gcs_fault_tolerance_options
    if options is None or not uses_redis(cluster):
        return {}
    params: dict[str, str] = {}
    if options.redis_username is not None:
        params["redis-username"] = "$REDIS_USERNAME"
    if options.redis_password is not None:
        params["redis-password"] = "$REDIS_PASSWORD"
    return params
