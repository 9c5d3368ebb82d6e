"""Wire the RayJob controller into the operator process: its own informers (RayJobs; batch Jobs made for
RayJobs), handlers on the RayCluster controller's informers (RayClusters and head Pods, shared: no second
watch), the reconciler and its applier, and the controller's worker threads.

Everything else is shared with the RayCluster controller: the Kubernetes client (one QPS budget), the
Manager (caches synced before any controller starts; one leader election) and `--reconcile-concurrency`
(each controller gets that many workers, as KubeRay's one flag does for all its controllers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ray_operator import constants as c
from ray_operator.rayjob.applier import RayJobApplier, Views
from ray_operator.rayjob.dashboard import DashboardClient
from ray_operator.rayjob.observed import Timeouts
from ray_operator.rayjob.reconciler import RayJobReconciler
from ray_operator.runtime.cache import ClusterInformer, ClusterInformerGroup, cluster_of
from ray_operator.runtime.events import EventRecorder
from ray_operator.settings import OperatorSettings
from rayside.kubeclient import KubeClient
from rayside.objects import (
    JOBS,
    JSON,
    RAYJOBS,
    Resource,
    controller_of,
    key_of,
    labels_of,
    meta_of,
    namespace_of,
)
from rayside.runtime.controller import Controller
from rayside.runtime.informer import Informer
from rayside.runtime.workqueue import WorkQueue

JOB_SELECTOR = f"{c.LABEL_ORIGINATED_FROM_CRD}={c.KIND_RAYJOB}"


@dataclass(frozen=True)
class Shared:
    """The RayCluster controller's informers the RayJob controller reads and listens to."""

    clusters: ClusterInformerGroup
    pods: ClusterInformerGroup
    services: ClusterInformerGroup
    secrets: ClusterInformerGroup


@dataclass
class RayJobController:
    """The parts of the RayJob controller the operator runs (informers go to the shared Manager)."""

    informers: list[Informer]
    controller: Controller
    reconciler: RayJobReconciler
    queue: WorkQueue
    recorder: EventRecorder

    def close(self) -> None:
        """After the controllers stopped: send queued Events (bounded) and close the dashboard session."""
        self.recorder.close()
        self.reconciler.close()


def rayjob_changed(old: JSON | None, new: JSON | None) -> bool:
    """Added/deleted, or generation, labels, annotations, finalizers or deletion changed (not status)."""
    if old is None or new is None:
        return True
    a, b = meta_of(old), meta_of(new)
    keys = ("generation", "labels", "annotations", "finalizers", "deletionTimestamp")
    return any(a.get(k) != b.get(k) for k in keys)


def rayjob_owner(obj: JSON) -> str | None:
    """`namespace/name` of the RayJob controlling `obj`, or None."""
    owner = controller_of(obj)
    if owner is None or owner.get("kind") != c.KIND_RAYJOB:
        return None
    return f"{namespace_of(obj)}/{owner.get('name')}"


def _informers(
    client: KubeClient, settings: OperatorSettings, resource: Resource, **kw: Any
) -> list[ClusterInformer]:
    namespaces: tuple[str | None, ...] = settings.namespaces or (None,)
    return [ClusterInformer(client, resource.path(ns), **kw) for ns in namespaces]


def build_rayjob_controller(
    client: KubeClient,
    settings: OperatorSettings,
    shared: Shared,
    *,
    dashboard: DashboardClient | None = None,
) -> RayJobController:
    """The RayJob controller on `client`, reading `shared` caches; `dashboard` is injectable (tests)."""
    queue = WorkQueue()
    rayjobs = _informers(client, settings, RAYJOBS)
    jobs = _informers(client, settings, JOBS, label_selector=JOB_SELECTOR)
    rayjob_cache = ClusterInformerGroup(rayjobs)

    def on_rayjob(old: JSON | None, new: JSON | None) -> None:
        if rayjob_changed(old, new):
            queue.add(key_of(new or old or {}))

    def on_owned(delay: float) -> Any:
        def handler(old: JSON | None, new: JSON | None) -> None:
            key = rayjob_owner(new or old or {})
            if key is not None:
                queue.add_after(key, delay)

        return handler

    def on_head_pod(old: JSON | None, new: JSON | None) -> None:
        pod = new or old or {}
        cluster = cluster_of(pod)
        if labels_of(pod).get(c.LABEL_NODE_TYPE) != c.NODE_TYPE_HEAD or not cluster:
            return
        owner = shared.clusters.get(namespace_of(pod), cluster)
        key = rayjob_owner(owner) if owner is not None else None
        if key is not None:
            queue.add_after(key, settings.pod_event_delay)

    for informer in rayjobs:
        informer.add_handler(on_rayjob)
    for informer in jobs:
        informer.add_handler(on_owned(0.0))
    shared.clusters.add_handler(on_owned(0.0))
    shared.pods.add_handler(on_head_pod)
    views = Views(
        rayjobs=rayjob_cache,
        jobs=ClusterInformerGroup(jobs),
        clusters=shared.clusters,
        pods=shared.pods,
        services=shared.services,
        secrets=shared.secrets,
    )
    dashboard = dashboard or DashboardClient()
    recorder = EventRecorder(client)
    applier = RayJobApplier(client, dashboard=dashboard, recorder=recorder, settings=settings.build)
    reconciler = RayJobReconciler(
        client,
        views=views,
        applier=applier,
        dashboard=dashboard,
        build=settings.build,
        gates=settings.gates,
        timeouts=Timeouts(
            requeue=settings.rayjob_requeue_seconds,
            transition_grace=settings.rayjob_transition_grace_seconds,
            status_check=settings.rayjob_status_check_timeout_seconds,
        ),
        delete_self_after_finish=settings.delete_rayjob_after_finish,
    )
    controller = Controller(
        name="rayjob", queue=queue, reconcile=reconciler.reconcile, workers=settings.reconcile_concurrency
    )
    return RayJobController(
        informers=[*rayjobs, *jobs],
        controller=controller,
        reconciler=reconciler,
        queue=queue,
        recorder=recorder,
    )


__all__ = [
    "JOB_SELECTOR",
    "RayJobController",
    "Shared",
    "build_rayjob_controller",
    "rayjob_changed",
    "rayjob_owner",
]
