"""Batch-scheduler integrations: the registry and the selection rule.

Every scheduler implements the one `BatchScheduler` protocol (`schedulers/interface.py`): Volcano,
YuniKorn, KAI, scheduler-plugins and Kueue, registered by name in `REGISTRY`. Selection: the operator-wide
`--batch-scheduler` (BuildSettings.batch_scheduler), overridden per CR — beyond KubeRay — by the label
`ray.io/scheduler-name` on the RayCluster/RayJob (`volcano`, `yunikorn`, `kai-scheduler`,
`scheduler-plugins`, or `none`/`default` to opt out). Kueue is registered but never selected this way: its
`kueue.x-k8s.io/queue-name` label is read from the RayJob/RayCluster itself.

Dependencies point one way: schedulers use the builders' pure helpers (resources, owner references, the
RayJob submitter's resources); builders never import schedulers. The reconcilers stamp Pods through
`add_metadata_to_child` and create what `objects_on_submission` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray_operator.builders.settings import BATCH_SCHEDULERS, BuildSettings
from ray_operator.constants import LABEL_CLUSTER, LABEL_SCHEDULER_NAME
from ray_operator.models import RayJob
from ray_operator.schedulers.interface import BatchScheduler, Owner, SchedulerFactory
from ray_operator.schedulers.kai import Kai
from ray_operator.schedulers.kueue import Kueue
from ray_operator.schedulers.scheduler_plugins import SchedulerPlugins
from ray_operator.schedulers.volcano import Volcano
from ray_operator.schedulers.yunikorn import YuniKorn
from rayside.objects import JSON, labels_of

OPT_OUT = ("none", "default")
REGISTRY: dict[str, SchedulerFactory] = {
    "volcano": Volcano,
    "yunikorn": YuniKorn,
    "kai-scheduler": Kai,
    "scheduler-plugins": SchedulerPlugins,
    "kueue": Kueue,
}


class UnknownScheduler(ValueError):
    """The `ray.io/scheduler-name` label names no supported scheduler."""


def scheduler_for(meta: Mapping[str, Any], settings: BuildSettings) -> str | None:
    """The batch scheduler name of a CR: its `ray.io/scheduler-name` label, else the operator-wide setting."""
    label = labels_of({"metadata": meta}).get(LABEL_SCHEDULER_NAME)
    if label is None:
        return settings.batch_scheduler
    if label in OPT_OUT:
        return None
    if label not in BATCH_SCHEDULERS:
        allowed = ", ".join((*BATCH_SCHEDULERS, *OPT_OUT))
        raise UnknownScheduler(f"label {LABEL_SCHEDULER_NAME}={label!r} is not supported; allowed: {allowed}")
    return str(label)


def scheduler_named(name: str, settings: BuildSettings) -> BatchScheduler:
    """The registered scheduler `name` (KeyError names the registered ones)."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise KeyError(f"no batch scheduler {name!r}; registered: {', '.join(REGISTRY)}") from None
    return factory(settings)


def scheduler_of(owner: Owner, settings: BuildSettings) -> BatchScheduler | None:
    """The scheduler of a RayCluster/RayJob, or None. An unknown label ⇒ UnknownScheduler."""
    name = scheduler_for(owner.metadata, settings)
    return None if name is None else scheduler_named(name, settings)


def submitter_in_gang(job: RayJob, settings: BuildSettings) -> bool:
    """Whether the K8sJobMode submitter Pod is a member of the RayJob's gang, so it must be created together
    with the RayCluster (not once the cluster is ready: a gang that counts it could never form).

    True for a K8sJobMode RayJob that owns its cluster and has a batch scheduler other than Kueue (Kueue
    admits the RayJob as a whole; it does not place Pods).
    """
    if (job.spec.submission_mode or "K8sJobMode") != "K8sJobMode" or job.spec.ray_cluster_spec is None:
        return False
    if (job.spec.cluster_selector or {}).get(LABEL_CLUSTER):
        return False
    try:
        name = scheduler_for(job.metadata, settings)
    except UnknownScheduler:
        return False
    return name is not None and name != "kueue"


def stamp(owner: Owner, child: JSON, *, group: str, settings: BuildSettings) -> JSON:
    """`child` with its owner's scheduler metadata (unchanged without a scheduler)."""
    scheduler = scheduler_of(owner, settings)
    return child if scheduler is None else scheduler.add_metadata_to_child(owner, child, group)


__all__ = [
    "OPT_OUT",
    "REGISTRY",
    "BatchScheduler",
    "UnknownScheduler",
    "scheduler_for",
    "scheduler_named",
    "scheduler_of",
    "stamp",
    "submitter_in_gang",
]
