"""Head and worker Pods exactly as KubeRay builds them (autoscaler, auth, multi-host labels)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ray_operator import constants as c
from ray_operator.builders import containers as ctr
from ray_operator.builders import ft, names
from ray_operator.builders.autoscaler import autoscaler_container
from ray_operator.builders.facts import ClusterFacts, cluster_facts
from ray_operator.builders.hashing import spec_hash
from ray_operator.builders.meta import owner_reference
from ray_operator.builders.raystart import GroupStart, ray_start_params, render_ray_start, ulimit_prefix
from ray_operator.builders.resources import is_multi_host
from ray_operator.builders.settings import BuildSettings
from ray_operator.features import RAY_MULTI_HOST_INDEXING
from ray_operator.models import RayCluster, WorkerGroupSpec
from rayside.objects import JSON

_PROTECTED_LABELS = (c.LABEL_NODE_TYPE, c.LABEL_GROUP, c.LABEL_CLUSTER)


def base_labels(facts: ClusterFacts, *, node_type: str, group: str) -> dict[str, str]:
    """KubeRay's 7 base Pod labels."""
    identifier = f"{facts.name}-{c.NODE_TYPE_HEAD if node_type == c.NODE_TYPE_HEAD else c.NODE_TYPE_WORKER}"
    return {
        c.LABEL_IS_RAY_NODE: "yes",
        c.LABEL_CLUSTER: facts.name,
        c.LABEL_NODE_TYPE: node_type,
        c.LABEL_GROUP: group,
        c.LABEL_IDENTIFIER: identifier,
        c.LABEL_APP_NAME: c.APP_NAME,
        c.LABEL_CREATED_BY: c.CREATED_BY,
    }


def pod_labels(
    facts: ClusterFacts,
    *,
    node_type: str,
    group: str,
    template_labels: Mapping[str, str],
    group_labels: Mapping[str, str],
    settings: BuildSettings,
) -> dict[str, str]:
    """Base labels, overridden by template then group labels except node-type/group/cluster."""
    labels = base_labels(facts, node_type=node_type, group=group)
    for key, value in {**template_labels, **group_labels}.items():
        if key not in _PROTECTED_LABELS:
            labels[key] = value
    if facts.origin_crd == c.KIND_RAYSERVICE:
        labels.setdefault(c.LABEL_SERVE, "false" if node_type == c.NODE_TYPE_HEAD else "true")
    for key, value in settings.default_pod_labels.items():
        labels.setdefault(key, value)
    return labels


def _ray_env(facts: ClusterFacts, *, is_head: bool, start_cmd: str, settings: BuildSettings) -> list[JSON]:
    """The env KubeRay appends unconditionally to the Ray container."""
    env: list[JSON] = []
    if not is_head:
        env += [ctr.env_value("FQ_RAY_IP", facts.head_fqdn), ctr.env_value("RAY_IP", facts.head_service)]
    env += [ctr.env_from_field("RAY_CLUSTER_NAME", f"metadata.labels['{c.LABEL_CLUSTER}']")]
    if settings.compat != "v1.5":
        env.append(ctr.env_from_field("RAY_CLUSTER_NAMESPACE", "metadata.namespace"))
    env += [
        ctr.env_from_field("RAY_CLOUD_INSTANCE_ID", "metadata.name"),
        ctr.env_from_field("RAY_NODE_TYPE_NAME", f"metadata.labels['{c.LABEL_GROUP}']"),
        ctr.env_value("KUBERAY_GEN_RAY_START_CMD", start_cmd),
    ]
    return env


def _ray_env_if_absent(facts: ClusterFacts, *, is_head: bool, settings: BuildSettings) -> list[JSON]:
    """The env KubeRay adds only when the user did not set the name."""
    address = f"127.0.0.1:{facts.head_port}" if is_head else facts.head_address
    env = [
        ctr.env_value("RAY_PORT", str(facts.head_port)),
        ctr.env_value("RAY_ADDRESS", address),
        ctr.env_value("RAY_USAGE_STATS_KUBERAY_IN_USE", "1"),
    ]
    if is_head:
        tags = f"kuberay_version={settings.kuberay_version};kuberay_crd={facts.origin_crd}"
        env.append(ctr.env_value("RAY_USAGE_STATS_EXTRA_TAGS", tags))
    env.append(ctr.env_value("RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE", "1"))
    if facts.origin_crd == c.KIND_RAYSERVICE:
        env += [
            ctr.env_value("RAY_timeout_ms_task_wait_for_death_info", "0"),
            ctr.env_value("RAY_gcs_server_request_timeout_seconds", "5"),
            ctr.env_value("RAY_SERVE_KV_TIMEOUT_S", "5"),
        ]
    if is_head and facts.autoscaler_v2 is not None:
        env.append(ctr.env_value("RAY_enable_autoscaler_v2", "true" if facts.autoscaler_v2 else "false"))
    if facts.ft_enabled and not is_head:
        env.append(ctr.env_value("RAY_gcs_rpc_server_reconnect_timeout_s", "600"))
    env += [dict(e) for e in settings.default_container_envs]
    env += facts.auth_env()
    return env


