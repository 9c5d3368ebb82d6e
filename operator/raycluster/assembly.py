"""Wire the operator: the RayCluster controller (informers for RayClusters, Pods, Services, Secrets, event
handlers that queue cluster keys, the reconciler, worker threads), the RayJob controller on the same client
and caches (`ray_operator.rayjob.assembly`), one Manager and optional leader election.

RayCluster changes queue the cluster only when generation, labels, annotations or deletion changed (our
own status writes do not). Pod events queue their cluster after `pod_event_delay`, coalescing bursts
(hundreds of Pods starting) into one pass.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ray_operator import constants as c
from ray_operator.raycluster.reconciler import RayClusterReconciler
from ray_operator.rayjob.assembly import RayJobController, Shared, build_rayjob_controller
from ray_operator.rayjob.dashboard import DashboardClient
from ray_operator.runtime.cache import ClusterInformer, ClusterInformerGroup, cluster_of
from ray_operator.runtime.events import EventRecorder
from ray_operator.runtime.leader import LeaderElector
from ray_operator.runtime.manager import Manager
from ray_operator.settings import OperatorSettings
from rayside.kubeclient import KubeClient
from rayside.objects import (
    JSON,
    PODS,
    RAYCLUSTERS,
    SECRETS,
    SERVICES,
    Resource,
    key_of,
    meta_of,
    namespace_of,
)
from rayside.runtime.controller import Controller
from rayside.runtime.workqueue import WorkQueue

POD_SELECTOR = f"{c.LABEL_NODE_TYPE} in ({c.NODE_TYPE_HEAD},{c.NODE_TYPE_WORKER})"


def spec_or_meta_changed(old: JSON | None, new: JSON | None) -> bool:
    """The RayCluster predicate: added/deleted, or generation, labels, annotations or deletion changed."""
    if old is None or new is None:
        return True
    a, b = meta_of(old), meta_of(new)
    return any(a.get(k) != b.get(k) for k in ("generation", "labels", "annotations", "deletionTimestamp"))


def slim_pod(pod: JSON) -> JSON:
    """What the reconciler reads of a Pod (metadata, restartPolicy, container names, status): the cache
    holds thousands of Pods, and their full specs (env, probes, volumes) would dominate memory."""
    meta = dict(pod.get("metadata") or {})
    meta.pop("managedFields", None)
    spec = pod.get("spec") or {}
    slim_spec = {
        "restartPolicy": spec.get("restartPolicy"),
        "containers": [{"name": c.get("name")} for c in spec.get("containers") or []],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": slim_spec,
        "status": pod.get("status") or {},
    }


@dataclass
class RayClusterOperator:
    manager: Manager
    reconciler: RayClusterReconciler
    queue: WorkQueue
    client: KubeClient
    rayjob: RayJobController | None = None

    def run(self, stop: threading.Event) -> int:
        self.reconciler.stopping = stop
        try:
            return self.manager.run(stop)
        finally:
            self.reconciler.close()
            if self.rayjob is not None:
                self.rayjob.close()


def _informers(
    client: KubeClient, settings: OperatorSettings, resource: Resource, **kw: Any
) -> list[ClusterInformer]:
    namespaces: tuple[str | None, ...] = settings.namespaces or (None,)
    return [ClusterInformer(client, resource.path(ns), **kw) for ns in namespaces]


def build_operator(
    client: KubeClient, settings: OperatorSettings, *, dashboard: DashboardClient | None = None
) -> RayClusterOperator:
    """Both controllers on `client`; `dashboard` (the RayJob controller's Ray dashboard client) is
    injectable for tests."""
    queue = WorkQueue()
    clusters = _informers(client, settings, RAYCLUSTERS)
    pods = _informers(client, settings, PODS, label_selector=POD_SELECTOR, transform=slim_pod)
    services = _informers(client, settings, SERVICES)
    secrets_ = _informers(client, settings, SECRETS, label_selector=c.LABEL_CLUSTER)

    def on_cluster(old: JSON | None, new: JSON | None) -> None:
        if spec_or_meta_changed(old, new):
            queue.add(key_of(new or old or {}))

    def on_child(delay: float) -> Any:
        def handler(old: JSON | None, new: JSON | None) -> None:
            obj = new or old or {}
            cluster = cluster_of(obj)
            if cluster:
                queue.add_after(f"{namespace_of(obj)}/{cluster}", delay)

        return handler

    for informer in clusters:
        informer.add_handler(on_cluster)
    for informer in pods:
        informer.add_handler(on_child(settings.pod_event_delay))
    for informer in services + secrets_:
        informer.add_handler(on_child(0.0))
    shared = Shared(
        clusters=ClusterInformerGroup(clusters),
        pods=ClusterInformerGroup(pods),
        services=ClusterInformerGroup(services),
        secrets=ClusterInformerGroup(secrets_),
    )
    reconciler = RayClusterReconciler(
        client,
        settings=settings,
        clusters=shared.clusters,
        pods=shared.pods,
        services=shared.services,
        secrets_=shared.secrets,
        recorder=EventRecorder(client),
    )
    rayjob = build_rayjob_controller(client, settings, shared, dashboard=dashboard)
    controller = Controller(
        name="raycluster", queue=queue, reconcile=reconciler.reconcile, workers=settings.reconcile_concurrency
    )
    leader = None
    if settings.leader_elect:
        leader = LeaderElector(
            client,
            namespace=settings.leader_election_namespace,
            name=settings.leader_election_id,
            identity=settings.identity,
        )
    manager = Manager(
        informers=[*clusters, *pods, *services, *secrets_, *rayjob.informers],
        controllers=[controller, rayjob.controller],
        leader=leader,
    )
    return RayClusterOperator(
        manager=manager, reconciler=reconciler, queue=queue, client=client, rayjob=rayjob
    )
