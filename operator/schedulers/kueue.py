"""Kueue: admission is driven by the `kueue.x-k8s.io/queue-name` label the RayJob/RayCluster itself carries
(RayJob labels are copied to its RayCluster by the builder), so this scheduler adds nothing and creates
nothing. In particular the label is never copied onto Pods: that would hand them to Kueue's pod integration.
"""

from __future__ import annotations

import copy

from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster
from ray_operator.schedulers.interface import Owner
from rayside.objects import JSON

SCHEDULER_NAME = "kueue"


class Kueue:
    """Kueue behind the `BatchScheduler` protocol: every answer is "nothing"."""

    name = SCHEDULER_NAME

    def __init__(self, settings: BuildSettings) -> None:
        del settings

    def add_metadata_to_child(self, owner: Owner, child: JSON, group: str) -> JSON:
        return copy.deepcopy(child)

    def objects_on_submission(self, owner: Owner) -> list[JSON]:
        return []

    def objects_on_completion(self, owner: Owner, live_cluster: RayCluster | None) -> list[JSON]:
        return []
