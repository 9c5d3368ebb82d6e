"""Apache YuniKorn: app/queue labels and gang task groups. No objects are created.

`YuniKorn` is the `BatchScheduler` (schedulers/interface.py); the module functions are its pure parts.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ray_operator.builders.rayjob import submitter_resources
from ray_operator.builders.resources import format_totals, hosts, template_resources
from ray_operator.builders.settings import BuildSettings
from ray_operator.constants import HEAD_GROUP, LABEL_GANG_SCHEDULING, SUBMITTER_GROUP
from ray_operator.models import RayCluster, RayClusterSpec
from ray_operator.schedulers.interface import Owner, strip_scheduler_name
from rayside.objects import JSON

SCHEDULER_NAME = "yunikorn"
APP_ID_LABEL = "yunikorn.apache.org/app-id"
QUEUE_LABEL = "yunikorn.apache.org/queue"
TASK_GROUPS_ANNOTATION = "yunikorn.apache.org/task-groups"
TASK_GROUP_NAME_ANNOTATION = "yunikorn.apache.org/task-group-name"
_PLACEMENT_KEYS = ("nodeSelector", "tolerations", "affinity", "topologySpreadConstraints")


def gang_enabled(meta: Mapping[str, Any]) -> bool:
    """Label `ray.io/gang-scheduling-enabled` present (any value)."""
    return LABEL_GANG_SCHEDULING in (meta.get("labels") or {})


def _task_group(name: str, min_member: int, template: Mapping[str, Any]) -> JSON:
    group: JSON = {
        "name": name,
        "minMember": min_member,
        "minResource": format_totals(template_resources(template)),
    }
    spec = template.get("spec") or {}
    for key in _PLACEMENT_KEYS:
        if spec.get(key):
            group[key] = spec[key]
    return group


def task_groups(spec: RayClusterSpec, *, submitter: Mapping[str, Decimal] | None = None) -> list[JSON]:
    """`headgroup` (min 1), each worker group (min = minReplicas x numOfHosts), optional `submittergroup`."""
    groups = [_task_group(HEAD_GROUP, 1, spec.head_group_spec.template)]
    for worker in spec.worker_group_specs or []:
        groups.append(
            _task_group(worker.group_name, (worker.min_replicas or 0) * hosts(worker), worker.template)
        )
    if submitter is not None:
        groups.append({"name": SUBMITTER_GROUP, "minMember": 1, "minResource": format_totals(submitter)})
    return groups


def task_groups_json(spec: RayClusterSpec, *, submitter: Mapping[str, Decimal] | None = None) -> str:
    """The `yunikorn.apache.org/task-groups` annotation value."""
    return json.dumps(task_groups(spec, submitter=submitter), separators=(",", ":"))


def add_child_metadata(
    parent_meta: Mapping[str, Any], child: JSON, *, group: str, task_groups: str | None
) -> None:
    """schedulerName, applicationId/queue labels; with gang scheduling the task-group annotations."""
    parent_labels = parent_meta.get("labels") or {}
    meta = child.setdefault("metadata", {})
    child.setdefault("spec", {})["schedulerName"] = SCHEDULER_NAME
    labels = meta.setdefault("labels", {})
    if APP_ID_LABEL in parent_labels:
        labels["applicationId"] = parent_labels[APP_ID_LABEL]
    if QUEUE_LABEL in parent_labels:
        labels["queue"] = parent_labels[QUEUE_LABEL]
    if not gang_enabled(parent_meta):
        return
    annotations = meta.setdefault("annotations", {})
    own = (parent_meta.get("annotations") or {}).get(TASK_GROUPS_ANNOTATION)
    value = own if own is not None else task_groups
    if value is not None:
        annotations[TASK_GROUPS_ANNOTATION] = value
    if group:
        annotations[TASK_GROUP_NAME_ANNOTATION] = group


class YuniKorn:
    """YuniKorn behind the `BatchScheduler` protocol: metadata only (gang task groups as annotations)."""

    name = SCHEDULER_NAME

    def __init__(self, settings: BuildSettings) -> None:
        self._settings = settings

    def _task_groups(self, owner: Owner) -> str | None:
        if not gang_enabled(owner.metadata):
            return None
        if isinstance(owner, RayCluster):
            return task_groups_json(owner.spec)
        if owner.spec.ray_cluster_spec is None:
            return None
        submitter = submitter_resources(owner, self._settings)
        return task_groups_json(owner.spec.ray_cluster_spec, submitter=submitter)

    def add_metadata_to_child(self, owner: Owner, child: JSON, group: str) -> JSON:
        out = copy.deepcopy(child)
        add_child_metadata(owner.metadata, out, group=group, task_groups=self._task_groups(owner))
        return strip_scheduler_name(out)

    def objects_on_submission(self, owner: Owner) -> list[JSON]:
        return []

    def objects_on_completion(self, owner: Owner, live_cluster: RayCluster | None) -> list[JSON]:
        return []
