"""localkube's built-in controllers, run like kube-controller-manager: HTTP clients of the API server that
list+watch every served resource (custom resources included, discovered from CRDs) and run the garbage
collector, the namespace lifecycle controller (with default ServiceAccounts), the Job controller and an
Endpoints controller.

They run on the shared runtime (`rayside.runtime`): one Informer per served resource, one WorkQueue of
`controller:key` items and one Controller whose workers dispatch each item to its controller. A pass that
raises is requeued with the queue's growing per-item backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from requests.adapters import HTTPAdapter

from localkube.controllers.endpoints import EndpointsController
from localkube.controllers.gc import GarbageCollector
from localkube.controllers.job import JobSettings
from localkube.controllers.job_controller import JobController
from localkube.controllers.namespace import NamespaceController
from localkube.controllers.runtime import WorkItem, discover, served_resource
from rayside.kubeclient import KubeClient
from rayside.objects import JSON, Resource, is_deleting
from rayside.runtime.controller import Controller
from rayside.runtime.informer import Informer, typed_handler
from rayside.runtime.workqueue import WorkQueue

__all__ = ["Controllers", "JobSettings"]
log = logging.getLogger(__name__)
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")


def crd_resources(crd: JSON) -> list[Resource]:
    """The served versions of an established CRD as resources (storage version first)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    conds = {c.get("type"): c.get("status") for c in (crd.get("status") or {}).get("conditions") or []}
    if conds.get("Established") != "True" or is_deleting(crd):
        return []
    versions = sorted(
        (v for v in spec.get("versions") or [] if v.get("served")), key=lambda v: not v.get("storage")
    )
    return [
        Resource(
            str(spec.get("group")),
            str(v["name"]),
            str(names.get("plural")),
            str(names.get("kind")),
            spec.get("scope") == "Namespaced",
        )
        for v in versions
    ]


