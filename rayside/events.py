"""core/v1 Event bodies, shared by localkube's built-in controllers and the operator (pure, no I/O).

The operator's recorder folds repeats of a body into one Event with a count (`rayside.eventcorrelator`)."""

from __future__ import annotations

import secrets
import time

from rayside.objects import JSON, name_of, namespace_of


def event_body(
    obj: JSON, *, type_: str, reason: str, message: str, component: str, now: float | None = None
) -> JSON:
    """The Event describing `obj` (`type_` Normal|Warning). The name is the object's plus a random suffix,
    like client-go's; the message is cut to 1 KiB (the API server's limit is larger, but long messages
    only bloat `kubectl describe`)."""
    meta = obj.get("metadata") or {}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{name_of(obj) or 'obj'}.{secrets.token_hex(8)}",
            "namespace": namespace_of(obj) or "default",
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
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