def _serve_port(cluster: RayCluster) -> int:
    """The head container port named `serve` (default 8000): RayService workers' readiness check target."""
    containers = (cluster.spec.head_group_spec.template.get("spec") or {}).get("containers") or [{}]
    for port in containers[0].get("ports") or []:
        if port.get("name") == "serve":
            return int(port["containerPort"])
    return c.DEFAULT_SERVE_PORT


def _set_command(container: JSON, start_cmd: str, *, overwrite: bool, settings: BuildSettings) -> None:
    existing = " ".join([*(container.get("command") or []), *(container.get("args") or [])])
    if overwrite or "ray start" in existing:
        return
    generated = f"{ulimit_prefix(settings.compat)}; {start_cmd}"
    if existing:
        generated = f"{existing} && {generated}"
    container["command"] = settings.shell()
    container["args"] = [generated]


def _annotations(cluster: RayCluster, template_meta: Mapping[str, Any], settings: BuildSettings) -> JSON:
    annotations = dict(template_meta.get("annotations") or {})
    for key, value in settings.default_pod_annotations.items():
        annotations.setdefault(key, value)
    return annotations


def _prepare(template: Mapping[str, Any]) -> tuple[JSON, JSON, JSON]:
    """Deep-copy a template and return (metadata, spec, ray container)."""
    tmpl = copy.deepcopy(dict(template))
    meta = dict(tmpl.get("metadata") or {})
    spec = dict(tmpl.get("spec") or {})
    containers = spec.get("containers") or [{}]
    spec["containers"] = containers
    return meta, spec, containers[0]


def _configure_ray_container(
    container: JSON,
    spec: JSON,
    *,
    facts: ClusterFacts,
    start: GroupStart,
    cluster: RayCluster,
    settings: BuildSettings,
) -> dict[str, str]:
    params = ray_start_params(start)
    start_cmd = render_ray_start(params, is_head=start.is_head)
    annotations = cluster.metadata.get("annotations") or {}
    overwrite = str(annotations.get(c.ANN_OVERWRITE_CMD, "")).lower() == "true"
    _set_command(container, start_cmd, overwrite=overwrite, settings=settings)
    ctr.append_env(
        container,
        _ray_env(facts, is_head=start.is_head, start_cmd=start_cmd, settings=settings),
        if_absent=False,
    )
    ctr.append_env(container, _ray_env_if_absent(facts, is_head=start.is_head, settings=settings))
    ctr.add_metrics_port(container)
    if settings.enable_probes_injection:
        http = settings.compat != "v1.5" and facts.ray_at_least(c.MIN_HTTP_PROBE_RAY_VERSION)
        serve = _serve_port(cluster) if facts.origin_crd == c.KIND_RAYSERVICE else None
        ctr.add_probes(container, is_head=start.is_head, http=http, params=params, serve_port=serve)
    ctr.add_shared_memory(spec, container, params)
    if facts.autoscaler_v2:
        spec["restartPolicy"] = "Never"
    if facts.auth_enabled and facts.k8s_token_auth:
        ctr.add_k8s_token_volume(spec, container)
    return params


