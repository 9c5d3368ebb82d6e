"""Request options decoded from query parameters (and DeleteOptions bodies), Go-style booleans included."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from localkube.errors import ApiError, bad_request, cause, invalid

TRUE = {"true", "1", "t", "True", "TRUE", "T"}
FALSE = {"false", "0", "f", "False", "FALSE", "F"}


def parse_bool(value: str | None, name: str) -> bool:
    if value is None or value == "":
        return False
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise bad_request(f'invalid value for {name}: "{value}": expected a boolean')


def parse_int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f'invalid value for {name}: "{value}": expected an integer') from None


def _dry_run(values: list[str]) -> bool:
    values = [v for v in values if v]
    if not values:
        return False
    if values == ["All"]:
        return True
    raise invalid(
        "DryRun",
        "",
        "",
        [
            cause(
                "FieldValueNotSupported",
                "dryRun",
                f'Unsupported value: "{values[0]}": supported values: "All"',
            )
        ],
    )


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Warn"
    field_manager: str = ""
    force: bool = False
    user_agent: str = ""
    applied: bool = False  # set by server-side apply: managedFields are already computed

    @classmethod
    def from_query(cls, q: Mapping[str, list[str]], user_agent: str = "") -> WriteOptions:
        fv = (q.get("fieldValidation") or ["Warn"])[0] or "Warn"
        if fv not in ("Strict", "Warn", "Ignore"):
            raise bad_request(f'invalid fieldValidation directive "{fv}": must be Strict, Warn or Ignore')
        return cls(
            dry_run=_dry_run(q.get("dryRun") or []),
            field_validation=fv,
            field_manager=(q.get("fieldManager") or [""])[0],
            force=parse_bool((q.get("force") or [""])[0], "force"),
            user_agent=user_agent,
        )

    @property
    def manager(self) -> str:
        return self.field_manager or (self.user_agent.split("/")[0] if self.user_agent else "unknown")


@dataclass
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int | None = None
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    watch: bool = False
    allow_bookmarks: bool = False
    timeout_seconds: int | None = None
    send_initial_events: bool = False

    @classmethod
    def from_query(cls, q: Mapping[str, list[str]]) -> ListOptions:
        def one(name: str) -> str:
            return (q.get(name) or [""])[0]

        opts = cls(
            label_selector=one("labelSelector"),
            field_selector=one("fieldSelector"),
            limit=parse_int(one("limit"), "limit"),
            continue_token=one("continue"),
            resource_version=one("resourceVersion"),
            resource_version_match=one("resourceVersionMatch"),
            watch=parse_bool(one("watch"), "watch"),
            allow_bookmarks=parse_bool(one("allowWatchBookmarks"), "allowWatchBookmarks"),
            timeout_seconds=parse_int(one("timeoutSeconds"), "timeoutSeconds"),
            send_initial_events=parse_bool(one("sendInitialEvents"), "sendInitialEvents"),
        )
        if opts.resource_version_match and not opts.resource_version and not opts.send_initial_events:
            raise invalid(
                "ListOptions",
                "meta.k8s.io",
                "",
                [
                    cause(
                        "FieldValueForbidden",
                        "resourceVersionMatch",
                        "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                    )
                ],
            )
        if opts.continue_token and opts.resource_version not in ("", "0"):
            raise bad_request("specifying resource version is not allowed when using continue")
        if opts.resource_version and opts.resource_version != "0":
            parse_int(opts.resource_version, "resourceVersion")
        return opts


@dataclass
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None
    orphan: bool | None = None
    dry_run: bool = False
    preconditions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, q: Mapping[str, list[str]], body: Any) -> DeleteOptions:
        body = body if isinstance(body, dict) else {}
        grace = body.get("gracePeriodSeconds")
        if grace is None:
            grace = parse_int((q.get("gracePeriodSeconds") or [""])[0], "gracePeriodSeconds")
        prop = body.get("propagationPolicy") or (q.get("propagationPolicy") or [""])[0]
        if prop not in (None, "", "Background", "Foreground", "Orphan"):
            raise ApiError(
                400, f'propagationPolicy "{prop}" is not supported: Background, Foreground or Orphan'
            )
        orphan = body.get("orphanDependents")
        if orphan is None and q.get("orphanDependents"):
            orphan = parse_bool(q["orphanDependents"][0], "orphanDependents")
        dry = body.get("dryRun") or q.get("dryRun") or []
        return cls(
            grace_period=int(grace) if grace is not None else None,
            propagation=prop or None,
            orphan=orphan,
            dry_run=_dry_run(list(dry)),
            preconditions={k: str(v) for k, v in (body.get("preconditions") or {}).items() if v},
        )
