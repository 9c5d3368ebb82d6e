"""RayService status helpers (pure): conditions, durations, Serve app statuses, and whether a status
changed enough to be written."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rayside.objects import JSON

RFC3339 = "%Y-%m-%dT%H:%M:%SZ"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def fmt(when: datetime) -> str:
    return when.astimezone(UTC).strftime(RFC3339)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, RFC3339).replace(tzinfo=UTC)
    except ValueError:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None


def parse_duration(text: str) -> float | None:
    """Seconds of a Go duration (`90s`, `5m`, `1h30m`) or a plain integer of seconds; None when not a
    positive duration."""
    text = text.strip()
    if text.isdigit():
        return float(text) if int(text) > 0 else None
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    return total if text and pos == len(text) and total > 0 else None


def get_condition(status: Mapping[str, Any], type_: str) -> JSON | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_true(status: Mapping[str, Any], type_: str) -> bool:
    cond = get_condition(status, type_)
    return cond is not None and cond.get("status") == "True"


def reason_of(status: Mapping[str, Any], type_: str) -> str | None:
    cond = get_condition(status, type_)
    return None if cond is None else str(cond.get("reason") or "")


def set_condition(status: JSON, type_: str, value: str, reason: str, message: str, *, now: datetime) -> None:
    """Insert or update a condition in `status`; lastTransitionTime moves only when its status flips."""
    conditions: list[JSON] = status.setdefault("conditions", [])
    for cond in conditions:
        if cond.get("type") == type_:
            if cond.get("status") != value:
                cond["lastTransitionTime"] = fmt(now)
            cond.update(status=value, reason=reason, message=message)
            return
    conditions.append(
        {"type": type_, "status": value, "reason": reason, "message": message, "lastTransitionTime": fmt(now)}
    )


def remove_condition(status: JSON, type_: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != type_]


def app_statuses(apps: Mapping[str, JSON]) -> dict[str, JSON]:
    """`applicationStatuses` from the dashboard's `applications` map (app `""` is called `default`)."""
    out: dict[str, JSON] = {}
    for name, app in apps.items():
        deployments = {
            dname: {"status": str(d.get("status") or ""), "message": str(d.get("message") or "")}
            for dname, d in (app.get("deployments") or {}).items()
        }
        entry: JSON = {"status": str(app.get("status") or ""), "message": str(app.get("message") or "")}
        if deployments:
            entry["serveDeploymentStatuses"] = deployments
        out[name or "default"] = entry
    return out


def all_running(apps: Mapping[str, JSON] | None) -> bool:
    return bool(apps) and all((a or {}).get("status") == "RUNNING" for a in (apps or {}).values())


MAX_SUMMARY = 600
_TRACEBACK = "Traceback (most recent call last):"


def error_summary(message: str, limit: int = MAX_SUMMARY) -> str:
    """Serve's error message on one line, at most `limit` characters. A Python traceback (Serve reports a
    failed import or constructor with the whole traceback) keeps the text before it and its last line,
    the exception itself, which a plain cut to the Event size limit would drop."""
    text = message.strip()
    if _TRACEBACK in text:
        before, _, trace = text.partition(_TRACEBACK)
        lines = [line.strip() for line in trace.splitlines() if line.strip()]
        text = " ".join(part for part in (before.strip(), lines[-1] if lines else "") if part)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failed_apps(apps: Mapping[str, JSON] | None) -> list[str]:
    """`name: status: message` of apps Serve reports as DEPLOY_FAILED or UNHEALTHY (message summarised by
    `error_summary`; the full text stays in `applicationStatuses`)."""
    return [
        f"{name or 'default'}: {app.get('status')}: {error_summary(str(app.get('message') or ''))}".rstrip(
            ": "
        )
        for name, app in (apps or {}).items()
        if (app or {}).get("status") in ("DEPLOY_FAILED", "UNHEALTHY")
    ]


_DETAIL_KEYS = ("rayClusterName", "applicationStatuses", "targetCapacity", "trafficRoutedPercent")


def _essence(status: Mapping[str, Any]) -> tuple[Any, ...]:
    conditions = sorted(
        (str(c.get("type")), str(c.get("status")), str(c.get("reason") or ""), str(c.get("message") or ""))
        for c in status.get("conditions") or []
    )
    details = tuple(
        tuple((status.get(side) or {}).get(k) for k in _DETAIL_KEYS)
        for side in ("activeServiceStatus", "pendingServiceStatus")
    )
    last_moved = tuple(
        (status.get(side) or {}).get("lastTrafficMigratedTime")
        for side in ("activeServiceStatus", "pendingServiceStatus")
    )
    keys = ("serviceStatus", "numServeEndpoints", "observedGeneration")
    return (tuple(status.get(k) for k in keys), conditions, details, last_moved)


def status_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether `new` is worth a write: anything but `lastUpdateTime` and copied cluster statuses."""
    return _essence(old) != _essence(new)
