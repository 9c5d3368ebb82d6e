"""Endpoints controller: an ``Endpoints`` object per Service with a selector, listing the IPs of matching
pods (Ready → ``addresses``, not ready → ``notReadyAddresses``) and the resolved target ports.

:func:`desired_endpoints` decides (pure); :class:`EndpointsController` keeps the objects in line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from localkube.controllers.runtime import Enqueue
from rayside.kubeclient import AlreadyExists, Conflict, KubeClient, KubeError, NotFound
from rayside.objects import (
    ENDPOINTS,
    JSON,
    annotations_of,
    is_deleting,
    key_of,
    labels_of,
    name_of,
    namespace_of,
    resource_version_of,
    split_key,
    uid_of,
)

log = logging.getLogger(__name__)


def _ready(pod: JSON) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def selects(service: JSON, pod: JSON) -> bool:
    """Whether the Service's (non-empty) selector matches the pod in the same namespace."""
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector or namespace_of(service) != namespace_of(pod):
        return False
    labels = labels_of(pod)
    return all(labels.get(k) == v for k, v in selector.items())


def _target_port(port: JSON, pod: JSON) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for cp in c.get("ports") or []:
            if cp.get("name") == target and cp.get("protocol", "TCP") == port.get("protocol", "TCP"):
                return int(cp["containerPort"])
    return None


def _address(pod: JSON) -> JSON:
    addr: JSON = {"ip": (pod.get("status") or {}).get("podIP"),
                 "targetRef": {"kind": "Pod", "namespace": namespace_of(pod), "name": name_of(pod),
                               "uid": uid_of(pod)}}  # fmt: skip
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    return addr


def desired_endpoints(service: JSON, pods: list[JSON]) -> JSON | None:
    """The Endpoints for ``service`` given the pods of its namespace (``None``: not managed, no selector)."""
    spec, meta = service.get("spec") or {}, service.get("metadata") or {}
    if not spec.get("selector"):
        return None
    groups: dict[str, JSON] = {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    for pod in sorted(pods, key=lambda p: str((p.get("status") or {}).get("podIP", ""))):
        status = pod.get("status") or {}
        if not selects(service, pod) or not status.get("podIP") or is_deleting(pod):
            continue
        if status.get("phase") in ("Succeeded", "Failed"):
            continue
        ports = []
        for p in spec.get("ports") or []:
            number = _target_port(p, pod)
            if number is not None:
                entry = {"port": number, "protocol": p.get("protocol", "TCP")}
                ports.append({"name": p["name"], **entry} if p.get("name") else entry)
        subset = groups.setdefault(json.dumps(ports, sort_keys=True), {"ports": ports})
        bucket = "addresses" if publish or _ready(pod) else "notReadyAddresses"
        subset.setdefault(bucket, []).append(_address(pod))
    body: JSON = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                     "labels": dict(meta.get("labels") or {})},
    }  # fmt: skip
    subsets = [{k: v for k, v in s.items() if v} for s in groups.values()]
    if subsets:
        body["subsets"] = subsets
    return body


class EndpointsController:
    def __init__(
        self,
        client: KubeClient,
        enqueue: Enqueue,
        services: Callable[[], list[JSON]],
        pods: Callable[[], list[JSON]],
        get_service: Callable[[str], JSON | None],
        get_endpoints: Callable[[str], JSON | None],
    ) -> None:
        self.client = client
        self.enqueue = enqueue
        self.services = services
        self.pods = pods
        self.get_service = get_service
        self.get_endpoints = get_endpoints

    def on_service(self, kind: str, svc: JSON) -> None:
        self.enqueue(("ep", key_of(svc)), 0.0)

    def on_pod(self, kind: str, pod: JSON, old: JSON | None) -> None:
        for svc in self.services():
            if selects(svc, pod) or (old is not None and selects(svc, old)):
                self.on_service(kind, svc)

    def process(self, key: str) -> None:
        ns, name = split_key(key)
        svc = self.get_service(key)
        current = self.get_endpoints(key)
        if svc is None:
            if current is not None and self._managed(current):
                self._quiet(lambda: self.client.delete(ENDPOINTS.path(ns, name)))
            return
        want = desired_endpoints(svc, [p for p in self.pods() if namespace_of(p) == ns])
        if want is None:
            return
        want["metadata"].setdefault("annotations", {})["localkube.rayside.io/managed-by"] = (
            "endpoints-controller"
        )
        if current is None:
            try:
                self.client.create(ENDPOINTS.path(ns), want)
            except AlreadyExists:
                self.enqueue(("ep", key), 0.2)
            except KubeError as exc:
                log.debug("endpoints %s: create failed: %s", key, exc)
            return
        same = (
            current.get("subsets") == want.get("subsets") and labels_of(current) == want["metadata"]["labels"]
        )
        if same:
            return
        want["metadata"]["resourceVersion"] = resource_version_of(current)
        try:
            self.client.replace(ENDPOINTS.path(ns, name), want)
        except Conflict:
            self.enqueue(("ep", key), 0.2)
        except KubeError as exc:
            log.debug("endpoints %s: update failed: %s", key, exc)

    @staticmethod
    def _managed(ep: JSON) -> bool:
        annotations = annotations_of(ep)
        return annotations.get("localkube.rayside.io/managed-by") == "endpoints-controller"

    @staticmethod
    def _quiet(action: Callable[[], Any]) -> None:
        try:
            action()
        except (NotFound, Conflict):
            pass
        except KubeError as exc:
            log.debug("endpoints: %s", exc)
