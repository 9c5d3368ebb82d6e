"""KAI scheduler: schedulerName + queue label only; KAI's own PodGrouper creates PodGroups (spec §5.3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCHEDULER_NAME = "kai-scheduler"
QUEUE_LABEL = "kai.scheduler/queue"


def add_child_metadata(parent_meta: Mapping[str, Any], child: dict[str, Any]) -> None:
    """Set schedulerName and copy `kai.scheduler/queue` from the parent (in place on a copy)."""
    child.setdefault("spec", {})["schedulerName"] = SCHEDULER_NAME
    queue = (parent_meta.get("labels") or {}).get(QUEUE_LABEL)
    if queue is not None:
        child.setdefault("metadata", {}).setdefault("labels", {})[QUEUE_LABEL] = queue
