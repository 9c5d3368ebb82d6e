"""Namespace lifecycle: empty a terminating namespace (every namespaced resource, honouring the objects'
own finalizers), then drop the ``kubernetes`` finalizer via ``/finalize``; and keep a ``default``
ServiceAccount in every active namespace.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from localkube.controllers.runtime import Enqueue
from rayside.kubeclient import AlreadyExists, Conflict, KubeClient, KubeError, NotFound
from rayside.objects import (
    JSON,
    NAMESPACES,
    SERVICEACCOUNTS,
    Resource,
    is_deleting,
    name_of,
    namespace_of,
    resource_version_of,
)

log = logging.getLogger(__name__)
NAMESPACE_FINALIZER = "kubernetes"


def is_terminating(ns: JSON) -> bool:
    return is_deleting(ns) or (ns.get("status") or {}).get("phase") == "Terminating"


def plan_namespace_cleanup(contents: dict[Resource, list[JSON]]) -> tuple[list[tuple[Resource, JSON]], bool]:
    """(objects to delete now, whether the namespace is empty) from a live listing of its contents."""
    to_delete = [(res, obj) for res, items in contents.items() for obj in items if not is_deleting(obj)]
    empty = not any(contents.values())
    return to_delete, empty


class NamespaceController:
    """Works namespace names from a queue; ``resources`` returns the currently served namespaced kinds."""

    def __init__(
        self,
        client: KubeClient,
        enqueue: Enqueue,
        resources: Callable[[], list[Resource]],
        namespace_of: Callable[[str], JSON | None],
        sa_exists: Callable[[str], bool],
        retry_delay: float = 0.2,
    ) -> None:
        self.client = client
        self.enqueue = enqueue
        self.resources = resources
        self.namespace_of = namespace_of
        self.sa_exists = sa_exists
        self.retry_delay = retry_delay

    def on_namespace(self, kind: str, ns: JSON) -> None:
        if kind != "DELETED":
            self.enqueue(("ns", name_of(ns)), 0.0)

    def on_service_account(self, kind: str, sa: JSON) -> None:
        if kind == "DELETED" and name_of(sa) == "default":
            self.enqueue(("ns", namespace_of(sa)), 0.0)

    def process(self, name: str) -> None:
        ns = self.namespace_of(name)
        if ns is None:
            return
        if is_terminating(ns):
            self._drain(ns)
        elif not self.sa_exists(name):
            self._ensure_default_sa(name)

    def _ensure_default_sa(self, ns: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": ns},
        }
        try:
            self.client.create(SERVICEACCOUNTS.path(ns), body)
            log.debug("namespace %s: created ServiceAccount default", ns)
        except (AlreadyExists, NotFound):
            pass
        except KubeError as exc:  # e.g. 403 while the namespace starts terminating
            log.debug("namespace %s: cannot create ServiceAccount default: %s", ns, exc)

    def _drain(self, ns: JSON) -> None:
        name = name_of(ns)
        contents: dict[Resource, list[JSON]] = {}
        for res in self.resources():
            if not res.namespaced:
                continue
            try:
                items, _rv = self.client.list_all(res.path(name))
            except NotFound:
                continue
            contents[res] = items
        to_delete, empty = plan_namespace_cleanup(contents)
        for res, obj in to_delete:
            meta = obj["metadata"]
            with contextlib.suppress(NotFound, Conflict):
                self.client.delete(res.path(name, meta["name"]), body={"propagationPolicy": "Background"})
        if not empty:
            self.enqueue(("ns", name), self.retry_delay)
            return
        self._finalize(ns)

    def _finalize(self, ns: JSON) -> None:
        name = name_of(ns)
        fins = list((ns.get("spec") or {}).get("finalizers") or [])
        if NAMESPACE_FINALIZER not in fins:
            return
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "resourceVersion": resource_version_of(ns)},
            "spec": {"finalizers": [f for f in fins if f != NAMESPACE_FINALIZER]},
        }
        try:
            self.client.replace(NAMESPACES.path(None, name, "finalize"), body)
            log.debug("namespace %s: finalized", name)
        except NotFound:
            pass
        except Conflict:
            self.enqueue(("ns", name), self.retry_delay)
