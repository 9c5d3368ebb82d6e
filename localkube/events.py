"""`events.k8s.io/v1` is a second view of core/v1 Events: field mapping both ways and its create rules."""

from __future__ import annotations

from localkube.errors import cause, invalid
from rayside.objects import JSON, name_of

# (events.k8s.io/v1 field, core/v1 field)
RENAMES = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
)
SAME = ("metadata", "eventTime", "series", "related", "action", "reason", "type", "reportingInstance")


def _translate(src: JSON, api_version: str, renames: tuple[tuple[str, str], ...]) -> JSON:
    """Copy the shared fields of an Event and each ``(target, source)`` renamed field into a new object."""
    out: JSON = {"apiVersion": api_version, "kind": "Event"}
    for key in SAME:
        if key in src:
            out[key] = src[key]
    for target, source in renames:
        if source in src:
            out[target] = src[source]
    return out


def to_core(view: JSON) -> JSON:
    return _translate(view, "v1", tuple((old, new) for new, old in RENAMES))


def from_core(core: JSON) -> JSON:
    return _translate(core, "events.k8s.io/v1", RENAMES)


def check_view_create(view: JSON) -> None:
    """events.k8s.io/v1 create requires eventTime, reportingController, reportingInstance, action, reason."""
    missing = [
        k
        for k in ("eventTime", "reportingController", "reportingInstance", "action", "reason")
        if not view.get(k)
    ]
    if missing:
        name = name_of(view)
        raise invalid(
            "Event",
            "events.k8s.io",
            name,
            [cause("FieldValueRequired", key, "Required value") for key in missing],
        )
