"""What a RayCluster should own, from the builders and its batch scheduler (pure; no I/O).

`desired_children` lists the non-Pod children (autoscaler RBAC, Ingress, auth Secret, Services, the
scheduler's PodGroup); `pod_factory` returns the function the planner calls for each new Pod: the builder's
Pod stamped with the scheduler's metadata. The auth token comes from the injected `token` (the reconciler
passes `secrets.token_bytes`), and only when the Secret does not exist yet.
"""

from __future__ import annotations

from collections.abc import Callable

from ray_operator import constants as c
from ray_operator.builders import (
    TOKEN_BYTES,
    BuildSettings,
    auth_secret,
    autoscaler_rbac,
    head_ingress,
    head_pod,
    head_service,
    headless_worker_service,
    names,
    needs_auth_secret,
    needs_headless_service,
    serve_service,
    wants_ingress,
    wants_serve_service,
    worker_pod,
)
from ray_operator.builders.raystart import SpecValueError
from ray_operator.models import RayCluster, WorkerGroupSpec
from ray_operator.raycluster.plan import PodFactory, PodSlot
from ray_operator.schedulers import scheduler_of
from rayside.objects import JSON


def desired_children(
    cluster: RayCluster,
    *,
    settings: BuildSettings,
    existing: set[tuple[str, str]],
    token: Callable[[int], bytes],
) -> list[JSON]:
    """The children to ensure, in creation order. `existing` holds (kind, name) already present."""
    children = autoscaler_rbac(cluster, settings=settings)
    if wants_ingress(cluster):
        children.append(head_ingress(cluster))
    if needs_auth_secret(cluster) and ("Secret", names.auth_secret_name(cluster)) not in existing:
        children.append(auth_secret(cluster, token(TOKEN_BYTES)))
    children.append(head_service(cluster, settings=settings))
    if needs_headless_service(cluster):
        children.append(headless_worker_service(cluster, settings=settings))
    if wants_serve_service(cluster):
        children.append(serve_service(cluster, settings=settings))
    scheduler = scheduler_of(cluster, settings)
    if scheduler is not None:
        children += scheduler.objects_on_submission(cluster)
    return children


def pod_factory(cluster: RayCluster, *, settings: BuildSettings) -> PodFactory:
    """Builds the Pod for a slot (head when `slot.group` is None) with the scheduler's metadata."""
    groups = {g.group_name: (i, g) for i, g in enumerate(cluster.spec.worker_group_specs or [])}
    scheduler = scheduler_of(cluster, settings)

    def build(slot: PodSlot) -> JSON:
        if slot.group is None:
            try:
                return head_pod(cluster, settings=settings)
            except SpecValueError as exc:
                raise exc.at("spec.headGroupSpec") from None
        index, group = groups[slot.group]
        try:
            return _worker(group, slot)
        except SpecValueError as exc:
            raise exc.at(f"spec.workerGroupSpecs[{index}]") from None

    def _worker(group: WorkerGroupSpec, slot: PodSlot) -> JSON:
        return worker_pod(
            cluster,
            group,
            settings=settings,
            replica_index=slot.replica_index,
            replica_name=slot.replica_name,
            host_index=slot.host_index,
        )

    def make(slot: PodSlot) -> JSON:
        pod = build(slot)
        group = c.HEAD_GROUP if slot.group is None else slot.group
        return pod if scheduler is None else scheduler.add_metadata_to_child(cluster, pod, group)

    return make
