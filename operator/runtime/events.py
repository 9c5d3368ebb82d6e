"""Kubernetes Events (core/v1) about the objects the operator manages.

Events are best effort: a failure to record one is logged at debug and never fails a reconcile. Callers
must never put secrets (e.g. a Ray auth token) into a message.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from rayside.kubeclient import KubeClient, KubeError, resource_path

log = logging.getLogger(__name__)

COMPONENT = "rayside-operator"


def event_body(obj: dict[str, Any], *, type_: str, reason: str, message: str) -> dict[str, Any]:
    """The Event object describing `obj` (pure)."""
    meta = obj.get("metadata", {})
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta.get('name', 'obj')}.{secrets.token_hex(8)}",
            "namespace": meta.get("namespace"),
        },
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class EventRecorder:
    def __init__(self, client: KubeClient) -> None:
        self._client = client

    def record(self, obj: dict[str, Any], *, type_: str, reason: str, message: str) -> None:
        ns = obj.get("metadata", {}).get("namespace") or "default"
        try:
            self._client.create(
                resource_path(group="", version="v1", plural="events", namespace=ns),
                event_body(obj, type_=type_, reason=reason, message=message),
            )
        except (KubeError, OSError) as exc:
            log.debug("event %s on %s/%s not recorded: %s", reason, ns, obj["metadata"].get("name"), exc)
