"""What localkube's built-in controllers need beyond the shared runtime (`rayside.runtime`): discovery of
the served resources they watch (as `rayside.objects.Resource`), the work-item type their handlers queue,
and recording Events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rayside.events import event_body
from rayside.kubeclient import KubeClient, KubeError, NotFound
from rayside.objects import EVENTS, JSON, Resource, group_version_path, namespace_of

log = logging.getLogger(__name__)

WorkItem = tuple[str, str]  # (controller: "gc" | "ns" | "job" | "jobpod" | "ep", key of what to process)
Enqueue = Callable[[WorkItem, float], None]  # (item, delay in seconds)


def served_resource(client: KubeClient, api_version: str, kind: str) -> Resource | None:
    """The top-level resource serving `kind` in `api_version`, asked from discovery (None: not served)."""
    group, _, version = api_version.rpartition("/")
    try:
        listing = client.get(group_version_path(group, version))
    except NotFound:  # the group/version is not served
        return None
    for res in listing.get("resources") or []:
        if res.get("kind") == kind and "/" not in str(res.get("name")):
            return Resource(group, version, str(res["name"]), kind, bool(res.get("namespaced")))
    return None


def discover(client: KubeClient, skip: frozenset[str] = frozenset({"events"})) -> list[Resource]:
    """Every top-level resource that supports list, watch and delete (preferred version per group)."""
    out: list[Resource] = []
    versions = [("", "v1")]
    for group in client.get("/apis").get("groups") or []:
        pref = (group.get("preferredVersion") or {}).get("version") or group["versions"][0]["version"]
        versions.append((group["name"], pref))
    for group_name, version in versions:
        try:
            listing = client.get(group_version_path(group_name, version))
        except NotFound:
            continue
        for res in listing.get("resources") or []:
            verbs = set(res.get("verbs") or [])
            if "/" in res["name"] or res["name"] in skip or not {"list", "watch", "delete"} <= verbs:
                continue
            out.append(Resource(group_name, version, res["name"], res["kind"], bool(res.get("namespaced"))))
    return out


def record_event(
    client: KubeClient, obj: JSON, event_type: str, reason: str, message: str, component: str
) -> None:
    """Write a core/v1 Event about ``obj`` (best effort: failures are logged at debug)."""
    body = event_body(obj, type_=event_type, reason=reason, message=message, component=component)
    ns = namespace_of(body)
    try:
        client.create(EVENTS.path(ns), body)
    except KubeError as exc:
        log.debug("event %s for %s/%s not recorded: %s", reason, ns, body["involvedObject"]["name"], exc)
