"""Wire the RayService controller: informers (RayServices, RayClusters, Services, serve Pods), the event
handlers that queue RayService keys, the reconciler and its worker threads.

`build_rayservice_controller(client, settings)` returns the parts; a `Manager` runs them next to the
RayCluster controller (add `informers` to its informers and `controller` to its controllers). A RayService
is queued when its generation, labels, annotations or deletion change (not on our own status writes), and
when a RayCluster or Service it owns changes; everything else is picked up by the 2 s requeue.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ray_operator import constants as c
from ray_operator.raycluster.assembly import RayClusterOperator, spec_or_meta_changed
from ray_operator.rayservice.applier import Endpoint
from ray_operator.rayservice.dashboard import ServeClient
from ray_operator.rayservice.reconciler import RayServiceReconciler, proxy_healthy
from ray_operator.runtime.cache import ClusterInformer, ClusterInformerGroup
from ray_operator.runtime.events import EventRecorder
from ray_operator.settings import OperatorSettings
from rayside.kubeclient import KubeClient
from rayside.objects import (
    JSON,
    PODS,
    RAYCLUSTERS,
    RAYSERVICES,
    SERVICES,
    Resource,
    controller_of,
    key_of,
    labels_of,
    namespace_of,
)
from rayside.runtime.controller import Controller
from rayside.runtime.informer import Informer
from rayside.runtime.workqueue import WorkQueue


@dataclass
class RayServiceController:
    informers: list[Informer]
    controller: Controller
    reconciler: RayServiceReconciler
    queue: WorkQueue


def _informers(
    client: KubeClient, settings: OperatorSettings, resource: Resource, **kw: Any
) -> list[ClusterInformer]:
    namespaces: tuple[str | None, ...] = settings.namespaces or (None,)
    return [ClusterInformer(client, resource.path(ns), **kw) for ns in namespaces]


def owner_key(obj: JSON) -> str | None:
    """The RayService a RayCluster or Service belongs to (originated-from labels or controller owner)."""
    labels = labels_of(obj)
    if labels.get(c.LABEL_ORIGINATED_FROM_CRD) == c.KIND_RAYSERVICE:
        owner = controller_of(obj)
        if owner is not None and owner.get("kind") == c.KIND_RAYSERVICE:
            return f"{namespace_of(obj)}/{owner.get('name')}"
        name = labels.get(c.LABEL_ORIGINATED_FROM_CR_NAME)
        if name and controller_of(obj) is None:
            return f"{namespace_of(obj)}/{name}"
    return None


def zero_downtime_from(environ: Mapping[str, str]) -> bool:
    """`ENABLE_ZERO_DOWNTIME`: anything but `false` (any case) keeps zero-downtime upgrades on."""
    return (environ.get("ENABLE_ZERO_DOWNTIME") or "").lower() != "false"


def build_rayservice_controller(
    client: KubeClient,
    settings: OperatorSettings,
    *,
    serve: ServeClient | None = None,
    endpoint: Endpoint | None = None,
    environ: Mapping[str, str] | None = None,
    proxy_health: Callable[[str, int], bool] | None = None,
    shared: Mapping[str, list[ClusterInformer]] | None = None,
) -> RayServiceController:
    """The RayService controller's informers, queue, reconciler and controller (not started).

    `shared` may hold informers of another controller to read instead of starting new ones (keys
    `rayclusters`, `services`, `pods`; Pods must keep labels and status); `informers` of the result are
    only those created here."""
    queue = WorkQueue()
    shared = shared or {}
    rayservices = _informers(client, settings, RAYSERVICES)
    clusters = shared.get("rayclusters") or _informers(
        client, settings, RAYCLUSTERS, label_selector=c.LABEL_ORIGINATED_FROM_CR_NAME
    )
    services = shared.get("services") or _informers(client, settings, SERVICES)
    pods = shared.get("pods") or _informers(client, settings, PODS, label_selector=c.LABEL_SERVE)
    own = [i for i in (*clusters, *services, *pods) if not any(i in v for v in shared.values())]

    def on_rayservice(old: JSON | None, new: JSON | None) -> None:
        if spec_or_meta_changed(old, new):
            queue.add(key_of(new or old or {}))

    def on_owned(old: JSON | None, new: JSON | None) -> None:
        key = owner_key(new or old or {})
        if key:
            queue.add(key)

    for informer in rayservices:
        informer.add_handler(on_rayservice)
    for informer in clusters + services:
        informer.add_handler(on_owned)
    reconciler = RayServiceReconciler(
        client,
        settings=settings,
        rayservices=ClusterInformerGroup(rayservices),
        clusters=ClusterInformerGroup(clusters),
        services=ClusterInformerGroup(services),
        pods=ClusterInformerGroup(pods),
        recorder=EventRecorder(client),
        serve=serve,
        endpoint=endpoint,
        zero_downtime_env=zero_downtime_from(os.environ if environ is None else environ),
        proxy_health=proxy_health or proxy_healthy,
    )
    controller = Controller(
        name="rayservice", queue=queue, reconcile=reconciler.reconcile, workers=settings.reconcile_concurrency
    )
    informers: list[Informer] = [*rayservices, *own]
    return RayServiceController(
        informers=informers, controller=controller, reconciler=reconciler, queue=queue
    )


def attach_to(
    operator: RayClusterOperator, client: KubeClient, settings: OperatorSettings, **kw: Any
) -> RayServiceController:
    """Build the RayService controller on the RayCluster operator's manager, sharing its RayCluster,
    Service and Pod caches (one watch each), and register it there; `kw` as for
    `build_rayservice_controller`."""
    shared: dict[str, list[ClusterInformer]] = {}
    for informer in operator.manager.informers:
        kind = informer.path.rsplit("/", 1)[-1]
        if kind in ("rayclusters", "services", "pods") and isinstance(informer, ClusterInformer):
            shared.setdefault(kind, []).append(informer)
    parts = build_rayservice_controller(client, settings, shared=shared, **kw)
    operator.manager.informers += parts.informers
    operator.manager.controllers.append(parts.controller)
    return parts
