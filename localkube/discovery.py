"""Discovery documents (/version, /api, /apis, resource lists) and OpenAPI v3 (index + per-GV docs)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from localkube.registry import ALL_VERBS, Registry, ResourceType

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-localkube",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": dict(entries[0])}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = registry.groups()
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g, sorted(vs, key=_version_key)) for g, vs in sorted(groups.items())],
    }


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.groups().get(group)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, sorted(versions, key=_version_key))}


def _version_key(v: str) -> tuple[int, int, str]:
    """Kubernetes version priority: GA > beta > alpha, higher numbers first."""
    import re

    mt = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", v)
    if not mt:
        return (3, 0, v)
    stage = {"": 0, "beta": 1, "alpha": 2}[mt.group(2) or ""]
    return (stage, -int(mt.group(1)) * 1000 - int(mt.group(3) or 0), v)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _entry(rt: ResourceType) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular_name,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": ALL_VERBS,
        "storageVersionHash": _hash(f"{rt.group}/{rt.version}/{rt.kind}")[:12],
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    return out


def _sub_entry(rt: ResourceType, sub: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f"{rt.plural}/{sub}",
        "singularName": "",
        "namespaced": rt.namespaced,
        "kind": rt.kind,
    }
    if sub == "scale":
        out.update(
            {"group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}
        )
    elif sub == "status":
        out["verbs"] = ["get", "patch", "update"]
    elif sub == "log":
        out.update({"kind": "Pod", "verbs": ["get"]})
    elif sub == "binding":
        out.update({"kind": "Binding", "verbs": ["create"]})
    elif sub == "finalize":
        out["verbs"] = ["update"]
    return out


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = sorted(
        (rt for rt in registry.all() if rt.group == group and rt.version == version), key=lambda r: r.plural
    )
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        resources.append(_entry(rt))
        resources.extend(_sub_entry(rt, sub) for sub in rt.subresources())
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


# -- OpenAPI v3 --------------------------------------------------------------------------------
def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _schema_name(rt: ResourceType) -> str:
    group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{group}.{rt.version}.{rt.kind}"


PARAMS = [
    {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for name in ("fieldValidation", "fieldManager", "dryRun")
]
PATCH_BODY = {
    "content": {
        "application/merge-patch+json": {"schema": {"type": "object"}},
        "application/apply-patch+yaml": {"schema": {"type": "object"}},
    }
}


def _paths_for(rt: ResourceType, prefix: str) -> dict[str, Any]:
    """Collection and item paths of one resource; every operation names its GVK (kubectl checks PATCH)."""
    ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
    body = {"content": {"application/json": {"schema": ref}}}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}

    def op(action: str, op_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "x-kubernetes-group-version-kind": gvk,
            "x-kubernetes-action": action,
            "parameters": PARAMS,
            "responses": ok,
            "operationId": f"{op_id}{rt.kind}",
            **extra,
        }

    base = f"{prefix}{'/namespaces/{namespace}' if rt.namespaced else ''}/{rt.plural}"
    return {
        base: {"post": op("post", "create", requestBody=body), "get": op("list", "list", parameters=[])},
        f"{base}/{{name}}": {
            "get": op("get", "read", parameters=[]),
            "put": op("put", "replace", requestBody=body),
            "patch": op("patch", "patch", requestBody=PATCH_BODY),
            "delete": op("delete", "delete", parameters=[]),
        },
    }


def openapi_doc(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in registry.all() if rt.group == group and rt.version == version]
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    prefix = "/" + _gv_path(group, version)
    for rt in types:
        paths.update(_paths_for(rt, prefix))
        schema: dict[str, Any] = (
            dict(rt.schema) if rt.schema else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        )
        schema["x-kubernetes-group-version-kind"] = [
            {"group": rt.group, "version": rt.version, "kind": rt.kind}
        ]
        schemas[_schema_name(rt)] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def openapi_index(registry: Registry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group, version in sorted(registry.group_versions()):
        doc = openapi_doc(registry, group, version)
        path = _gv_path(group, version)
        out[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(json.dumps(doc, sort_keys=True))}"}
    return {"paths": out}


# -- aggregated discovery (apidiscovery.k8s.io/v2): one request instead of one per group-version -------------
AGGREGATED_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    want = accept.replace(" ", "").lower()
    return "as=apigroupdiscoverylist" in want and "v=v2;" in want + ";"


def _resource_discovery(rt: ResourceType) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular_name,
        "verbs": ALL_VERBS,
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    subs = []
    for sub in rt.subresources():
        entry = _sub_entry(rt, sub)
        kind = {
            "group": entry.get("group", rt.group),
            "version": entry.get("version", rt.version),
            "kind": entry["kind"],
        }
        subs.append({"subresource": sub, "responseKind": kind, "verbs": entry["verbs"]})
    if subs:
        out["subresources"] = subs
    return out


def aggregated(registry: Registry, core: bool) -> dict[str, Any]:
    """The APIGroupDiscoveryList for `/api` (core=True) or `/apis`."""
    by_group: dict[str, dict[str, list[ResourceType]]] = {}
    for rt in registry.all():
        if (rt.group == "") == core:
            by_group.setdefault(rt.group, {}).setdefault(rt.version, []).append(rt)
    items = []
    for group in sorted(by_group):
        versions = sorted(by_group[group], key=_version_key)
        items.append(
            {
                "metadata": {"name": group},
                "versions": [
                    {
                        "version": v,
                        "freshness": "Current",
                        "resources": [
                            _resource_discovery(rt)
                            for rt in sorted(by_group[group][v], key=lambda r: r.plural)
                        ],
                    }
                    for v in versions
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
