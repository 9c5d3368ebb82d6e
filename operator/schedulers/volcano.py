"""Volcano: PodGroup `ray-<name>-pg` and the Pods' group/task annotations.

`Volcano` is the `BatchScheduler` (schedulers/interface.py); the module functions are its pure parts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ray_operator.builders.meta import owner_reference
from ray_operator.builders.rayjob import submitter_resources
from ray_operator.builders.resources import add_totals, cluster_resources, format_totals, group_pod_count
from ray_operator.builders.settings import BuildSettings
from ray_operator.constants import (
    KIND_RAYCLUSTER,
    KIND_RAYJOB,
    LABEL_ORIGINATED_FROM_CR_NAME,
    LABEL_ORIGINATED_FROM_CRD,
    LABEL_PRIORITY_CLASS,
)
from ray_operator.models import RayCluster, RayClusterSpec, RayJob
from ray_operator.schedulers.interface import Owner, strip_scheduler_name
from rayside.objects import JSON

SCHEDULER_NAME = "volcano"
API_VERSION = "scheduling.volcano.sh/v1beta1"
QUEUE_LABEL = "volcano.sh/queue-name"
TOPOLOGY_MODE_LABEL = "volcano.sh/network-topology-mode"
TOPOLOGY_TIER_LABEL = "volcano.sh/network-topology-highest-tier-allowed"
GROUP_NAME_ANNOTATION = "scheduling.k8s.io/group-name"
TASK_SPEC_ANNOTATION = "volcano.sh/task-spec"


class GangSchedulingUnsupported(ValueError):
    """A RayJob that references an existing RayCluster cannot be gang-scheduled."""


def pod_group_name(meta: Mapping[str, Any]) -> str:
    """`ray-<rayjob>-pg` for objects originating from a RayJob, else `ray-<name>-pg`."""
    labels = meta.get("labels") or {}
    if labels.get(LABEL_ORIGINATED_FROM_CRD) == KIND_RAYJOB and labels.get(LABEL_ORIGINATED_FROM_CR_NAME):
        return f"ray-{labels[LABEL_ORIGINATED_FROM_CR_NAME]}-pg"
    return f"ray-{meta.get('name')}-pg"


def add_child_metadata(parent_meta: Mapping[str, Any], child: JSON, *, group: str) -> None:
    """Copy queue/priority labels, annotate group-name and task-spec, set schedulerName (in place)."""
    parent_labels = parent_meta.get("labels") or {}
    meta = child.setdefault("metadata", {})
    labels = meta.setdefault("labels", {})
    for key in (QUEUE_LABEL, LABEL_PRIORITY_CLASS):
        if key in parent_labels:
            labels[key] = parent_labels[key]
    annotations = meta.setdefault("annotations", {})
    annotations[GROUP_NAME_ANNOTATION] = pod_group_name(parent_meta)
    if group:
        annotations[TASK_SPEC_ANNOTATION] = group
    child.setdefault("spec", {})["schedulerName"] = SCHEDULER_NAME


def min_member_and_resources(
    spec: RayClusterSpec | None, *, extra: Mapping[str, Decimal] | None = None, extra_pods: int = 0
) -> tuple[int, dict[str, str]]:
    """minMember (workers + head + `extra_pods`) and minResources (incl. `extra`, e.g. the submitter's)."""
    if spec is None:
        return 0, {}
    mode: Any = "min" if spec.enable_in_tree_autoscaling else "desired"
    workers = sum(group_pod_count(g, mode) for g in spec.worker_group_specs or [])
    totals = cluster_resources(spec, mode)
    if extra:
        add_totals(totals, extra)
    return workers + 1 + extra_pods, format_totals(totals)


def _pod_group(owner_meta: Mapping[str, Any], kind: str, min_member: int, resources: dict[str, str]) -> JSON:
    labels = owner_meta.get("labels") or {}
    spec: JSON = {"minMember": min_member, "minResources": resources}
    if QUEUE_LABEL in labels:
        spec["queue"] = labels[QUEUE_LABEL]
    if LABEL_PRIORITY_CLASS in labels:
        spec["priorityClassName"] = labels[LABEL_PRIORITY_CLASS]
    if TOPOLOGY_MODE_LABEL in labels:
        topology: JSON = {"mode": labels[TOPOLOGY_MODE_LABEL]}
        tier = labels.get(TOPOLOGY_TIER_LABEL)
        if tier is not None and str(tier).isdigit():
            topology["highestTierAllowed"] = int(tier)
        spec["networkTopology"] = topology
    metadata: JSON = {
        "name": pod_group_name(owner_meta),
        "namespace": owner_meta.get("namespace") or "default",
        "ownerReferences": [owner_reference(owner_meta, kind=kind)],
    }
    if owner_meta.get("annotations"):
        metadata["annotations"] = dict(owner_meta["annotations"])
    return {
        "apiVersion": API_VERSION,
        "kind": "PodGroup",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Pending"},
    }


def cluster_pod_group(cluster: RayCluster) -> JSON | None:
    """The RayCluster's PodGroup, or None when the cluster belongs to a RayJob (the RayJob's is used)."""
    labels = cluster.metadata.get("labels") or {}
    if labels.get(LABEL_ORIGINATED_FROM_CRD) == KIND_RAYJOB:
        return None
    min_member, resources = min_member_and_resources(cluster.spec)
    return _pod_group(cluster.metadata, KIND_RAYCLUSTER, min_member, resources)


def job_pod_group(job: RayJob, *, submitter: Mapping[str, Decimal] | None) -> JSON:
    """The RayJob's PodGroup: the submitter's resources count in minResources; in K8sJobMode its Pod also
    counts in minMember (a SidecarMode submitter is a container of the head Pod, already a member).

    Counting the submitter Pod is safe because the RayJob controller creates the submitter Job together
    with the cluster when it is a gang member (`schedulers.submitter_in_gang`), not once the cluster is
    ready (a gang that counts a Pod created only after the gang runs could never be satisfied)."""
    if job.spec.ray_cluster_spec is None:
        ns, name = job.metadata.get("namespace"), job.metadata.get("name")
        raise GangSchedulingUnsupported(
            f"gang scheduling does not support RayJob {ns}/{name} referencing an existing RayCluster"
        )
    pods = 1 if submitter is not None and (job.spec.submission_mode or "K8sJobMode") == "K8sJobMode" else 0
    min_member, resources = min_member_and_resources(
        job.spec.ray_cluster_spec, extra=submitter, extra_pods=pods
    )
    return _pod_group(job.metadata, KIND_RAYJOB, min_member, resources)


def job_pod_group_on_completion(job: RayJob, live_cluster: RayCluster | None) -> JSON:
    """CleanupOnCompletion: recompute from the live cluster (suspended groups excluded); gone ⇒ 0 / {}."""
    spec = live_cluster.spec if live_cluster is not None else None
    min_member, resources = min_member_and_resources(spec)
    return _pod_group(job.metadata, KIND_RAYJOB, min_member, resources)


class Volcano:
    """Volcano behind the `BatchScheduler` protocol: one PodGroup per RayCluster (or per RayJob)."""

    name = SCHEDULER_NAME

    def __init__(self, settings: BuildSettings) -> None:
        self._settings = settings

    def add_metadata_to_child(self, owner: Owner, child: JSON, group: str) -> JSON:
        out = copy.deepcopy(child)
        add_child_metadata(owner.metadata, out, group=group)
        return strip_scheduler_name(out)

    def objects_on_submission(self, owner: Owner) -> list[JSON]:
        """The RayCluster's PodGroup (none for a RayJob's cluster), or the RayJob's (submitter counted)."""
        if isinstance(owner, RayJob):
            return [job_pod_group(owner, submitter=submitter_resources(owner, self._settings))]
        group = cluster_pod_group(owner)
        return [] if group is None else [group]

    def objects_on_completion(self, owner: Owner, live_cluster: RayCluster | None) -> list[JSON]:
        """A finished RayJob's PodGroup recomputed from its live cluster; nothing for a RayCluster."""
        return [job_pod_group_on_completion(owner, live_cluster)] if isinstance(owner, RayJob) else []
