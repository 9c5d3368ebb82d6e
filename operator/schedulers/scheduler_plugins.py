"""scheduler-plugins coscheduling: PodGroup `<cluster>` and the pod-group label.

`SchedulerPlugins` is the `BatchScheduler` (schedulers/interface.py); the module functions are its pure parts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ray_operator.builders.meta import owner_reference
from ray_operator.builders.resources import cluster_resources, format_totals, group_pod_count
from ray_operator.builders.settings import BuildSettings
from ray_operator.constants import KIND_RAYCLUSTER, LABEL_GANG_SCHEDULING
from ray_operator.models import RayCluster
from ray_operator.schedulers.interface import Owner, strip_scheduler_name
from rayside.objects import JSON

SCHEDULER_NAME = "scheduler-plugins-scheduler"
POD_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
API_VERSION = "scheduling.x-k8s.io/v1alpha1"


def gang_enabled(meta: Mapping[str, Any]) -> bool:
    """Label `ray.io/gang-scheduling-enabled` present (any value)."""
    return LABEL_GANG_SCHEDULING in (meta.get("labels") or {})


def add_child_metadata(parent_meta: Mapping[str, Any], child: dict[str, Any]) -> None:
    """schedulerName, and with gang scheduling the `scheduling.x-k8s.io/pod-group=<cluster>` label."""
    child.setdefault("spec", {})["schedulerName"] = SCHEDULER_NAME
    if gang_enabled(parent_meta):
        child.setdefault("metadata", {}).setdefault("labels", {})[POD_GROUP_LABEL] = parent_meta.get("name")


def pod_group(cluster: RayCluster) -> dict[str, Any] | None:
    """The PodGroup to create once (never updated), or None without gang scheduling."""
    if not gang_enabled(cluster.metadata):
        return None
    workers = sum(group_pod_count(g, "desired") for g in cluster.spec.worker_group_specs or [])
    return {
        "apiVersion": API_VERSION,
        "kind": "PodGroup",
        "metadata": {
            "name": cluster.metadata.get("name"),
            "namespace": cluster.metadata.get("namespace") or "default",
            "ownerReferences": [owner_reference(cluster.metadata, kind=KIND_RAYCLUSTER)],
        },
        "spec": {"minMember": workers + 1, "minResources": format_totals(cluster_resources(cluster.spec))},
    }


class SchedulerPlugins:
    """scheduler-plugins behind the `BatchScheduler` protocol: a PodGroup per gang-scheduled RayCluster."""

    name = "scheduler-plugins"

    def __init__(self, settings: BuildSettings) -> None:
        del settings

    def add_metadata_to_child(self, owner: Owner, child: JSON, group: str) -> JSON:
        out = copy.deepcopy(child)
        add_child_metadata(owner.metadata, out)
        return strip_scheduler_name(out)

    def objects_on_submission(self, owner: Owner) -> list[JSON]:
        group = pod_group(owner) if isinstance(owner, RayCluster) else None
        return [] if group is None else [group]

    def objects_on_completion(self, owner: Owner, live_cluster: RayCluster | None) -> list[JSON]:
        return []