class Controllers:
    """Start with :meth:`start` (returns once the caches are synced), stop with :meth:`stop`."""

    def __init__(
        self,
        client: KubeClient,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        job_settings: JobSettings | None = None,
        workers: int = 2,
        watch_timeout: int = 240,
        sync_timeout: float = 30.0,
    ) -> None:
        self.client = client
        self.clock = clock
        self.sleep = sleep
        self.workers = workers
        self.watch_timeout = watch_timeout
        self.sync_timeout = sync_timeout
        self.stop_event = threading.Event()
        self.queue = WorkQueue(clock=clock, base_delay=0.05, max_delay=5.0)
        self.controller = Controller(
            name="localkube-controller", queue=self.queue, reconcile=self._process, workers=workers
        )
        self.lock = threading.Lock()
        self.informers: dict[Resource, Informer] = {}
        self.kinds: dict[tuple[str, str], Resource] = {}
        self.gc = GarbageCollector(client, self._enqueue, self._resource_for, self._resources)
        self.namespaces = NamespaceController(
            client, self._enqueue, self._resources, self._namespace, self._has_sa
        )
        self.jobs = JobController(client, self._enqueue, self._job, clock, job_settings or JobSettings())
        self.endpoints = EndpointsController(
            client,
            self._enqueue,
            lambda: self._items("", "services"),
            lambda: self._items("", "pods"),
            lambda key: self._cached("", "services", key),
            lambda key: self._cached("", "endpoints", key),
        )

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=128)
        self.client.session.mount("http://", adapter)
        self.client.session.mount("https://", adapter)
        for res in discover(self.client):
            self._watch(res)
        deadline = time.monotonic() + self.sync_timeout
        for inf in list(self.informers.values()):
            if not inf.synced.wait(max(deadline - time.monotonic(), 0.0)):
                log.warning("controllers: cache for %s did not sync in time", inf.name)
        self.controller.start()
        log.debug("controllers started with %d informers", len(self.informers))

    def stop(self) -> None:
        self.stop_event.set()
        self.queue.shutdown()
        self.client.session.close()
        self.controller.stop(timeout=2)

    # -- informers -----------------------------------------------------------------------------------------
    def _watch(self, res: Resource) -> None:
        with self.lock:
            self.kinds[(res.api_version, res.kind)] = res
            if res in self.informers or self.stop_event.is_set():
                return
            inf = Informer(self.client, res.path(), on_change=typed_handler(self._handler(res)),
                           watch_timeout=self.watch_timeout, sleep=self.sleep,
                           name=f"{res.plural}.{res.group}")  # fmt: skip
            self.informers[res] = inf
        inf.start(self.stop_event)

    def _unwatch(self, crd: JSON) -> None:
        spec = crd.get("spec") or {}
        group, plural = spec.get("group"), (spec.get("names") or {}).get("plural")
        with self.lock:
            gone = [r for r in self.informers if r.group == group and r.plural == plural]
            for res in gone:
                self.informers.pop(res).halt()
            for key in [k for k, r in self.kinds.items() if r.group == group and r.plural == plural]:
                del self.kinds[key]
        for res in gone:
            self.gc.forget_resource(res)

    def _handler(self, res: Resource) -> Callable[[str, JSON, JSON | None], None]:
        def handle(kind: str, obj: JSON, old: JSON | None) -> None:
            self.gc.on_event(res, kind, obj, old)
            key = (res.group, res.plural)
            if key == ("", "namespaces"):
                self.namespaces.on_namespace(kind, obj)
            elif key == ("", "serviceaccounts"):
                self.namespaces.on_service_account(kind, obj)
            elif key == ("batch", "jobs"):
                self.jobs.on_job(kind, obj)
            elif key == ("", "pods"):
                self.jobs.on_pod(kind, obj)
                self.endpoints.on_pod(kind, obj, old)
            elif key == ("", "services"):
                self.endpoints.on_service(kind, obj)
            elif key == CRDS:
                self._on_crd(kind, obj)

        return handle

    def _on_crd(self, kind: str, crd: JSON) -> None:
        served = [] if kind == "DELETED" else crd_resources(crd)
        if not served:
            self._unwatch(crd)
            return
        with self.lock:
            for res in served[1:]:
                self.kinds[(res.api_version, res.kind)] = res
        self._watch(served[0])

    # -- lookups for the controllers ------------------------------------------------------------------------
    def _informer(self, group: str, plural: str) -> Informer | None:
        with self.lock:
            return next(
                (i for r, i in self.informers.items() if r.group == group and r.plural == plural), None
            )

    def _resource_for(self, api_version: str, kind: str) -> Resource | None:
        """The resource serving ``kind``; asks the server when the caches have not seen it (yet)."""
        with self.lock:
            known = self.kinds.get((api_version, kind))
        return known if known is not None else served_resource(self.client, api_version, kind)

    def _resources(self) -> list[Resource]:
        with self.lock:
            return list(self.informers)

    def _namespace(self, name: str) -> JSON | None:
        inf = self._informer("", "namespaces")
        return inf.get("", name) if inf else None

    def _has_sa(self, ns: str) -> bool:
        inf = self._informer("", "serviceaccounts")
        return bool(inf and inf.get(ns, "default"))

    def _job(self, key: str) -> JSON | None:
        return self._cached("batch", "jobs", key)

    def _cached(self, group: str, plural: str, key: str) -> JSON | None:
        inf = self._informer(group, plural)
        return inf.get_by_key(key) if inf else None

    def _items(self, group: str, plural: str) -> list[JSON]:
        inf = self._informer(group, plural)
        return inf.list() if inf else []

    # -- work ----------------------------------------------------------------------------------------------
    def _enqueue(self, item: WorkItem, delay: float) -> None:
        self.queue.add_after(":".join(item), delay)

    def _process(self, item: str) -> None:
        kind, _, key = item.partition(":")
        handlers: dict[str, Callable[[Any], None]] = {
            "gc": self.gc.process,
            "ns": self.namespaces.process,
            "job": self.jobs.process,
            "jobpod": self.jobs.process_pod,
            "ep": self.endpoints.process,
        }
        handler = handlers.get(str(kind))
        if handler is not None:
            handler(key)
