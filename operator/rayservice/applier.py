"""The one place the RayService controller acts: Kubernetes writes, Serve PUTs, Events, status.

`Applier.apply(ctx, actions)` performs a `Decision`'s actions in order and records the Events KubeRay
records for them (`CreatedRayCluster`, `UpdatedService`, `UpdatedServeApplications`, ...). A failed
Kubernetes write is reported as its `FailedTo...` Warning and stops the remaining writes of the pass (the
next pass decides again); a refused Serve config is remembered with Serve's answer (the next pass turns
it into the `ServeConfigApplied` condition) and the pass goes on. The Ray token is read from the
cluster's Secret, sent in a header by the `ServeClient`, and never logged or put into an Event.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ray_operator import constants as c
from ray_operator.rayservice.dashboard import DashboardError, ServeClient
from ray_operator.rayservice.observed import (
    FINALIZER,
    Action,
    ApplyServeConfig,
    CachedConfig,
    CreateCluster,
    CreateObject,
    DeleteCluster,
    DeleteObject,
    RecordEvent,
    ReplaceObject,
    SetFinalizer,
    SetServeLabel,
    UpdateCluster,
)
from ray_operator.runtime.events import EventRecorder
from rayside.kubeclient import AlreadyExists, KubeClient, KubeError, NotFound
from rayside.objects import (
    JSON,
    PODS,
    RAYCLUSTERS,
    RAYSERVICES,
    annotations_of,
    key_of,
    meta_of,
    name_of,
    namespace_of,
    resource_for,
    resource_of,
    resource_version_of,
)

log = logging.getLogger(__name__)
BACKGROUND = {"propagationPolicy": "Background"}
SERVE_CACHE_SIZE = 1000  # RayServices whose applied Serve configs are remembered

# (namespace, cluster) -> (dashboard URL, token or None); raises DashboardError when unknown
Endpoint = Callable[[str, JSON], tuple[str, str | None]]


@dataclass
class ServeMemory:
    """Per RayService: the configs applied per cluster and the last refusal per cluster (raw, message)."""

    applied: dict[str, CachedConfig] = field(default_factory=dict)
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)


class ServeCache:
    """An LRU of `ServeMemory` by RayService key (lost on restart: one idempotent re-PUT then)."""

    def __init__(self, size: int = SERVE_CACHE_SIZE) -> None:
        self._items: OrderedDict[str, ServeMemory] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()  # workers reconcile different RayServices at once

    def get(self, key: str) -> ServeMemory:
        """The memory of one RayService (only its own pass, never two at once, touches it)."""
        with self._lock:
            memory = self._items.pop(key, None) or ServeMemory()
            self._items[key] = memory
            while len(self._items) > self._size:
                self._items.popitem(last=False)
            return memory

    def forget(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def keep_only(self, key: str, clusters: set[str]) -> None:
        memory = self.get(key)
        memory.applied = {k: v for k, v in memory.applied.items() if k in clusters}
        memory.refused = {k: v for k, v in memory.refused.items() if k in clusters}


@dataclass
class Applied:
    failed: bool = False  # a Kubernetes write (or a target-capacity PUT) failed: do not write the status


class Applier:
    def __init__(
        self,
        client: KubeClient,
        *,
        recorder: EventRecorder,
        serve: ServeClient,
        endpoint: Endpoint,
        cache: ServeCache,
        clusters: Callable[[str, str], JSON | None],
    ) -> None:
        self._client = client
        self._recorder = recorder
        self._serve = serve
        self._endpoint = endpoint
        self._cache = cache
        self._cluster = clusters

    def apply(self, obj: JSON, actions: Sequence[Action]) -> Applied:
        result = Applied()
        for action in actions:
            if isinstance(action, RecordEvent):
                self._event(obj, action.type_, action.reason, action.message)
            elif isinstance(action, ApplyServeConfig):
                if not self._put(obj, action) and action.capacity:
                    result.failed = True
            elif not result.failed:
                result.failed = not self._write(obj, action)
        return result

    def _event(self, obj: JSON, type_: str, reason: str, message: str) -> None:
        self._recorder.record(obj, type_=type_, reason=reason, message=message)

    # -- Serve ----------------------------------------------------------------------------------------
    def _put(self, obj: JSON, action: ApplyServeConfig) -> bool:
        ns, key = namespace_of(obj), key_of(obj)
        memory = self._cache.get(key)
        cluster = self._cluster(ns, action.cluster)
        try:
            if cluster is None:
                raise DashboardError(f"RayCluster {action.cluster} not found")
            url, token = self._endpoint(ns, cluster)
            self._serve.put_config(url, token, action.config)
        except DashboardError as exc:
            message = f"Failed to update Serve applications on RayCluster {action.cluster}: {exc}"
            log.debug("rayservice %s: %s", key, message)
            memory.refused[action.cluster] = (action.raw, str(exc))
            self._event(obj, "Warning", "FailedToUpdateServeApplications", message)
            return False
        memory.refused.pop(action.cluster, None)
        memory.applied[action.cluster] = CachedConfig(action.raw, action.config.get("target_capacity"))
        if not action.capacity:
            self._event(
                obj, "Normal", "UpdatedServeApplications", f"Updated Serve applications on {action.cluster}"
            )
        return True

    # -- Kubernetes -----------------------------------------------------------------------------------
    def _write(self, obj: JSON, action: Action) -> bool:
        kind, verb, name = _describe(action)
        try:
            self._do(obj, action)
        except KubeError as exc:
            message = f"Failed to {verb.lower()} {kind} {namespace_of(obj)}/{name}: {exc.message}"
            log.debug("rayservice %s: %s", key_of(obj), message)
            if kind:
                self._event(obj, "Warning", f"FailedTo{verb}{kind}", message)
            return False
        if kind and verb != "Patch":
            self._event(obj, "Normal", f"{verb}d{kind}", f"{verb}d {kind} {namespace_of(obj)}/{name}")
        return True

    def _do(self, obj: JSON, action: Action) -> None:
        ns = namespace_of(obj)
        if isinstance(action, CreateCluster):
            self._client.create(RAYCLUSTERS.path(ns), action.obj)
        elif isinstance(action, UpdateCluster):
            self._update_cluster(ns, action)
        elif isinstance(action, DeleteCluster):
            with contextlib.suppress(NotFound):
                self._client.delete(RAYCLUSTERS.path(ns, action.name), BACKGROUND)
        elif isinstance(action, CreateObject):
            with contextlib.suppress(AlreadyExists):
                self._client.create(resource_of(action.obj).path(ns), action.obj)
        elif isinstance(action, ReplaceObject):
            self._client.replace(resource_of(action.obj).path_of(action.obj), action.obj)
        elif isinstance(action, DeleteObject):
            resource = resource_for("v1" if action.kind == "Service" else _GATEWAY_API, action.kind)
            with contextlib.suppress(NotFound):
                self._client.delete(resource.path(ns, action.name), BACKGROUND)
        elif isinstance(action, SetFinalizer):
            self._set_finalizer(obj, action.present)
        elif isinstance(action, SetServeLabel):
            body = {"metadata": {"labels": {c.LABEL_SERVE: action.value}}}
            self._client.patch(PODS.path(ns, action.pod), body)

    def _update_cluster(self, ns: str, action: UpdateCluster) -> None:
        live = self._cluster(ns, action.name)
        if live is None:
            raise NotFound(404, "NotFound", f"RayCluster {ns}/{action.name} not found")
        spec = dict(action.goal["spec"])
        if "suspend" in (live.get("spec") or {}):
            spec["suspend"] = live["spec"]["suspend"]
        meta = {
            **meta_of(live),
            "labels": dict(meta_of(action.goal).get("labels") or {}),
            "annotations": {**annotations_of(action.goal)},
        }
        self._client.replace(RAYCLUSTERS.path(ns, action.name), {**live, "metadata": meta, "spec": spec})

    def _set_finalizer(self, obj: JSON, present: bool) -> None:
        finalizers = [f for f in meta_of(obj).get("finalizers") or [] if f != FINALIZER]
        if present:
            finalizers.append(FINALIZER)
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version_of(obj)}}
        self._client.patch(RAYSERVICES.path_of(obj), body)


_GATEWAY_API = "gateway.networking.k8s.io/v1"


def _describe(action: Action) -> tuple[str, str, str]:
    """(kind, verb, name) for Events: `Created`/`Updated`/`Deleted` + kind, or `FailedTo<Verb><Kind>`."""
    if isinstance(action, CreateCluster):
        return "RayCluster", "Create", name_of(action.obj)
    if isinstance(action, UpdateCluster):
        return "RayCluster", "Update", action.name
    if isinstance(action, DeleteCluster):
        return "RayCluster", "Delete", action.name
    if isinstance(action, CreateObject):
        return str(action.obj.get("kind")), "Create", name_of(action.obj)
    if isinstance(action, ReplaceObject):
        return str(action.obj.get("kind")), "Update", name_of(action.obj)
    if isinstance(action, DeleteObject):
        return action.kind, "Delete", action.name
    if isinstance(action, SetServeLabel):
        return "HeadPodServeLabel", "Update", action.pod
    return "", "Patch", "finalizer"
