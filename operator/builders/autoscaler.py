"""The in-tree autoscaler sidecar and its RBAC objects.

The sidecar runs `<settings.autoscaler_entrypoint> --cluster-name $(RAY_CLUSTER_NAME) --cluster-namespace
$(RAY_CLUSTER_NAMESPACE)`; rayside's default entrypoint is `python -m autoscaler_provider` (KubeRay's is
`ray kuberay-autoscaler`, selectable through BuildSettings).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ray_operator import constants as c
from ray_operator.builders import containers as ctr
from ray_operator.builders import names
from ray_operator.builders.facts import ClusterFacts
from ray_operator.builders.meta import owner_reference
from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster
from rayside.objects import JSON

DEFAULT_AUTOSCALER_RESOURCES: JSON = {
    "limits": {"cpu": "500m", "memory": "512Mi"},
    "requests": {"cpu": "500m", "memory": "512Mi"},
}


def autoscaler_command_line(settings: BuildSettings) -> str:
    """The shell line the sidecar runs (also exported as KUBERAY_GEN_AUTOSCALER_START_CMD)."""
    return (
        f"{settings.autoscaler_entrypoint} --cluster-name $(RAY_CLUSTER_NAME) "
        "--cluster-namespace $(RAY_CLUSTER_NAMESPACE)"
    )


def _autoscaler_env(facts: ClusterFacts, settings: BuildSettings) -> list[JSON]:
    env = [
        ctr.env_from_field("RAY_CLUSTER_NAME", f"metadata.labels['{c.LABEL_CLUSTER}']"),
        ctr.env_from_field("RAY_CLUSTER_NAMESPACE", "metadata.namespace"),
        ctr.env_from_field("RAY_HEAD_POD_NAME", "metadata.name"),
        ctr.env_value("KUBERAY_CRD_VER", "v1"),
    ]
    if settings.compat != "v1.5":
        env.append(ctr.env_value("KUBERAY_GEN_AUTOSCALER_START_CMD", autoscaler_command_line(settings)))
    return env


def autoscaler_container(
    cluster: RayCluster, *, facts: ClusterFacts, ray_container: Mapping[str, Any], settings: BuildSettings
) -> JSON:
    """The `autoscaler` sidecar of the head Pod, with autoscalerOptions applied and auth env added."""
    options = cluster.spec.autoscaler_options
    container: JSON = {
        "name": c.AUTOSCALER_CONTAINER,
        "image": ray_container.get("image"),
        "imagePullPolicy": "IfNotPresent",
        "command": settings.shell(),
        "args": [autoscaler_command_line(settings)],
        "env": _autoscaler_env(facts, settings),
        "resources": copy.deepcopy(DEFAULT_AUTOSCALER_RESOURCES),
    }
    if options is not None:
        if options.resources is not None:
            container["resources"] = copy.deepcopy(options.resources)
        if options.image:
            container["image"] = options.image
        if options.image_pull_policy:
            container["imagePullPolicy"] = options.image_pull_policy
        if options.security_context is not None:
            container["securityContext"] = copy.deepcopy(options.security_context)
        if options.command:
            container["command"] = list(options.command)
        if options.args:
            container["args"] = list(options.args)
        container["env"].extend(copy.deepcopy(options.env or []))
        if options.env_from:
            container["envFrom"] = copy.deepcopy(options.env_from)
        if options.volume_mounts:
            container["volumeMounts"] = copy.deepcopy(options.volume_mounts)
    ctr.append_env(container, facts.auth_env())
    return container


def _meta(name: str, facts: ClusterFacts, cluster: RayCluster) -> JSON:
    return {
        "name": name,
        "namespace": facts.namespace,
        "labels": {
            c.LABEL_CLUSTER: facts.name,
            c.LABEL_APP_NAME: c.APP_NAME,
            c.LABEL_CREATED_BY: c.CREATED_BY,
        },
        "ownerReferences": [owner_reference(cluster.metadata, kind=c.KIND_RAYCLUSTER)],
    }


def autoscaler_service_account(cluster: RayCluster, *, facts: ClusterFacts) -> JSON:
    """ServiceAccount of the head Pod (created only if missing)."""
    name = names.autoscaler_service_account_name(cluster)
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, facts, cluster)}


def autoscaler_role(cluster: RayCluster, *, facts: ClusterFacts) -> JSON:
    """Role `<cluster>`: pods get/list/watch/patch, pods/resize patch, rayclusters get/patch."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(names.check_name(facts.name), facts, cluster),
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": [""], "resources": ["pods/resize"], "verbs": ["patch"]},
            {"apiGroups": [c.GROUP], "resources": ["rayclusters"], "verbs": ["get", "patch"]},
        ],
    }


def autoscaler_role_binding(cluster: RayCluster, *, facts: ClusterFacts) -> JSON:
    """RoleBinding `<cluster>` of the autoscaler ServiceAccount to the Role."""
    name = names.check_name(facts.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(name, facts, cluster),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": names.autoscaler_service_account_name(cluster),
                "namespace": facts.namespace,
            }
        ],
    }
