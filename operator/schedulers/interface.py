"""The one contract every batch-scheduler integration meets, as pure functions.

A `BatchScheduler` is looked up by name in the registry (`ray_operator.schedulers`) and answers three
questions for an owner (a RayCluster, or a RayJob whose cluster and K8sJobMode submitter Pod form one
gang: the RayJob controller creates the submitter together with the cluster), all without I/O:

* `add_metadata_to_child(owner, child, group)`: a copy of a child (a Pod, a pod template such as the RayJob
  submitter's, or the RayCluster a RayJob owns) with the scheduler's schedulerName, labels and annotations;
  `group` is the Ray group the child belongs to (`headgroup`, a worker group, `submittergroup`, or "" for
  a RayCluster child). A RayCluster child never gets `spec.schedulerName`.
* `objects_on_submission(owner)`: the objects to create once for the owner (PodGroups); owned by it.
* `objects_on_completion(owner, live_cluster)`: the objects to write when the owner finishes (the RayJob
  PodGroup shrunk to the live cluster); [] for schedulers with nothing to clean up.

The reconcilers apply what these return; a scheduler never talks to the API server.
"""

from __future__ import annotations

from typing import Protocol

from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster, RayJob
from rayside.objects import JSON

Owner = RayCluster | RayJob


class BatchScheduler(Protocol):
    """One batch scheduler; `name` is its registry key (the `ray.io/scheduler-name` value)."""

    name: str

    def add_metadata_to_child(self, owner: Owner, child: JSON, group: str) -> JSON: ...

    def objects_on_submission(self, owner: Owner) -> list[JSON]: ...

    def objects_on_completion(self, owner: Owner, live_cluster: RayCluster | None) -> list[JSON]: ...


class SchedulerFactory(Protocol):
    """Builds a scheduler once, from the operator-wide settings (as KubeRay's factory `New`)."""

    def __call__(self, settings: BuildSettings) -> BatchScheduler: ...


def strip_scheduler_name(child: JSON) -> JSON:
    """A RayCluster child carries labels/annotations only; `spec.schedulerName` belongs on Pods."""
    if child.get("kind") == "RayCluster" and isinstance(child.get("spec"), dict):
        child["spec"].pop("schedulerName", None)
    return child
