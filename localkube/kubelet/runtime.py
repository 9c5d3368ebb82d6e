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


def final_delete(client: Any, path: str, uid: str) -> None:
    """The kubelet's last word on a pod: DELETE with gracePeriodSeconds=0 (precondition: same uid)."""
    body: JSON = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}
    if uid:
        body["preconditions"] = {"uid": uid}
    client.delete(path, params={"gracePeriodSeconds": "0"}, body=body)
