"""Batch-scheduler integrations (operator-spec §5) as pure functions.

Selection: the operator-wide `--batch-scheduler` (BuildSettings.batch_scheduler), overridden per CR — beyond
KubeRay — by the label `ray.io/scheduler-name` on the RayCluster/RayJob (`volcano`, `yunikorn`,
`kai-scheduler`, `scheduler-plugins`, or `none`/`default` to opt out). `apply_pod_scheduling` stamps the
child metadata (`AddMetadataToChildResource`) on a Pod or pod template; the object builders
(`volcano.cluster_pod_group`, `volcano.job_pod_group`, `scheduler_plugins.pod_group`) return the PodGroups
the runtime must create. Kueue needs nothing here: its `kueue.x-k8s.io/queue-name` label is read from the
RayJob/RayCluster itself (RayJob labels are copied to its RayCluster), and it is deliberately not copied
onto Pods (that would hand them to Kueue's pod integration).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ray_operator.builders.settings import BATCH_SCHEDULERS, BuildSettings
from ray_operator.constants import LABEL_SCHEDULER_NAME
from ray_operator.models import RayCluster
from ray_operator.schedulers import kai, scheduler_plugins, volcano, yunikorn

JSON = dict[str, Any]
OPT_OUT = ("none", "default")


class UnknownScheduler(ValueError):
    """The `ray.io/scheduler-name` label names no supported scheduler."""


def scheduler_for(meta: Mapping[str, Any], settings: BuildSettings) -> str | None:
    """The batch scheduler of a CR: its `ray.io/scheduler-name` label, else the operator-wide setting."""
    label = (meta.get("labels") or {}).get(LABEL_SCHEDULER_NAME)
    if label is None:
        return settings.batch_scheduler
    if label in OPT_OUT:
        return None
    if label not in BATCH_SCHEDULERS:
        allowed = ", ".join((*BATCH_SCHEDULERS, *OPT_OUT))
        raise UnknownScheduler(f"label {LABEL_SCHEDULER_NAME}={label!r} is not supported; allowed: {allowed}")
    return str(label)


def add_child_metadata(
    parent_meta: Mapping[str, Any],
    child: Mapping[str, Any],
    *,
    group: str,
    scheduler: str | None,
    task_groups: str | None = None,
    pod: bool = True,
) -> JSON:
    """A copy of child with the scheduler's labels/annotations, and `spec.schedulerName` when pod=True
    (a Pod or pod template; pod=False for the RayCluster built for a RayJob)."""
    out = copy.deepcopy(dict(child))
    if scheduler == "volcano":
        volcano.add_child_metadata(parent_meta, out, group=group)
    elif scheduler == "yunikorn":
        yunikorn.add_child_metadata(parent_meta, out, group=group, task_groups=task_groups)
    elif scheduler == "kai-scheduler":
        kai.add_child_metadata(parent_meta, out)
    elif scheduler == "scheduler-plugins":
        scheduler_plugins.add_child_metadata(parent_meta, out)
    if not pod and isinstance(out.get("spec"), dict):
        out["spec"].pop("schedulerName", None)
    return out


def apply_pod_scheduling(
    cluster: RayCluster, pod: Mapping[str, Any], *, group: str, settings: BuildSettings
) -> JSON:
    """Child metadata of a RayCluster Pod (no-op without a scheduler). Unknown label ⇒ UnknownScheduler."""
    scheduler = scheduler_for(cluster.metadata, settings)
    task_groups = None
    if scheduler == "yunikorn" and yunikorn.gang_enabled(cluster.metadata):
        task_groups = yunikorn.task_groups_json(cluster.spec)
    return add_child_metadata(
        cluster.metadata, pod, group=group, scheduler=scheduler, task_groups=task_groups
    )
