"""scheduler-plugins coscheduling: PodGroup `<cluster>` (or `<rayjob>`) and the pod-group label.

A RayJob's cluster and submitter form one gang: the PodGroup is named after and owned by the RayJob, counts
the K8sJobMode submitter Pod (created together with the cluster) and the cluster's Pods point at it.

`SchedulerPlugins` is the `BatchScheduler` (schedulers/interface.py); the module functions are its pure parts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ray_operator.builders.meta import owner_reference
from ray_operator.builders.rayjob import submitter_resources
from ray_operator.builders.resources import add_totals, cluster_resources, format_totals, group_pod_count
from ray_operator.builders.settings import BuildSettings
from ray_operator.constants import (
    KIND_RAYCLUSTER,
    KIND_RAYJOB,
    LABEL_GANG_SCHEDULING,
    LABEL_ORIGINATED_FROM_CR_NAME,
    LABEL_ORIGINATED_FROM_CRD,
)
from ray_operator.models import RayCluster, RayClusterSpec, RayJob
from ray_operator.schedulers.interface import Owner, strip_scheduler_name
from rayside.objects import JSON

SCHEDULER_NAME = "scheduler-plugins-scheduler"
POD_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
API_VERSION = "scheduling.x-k8s.io/v1alpha1"


def gang_enabled(meta: Mapping[str, Any]) -> bool:
    """Label `ray.io/gang-scheduling-enabled` present (any value)."""
    return LABEL_GANG_SCHEDULING in (meta.get("labels") or {})


def from_rayjob(meta: Mapping[str, Any]) -> bool:
    """A RayCluster created for a RayJob (its gang is the RayJob's)."""
    labels = meta.get("labels") or {}
    return labels.get(LABEL_ORIGINATED_FROM_CRD) == KIND_RAYJOB and bool(
        labels.get(LABEL_ORIGINATED_FROM_CR_NAME)
    )


def pod_group_name(meta: Mapping[str, Any]) -> str:
    """`<rayjob>` for objects originating from a RayJob, else the owner's own name."""
    if from_rayjob(meta):
        return str((meta.get("labels") or {})[LABEL_ORIGINATED_FROM_CR_NAME])
    return str(meta.get("name"))


def add_child_metadata(parent_meta: Mapping[str, Any], child: dict[str, Any]) -> None:
    """schedulerName, and with gang scheduling the `scheduling.x-k8s.io/pod-group=<group>` label."""
    child.setdefault("spec", {})["schedulerName"] = SCHEDULER_NAME
    if gang_enabled(parent_meta):
        child.setdefault("metadata", {}).setdefault("labels", {})[POD_GROUP_LABEL] = pod_group_name(
            parent_meta
        )


def _pod_group(meta: Mapping[str, Any], kind: str, min_member: int, resources: dict[str, str]) -> JSON:
    return {
        "apiVersion": API_VERSION,
        "kind": "PodGroup",
        "metadata": {
            "name": pod_group_name(meta),
            "namespace": meta.get("namespace") or "default",
            "ownerReferences": [owner_reference(meta, kind=kind)],
        },
        "spec": {"minMember": min_member, "minResources": resources},
    }


def _members(spec: RayClusterSpec) -> int:
    return 1 + sum(group_pod_count(g, "desired") for g in spec.worker_group_specs or [])


def pod_group(cluster: RayCluster) -> JSON | None:
    """The PodGroup to create once (never updated), or None without gang scheduling or for a RayJob's
    cluster (the RayJob's group is used)."""
    if not gang_enabled(cluster.metadata) or from_rayjob(cluster.metadata):
        return None
    resources = format_totals(cluster_resources(cluster.spec))
    return _pod_group(cluster.metadata, KIND_RAYCLUSTER, _members(cluster.spec), resources)


def job_pod_group(job: RayJob, settings: BuildSettings) -> JSON | None:
    """The RayJob's PodGroup `<rayjob>`: its cluster's Pods plus the K8sJobMode submitter Pod (created
    together with the cluster); None without gang scheduling or for a RayJob on an existing cluster."""
    spec = job.spec.ray_cluster_spec
    if not gang_enabled(job.metadata) or spec is None:
        return None
    totals = cluster_resources(spec)
    members = _members(spec)
    if (job.spec.submission_mode or "K8sJobMode") == "K8sJobMode":
        add_totals(totals, submitter_resources(job, settings))
        members += 1
    return _pod_group(job.metadata, KIND_RAYJOB, members, format_totals(totals))


class SchedulerPlugins:
    """scheduler-plugins behind the `BatchScheduler` protocol: a PodGroup per gang-scheduled RayCluster."""

    name = "scheduler-plugins"

    def __init__(self, settings: BuildSettings) -> None:
        self._settings = settings

    def add_metadata_to_child(self, owner: Owner, child: JSON, group: str) -> JSON:
        out = copy.deepcopy(child)
        add_child_metadata(owner.metadata, out)
        return strip_scheduler_name(out)

    def objects_on_submission(self, owner: Owner) -> list[JSON]:
        group = job_pod_group(owner, self._settings) if isinstance(owner, RayJob) else pod_group(owner)
        return [] if group is None else [group]

    def objects_on_completion(self, owner: Owner, live_cluster: RayCluster | None) -> list[JSON]:
        return []
