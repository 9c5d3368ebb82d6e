"""KAI scheduler: schedulerName + queue label only; KAI's own PodGrouper creates PodGroups.

`Kai` is the `BatchScheduler` (schedulers/interface.py).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster
from ray_operator.schedulers.interface import Owner, strip_scheduler_name
from rayside.objects import JSON

SCHEDULER_NAME = "kai-scheduler"
QUEUE_LABEL = "kai.scheduler/queue"


def add_child_metadata(parent_meta: Mapping[str, Any], child: dict[str, Any]) -> None:
    """Set schedulerName and copy `kai.scheduler/queue` from the parent (in place on a copy)."""
    child.setdefault("spec", {})["schedulerName"] = SCHEDULER_NAME
    queue = (parent_meta.get("labels") or {}).get(QUEUE_LABEL)
    if queue is not None:
        child.setdefault("metadata", {}).setdefault("labels", {})[QUEUE_LABEL] = queue


class Kai:
    """KAI behind the `BatchScheduler` protocol: metadata only."""

    name = SCHEDULER_NAME

    def __init__(self, settings: BuildSettings) -> None:
        del settings  # nothing operator-wide matters to KAI

    def add_metadata_to_child(self, owner: Owner, child: JSON, group: str) -> JSON:
        out = copy.deepcopy(child)
        add_child_metadata(owner.metadata, out)
        return strip_scheduler_name(out)

    def objects_on_submission(self, owner: Owner) -> list[JSON]:
        return []

    def objects_on_completion(self, owner: Owner, live_cluster: RayCluster | None) -> list[JSON]:
        return []
