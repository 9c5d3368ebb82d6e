"""The interface between the kubelet core (API watches, node, binding) and a pod runtime."""

from __future__ import annotations

from typing import Any, Protocol

from localkube.kubelet.logs import LogSource
from rayside.objects import JSON


class Runtime(Protocol):
    """Runs pods bound to this node. `sync` is called for every ADDED/MODIFIED event of such a pod."""

    wants_services: bool

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def sync(self, pod: JSON) -> None: ...

    def forget(self, pod: JSON) -> None: ...

    def service_event(self, event_type: str, service: JSON) -> None: ...

    def log_source(self, namespace: str, pod: str, container: str, previous: bool) -> LogSource | None: ...


def pod_key(pod: JSON) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def pod_path(namespace: str, name: str, sub: str = "") -> str:
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    return f"{path}/{sub}" if sub else path


def path_of(pod: JSON, sub: str = "") -> str:
    meta = pod.get("metadata") or {}
    return pod_path(str(meta.get("namespace", "")), str(meta.get("name", "")), sub)


def final_delete(client: Any, path: str, uid: str) -> None:
    """The kubelet's last word on a pod: DELETE with gracePeriodSeconds=0 (precondition: same uid)."""
    body: JSON = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}
    if uid:
        body["preconditions"] = {"uid": uid}
    client.delete(path, params={"gracePeriodSeconds": "0"}, body=body)