def _pod(
    meta: JSON, spec: JSON, *, facts: ClusterFacts, name: str | None, prefix: str, cluster: RayCluster
) -> JSON:
    metadata: JSON = {"namespace": facts.namespace}
    if name:
        metadata["name"] = name
    else:
        metadata["generateName"] = prefix
    metadata["labels"] = meta["labels"]
    if meta.get("annotations"):
        metadata["annotations"] = meta["annotations"]
    metadata["ownerReferences"] = [owner_reference(cluster.metadata, kind=c.KIND_RAYCLUSTER)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _init_container_env(spec: JSON, facts: ClusterFacts) -> None:
    """Every init container gets FQ_RAY_IP and RAY_IP (if absent)."""
    for init_container in spec.get("initContainers") or []:
        env = [ctr.env_value("FQ_RAY_IP", facts.head_fqdn), ctr.env_value("RAY_IP", facts.head_service)]
        ctr.append_env(init_container, env)


def _head_annotations(
    cluster: RayCluster, facts: ClusterFacts, meta: Mapping[str, Any], settings: BuildSettings
) -> JSON:
    annotations = _annotations(cluster, meta, settings)
    annotations[c.ANN_FT_ENABLED] = "true" if facts.ft_enabled else "false"
    if ft.uses_redis(cluster):
        annotations[c.ANN_EXTERNAL_STORAGE_NS] = ft.external_storage_namespace(cluster)
    cluster_annotations = cluster.metadata.get("annotations") or {}
    if c.ANN_OVERWRITE_CMD in cluster_annotations:
        annotations[c.ANN_OVERWRITE_CMD] = cluster_annotations[c.ANN_OVERWRITE_CMD]
    if settings.compat != "v1.5":
        annotations[c.ANN_KUBERAY_VERSION] = settings.kuberay_version
        annotations[c.ANN_UPGRADE_HASH] = spec_hash(cluster.spec)
    return annotations


def head_pod(cluster: RayCluster, *, settings: BuildSettings, name: str | None = None) -> JSON:
    """The head Pod. name=None ⇒ `generateName: <cluster>-head-` (the API server adds the suffix).

    Batch-scheduler metadata is not added here: the reconciler stamps the Pod through
    `schedulers.stamp` (as KubeRay adds it when creating the Pod). Raises RayStartConflict when top-level
    resources/labels clash with rayStartParams.
    """
    facts = cluster_facts(cluster, settings)
    head = cluster.spec.head_group_spec
    meta, spec, container = _prepare(head.template)
    start = GroupStart(
        group_label="Head",
        is_head=True,
        ray_start_params={**(head.ray_start_params or {}), **ft.redis_start_params(cluster)},
        resources=head.resources or {},
        labels=head.labels or {},
        container=container,
        head_address=facts.head_address,
        autoscaling=facts.autoscaling,
    )
    _configure_ray_container(container, spec, facts=facts, start=start, cluster=cluster, settings=settings)
    ctr.append_env(container, ft.redis_head_env(cluster))
    if facts.autoscaling:
        spec["serviceAccountName"] = names.autoscaler_service_account_name(cluster)
        sidecar = autoscaler_container(cluster, facts=facts, ray_container=container, settings=settings)
        spec["containers"].append(sidecar)
        ctr.add_ray_logs_volume(spec, [container, sidecar])
    spec["containers"].extend(copy.deepcopy(dict(s)) for s in settings.head_sidecar_containers)
    _init_container_env(spec, facts)
    meta["labels"] = pod_labels(
        facts,
        node_type=c.NODE_TYPE_HEAD,
        group=c.HEAD_GROUP,
        template_labels=meta.get("labels") or {},
        group_labels=head.labels or {},
        settings=settings,
    )
    meta["annotations"] = _head_annotations(cluster, facts, meta, settings)
    pod = _pod(meta, spec, facts=facts, name=name, prefix=names.head_pod_prefix(facts.name), cluster=cluster)
    return pod


def multi_host_labels(
    group: WorkerGroupSpec,
    *,
    settings: BuildSettings,
    replica_index: int | None,
    replica_name: str | None,
    host_index: int | None,
) -> dict[str, str]:
    """`ray.io/worker-group-replica-index` (+ replica name, host index if numOfHosts > 1), gate permitting."""
    if not settings.feature_gates.enabled(RAY_MULTI_HOST_INDEXING):
        return {}
    labels: dict[str, str] = {}
    if replica_index is not None:
        labels[c.LABEL_REPLICA_INDEX] = str(replica_index)
    if is_multi_host(group):
        if replica_name is not None:
            labels[c.LABEL_REPLICA_NAME] = replica_name
        if host_index is not None:
            labels[c.LABEL_HOST_INDEX] = str(host_index)
    return labels


def worker_pod(
    cluster: RayCluster,
    group: WorkerGroupSpec,
    *,
    settings: BuildSettings,
    name: str | None = None,
    replica_index: int | None = None,
    replica_name: str | None = None,
    host_index: int | None = None,
) -> JSON:
    """A worker Pod of `group`. name=None ⇒ `generateName: <cluster>-<group>-worker-`.

    Multi-host labels are set from the given indexes when the RayMultiHostIndexing gate is on. No
    batch-scheduler metadata (see `head_pod`). Raises RayStartConflict when top-level resources/labels
    clash with rayStartParams.
    """
    facts = cluster_facts(cluster, settings)
    meta, spec, container = _prepare(group.template)
    meta.pop("name", None)
    start = GroupStart(
        group_label=group.group_name,
        is_head=False,
        ray_start_params=group.ray_start_params or {},
        resources=group.resources or {},
        labels=group.labels or {},
        container=container,
        head_address=facts.head_address,
        autoscaling=facts.autoscaling,
    )
    _configure_ray_container(container, spec, facts=facts, start=start, cluster=cluster, settings=settings)
    if settings.enable_init_container_injection:
        init = ctr.wait_gcs_ready_container(container, address=facts.head_address, shell=settings.shell())
        spec["initContainers"] = [*(spec.get("initContainers") or []), init]
    _init_container_env(spec, facts)
    spec["containers"].extend(copy.deepcopy(dict(s)) for s in settings.worker_sidecar_containers)
    labels = pod_labels(
        facts,
        node_type=c.NODE_TYPE_WORKER,
        group=group.group_name,
        template_labels=meta.get("labels") or {},
        group_labels=group.labels or {},
        settings=settings,
    )
    labels.update(
        multi_host_labels(
            group,
            settings=settings,
            replica_index=replica_index,
            replica_name=replica_name,
            host_index=host_index,
        )
    )
    meta["labels"] = labels
    meta["annotations"] = _annotations(cluster, meta, settings)
    prefix = names.worker_pod_prefix(facts.name, group.group_name)
    pod = _pod(meta, spec, facts=facts, name=name, prefix=prefix, cluster=cluster)
    return pod
