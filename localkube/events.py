"""`events.k8s.io/v1` is a second view of core/v1 Events: field mapping both ways and its create rules."""

from __future__ import annotations

from typing import Any

from localkube.errors import cause, invalid

Obj = dict[str, Any]
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


def to_core(view: Obj) -> Obj:
    core: Obj = {"apiVersion": "v1", "kind": "Event"}
    for key in SAME:
        if key in view:
            core[key] = view[key]
    for new, old in RENAMES:
        if new in view:
            core[old] = view[new]
    return core


def from_core(core: Obj) -> Obj:
    view: Obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for key in SAME:
        if key in core:
            view[key] = core[key]
    for new, old in RENAMES:
        if old in core:
            view[new] = core[old]
    return view


def check_view_create(view: Obj) -> None:
    """events.k8s.io/v1 create requires eventTime, reportingController, reportingInstance, action, reason."""
    missing = [
        k
        for k in ("eventTime", "reportingController", "reportingInstance", "action", "reason")
        if not view.get(k)
    ]
    if missing:
        name = str((view.get("metadata") or {}).get("name", ""))
        raise invalid(
            "Event",
            "events.k8s.io",
            name,
            [cause("FieldValueRequired", key, "Required value") for key in missing],
        )
