"""Kueue rules of a RayJob, as pure checks: a suspended (queued) RayJob needs `shutdownAfterJobFinishes:
true`, and Kueue adds nothing to Pods and never makes the submitter a gang member."""

from __future__ import annotations

import copy
from typing import Any

from ray_operator import schedulers
from ray_operator.builders import BuildSettings
from ray_operator.models import RayJob
from ray_operator.validation_jobs import validate_rayjob
from tests.unit.operator.golden import load

QUEUE = {"kueue.x-k8s.io/queue-name": "user-queue"}


def job(labels: dict[str, str], **spec: Any) -> RayJob:
    data = copy.deepcopy(load("rayjob-k8sjob.yaml"))
    data["metadata"]["labels"] = labels
    data["spec"].pop("deletionStrategy", None)  # rules exclude shutdownAfterJobFinishes, which Kueue needs
    data["spec"].update(spec)
    return RayJob.model_validate(data)


def test_suspended_rayjob_without_shutdown_is_rejected() -> None:
    """Kueue creates a queued RayJob suspended; suspension needs shutdownAfterJobFinishes: true (the queue
    label alone is not checked: KubeRay's samples carry it with deletion rules instead)."""
    problem = validate_rayjob(job(QUEUE, suspend=True, shutdownAfterJobFinishes=False), BuildSettings())
    assert problem == "a RayJob with shutdownAfterJobFinishes set to false is not allowed to be suspended"


def test_queued_rayjob_with_shutdown_is_valid_suspended_or_not() -> None:
    for suspend in (True, False):
        assert (
            validate_rayjob(job(QUEUE, suspend=suspend, shutdownAfterJobFinishes=True), BuildSettings())
            is None
        )


def test_kueue_never_puts_the_submitter_in_a_gang() -> None:
    settings = BuildSettings(batch_scheduler="kueue")
    queued = job(QUEUE, shutdownAfterJobFinishes=True)
    assert schedulers.submitter_in_gang(queued, settings) is False
    kueue = schedulers.scheduler_named("kueue", settings)
    assert kueue.objects_on_submission(queued) == []
    template: dict[str, Any] = {"metadata": {"labels": {"a": "b"}}, "spec": {}}
    assert kueue.add_metadata_to_child(queued, template, "submittergroup") == template
