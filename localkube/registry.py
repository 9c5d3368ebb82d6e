"""The resource registry: which resources the server serves (built-ins plus established CRDs)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ScaleSpec:
    """Where a resource keeps its replica counts (CRD `subresources.scale` or a built-in)."""

    spec_path: str = ".spec.replicas"
    status_path: str = ".status.replicas"
    selector_path: str | None = None


@dataclass(frozen=True)
class ResourceType:
    """One served resource (plural) in one group/version."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    list_kind: str = ""
    status: bool = False
    scale: ScaleSpec | None = None
    generation: bool = False
    delete_returns_object: bool = False
    unconditional_update: bool = True
    custom: bool = False
    schema: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    printer_columns: tuple[dict[str, Any], ...] | None = field(default=None, hash=False, compare=False)
    extra_subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> str:
        return f"{self.group or 'core'}/{self.plural}"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    def subresources(self) -> list[str]:
        subs = list(self.extra_subresources)
        if self.status:
            subs.append("status")
        if self.scale is not None:
            subs.append("scale")
        return subs


def _rt(group: str, version: str, plural: str, kind: str, **kw: Any) -> ResourceType:
    return ResourceType(group=group, version=version, plural=plural, kind=kind, **kw)


def _apps_workload(plural: str, kind: str, short_name: str) -> ResourceType:
    """An ``apps/v1`` workload: in category ``all``, with status, generation and a scale subresource."""
    return _rt(
        "apps",
        "v1",
        plural,
        kind,
        short_names=(short_name,),
        categories=("all",),
        status=True,
        generation=True,
        scale=ScaleSpec(),
    )


BUILTINS: tuple[ResourceType, ...] = (
    _rt(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        status=True,
        extra_subresources=("finalize",),
    ),
    _rt("", "v1", "nodes", "Node", namespaced=False, short_names=("no",), status=True),
    _rt(
        "",
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        status=True,
        delete_returns_object=True,
        extra_subresources=("log", "binding"),
    ),
    _rt(
        "",
        "v1",
        "services",
        "Service",
        short_names=("svc",),
        categories=("all",),
        status=True,
        delete_returns_object=True,
    ),
    _rt("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    _rt("", "v1", "secrets", "Secret"),
    _rt("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",), delete_returns_object=True),
    _rt("", "v1", "events", "Event", short_names=("ev",)),
    _rt("events.k8s.io", "v1", "events", "Event", short_names=("ev",)),
    _rt("batch", "v1", "jobs", "Job", categories=("all",), status=True, generation=True),
    _rt("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",), status=True),
    _apps_workload("deployments", "Deployment", "deploy"),
    _apps_workload("replicasets", "ReplicaSet", "rs"),
    _apps_workload("statefulsets", "StatefulSet", "sts"),
    _rt("coordination.k8s.io", "v1", "leases", "Lease"),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _rt(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        status=True,
        generation=True,
        unconditional_update=False,
    ),
)


def _scale_from_crd(sub: dict[str, Any]) -> ScaleSpec | None:
    scale = sub.get("scale")
    if not isinstance(scale, dict):
        return None
    return ScaleSpec(
        spec_path=str(scale.get("specReplicasPath", ".spec.replicas")),
        status_path=str(scale.get("statusReplicasPath", ".status.replicas")),
        selector_path=scale.get("labelSelectorPath"),
    )


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The served resource types one CRD defines (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out: list[ResourceType] = []
    for ver in spec.get("versions") or []:
        if not ver.get("served", True):
            continue
        sub = ver.get("subresources") or {}
        schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        cols = ver.get("additionalPrinterColumns")
        out.append(
            ResourceType(
                group=str(spec.get("group", "")),
                version=str(ver.get("name")),
                plural=str(names.get("plural")),
                kind=str(names.get("kind")),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=str(names.get("singular") or str(names.get("kind", "")).lower()),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                list_kind=str(names.get("listKind") or f"{names.get('kind')}List"),
                status="status" in sub,
                scale=_scale_from_crd(sub),
                generation=True,
                unconditional_update=False,
                custom=True,
                schema=schema if isinstance(schema, dict) else None,
                printer_columns=tuple(cols) if isinstance(cols, list) else (),  # no columns: Name, Age
            )
        )
    return out


class Registry:
    """Thread-safe lookup of served resource types; CRD types are swapped in and out atomically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._crd_types: dict[str, list[ResourceType]] = {}
        self._index: dict[tuple[str, str, str], ResourceType] = {}
        self._rebuild()

    def _rebuild(self) -> None:
        index: dict[tuple[str, str, str], ResourceType] = {}
        for rt in BUILTINS:
            index[(rt.group, rt.version, rt.plural)] = rt
        for types in self._crd_types.values():
            for rt in types:
                index[(rt.group, rt.version, rt.plural)] = rt
        self._index = index

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        with self._lock:
            if types:
                self._crd_types[crd_name] = types
            else:
                self._crd_types.pop(crd_name, None)
            self._rebuild()

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._index.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        return list(self._index.values())

    def by_storage_key(self, key: str) -> list[ResourceType]:
        return [rt for rt in self._index.values() if rt.storage_key == key]

    def groups(self) -> dict[str, list[str]]:
        """group -> versions (preferred first); the core group is excluded."""
        out: dict[str, list[str]] = {}
        for rt in self._index.values():
            if rt.group and rt.version not in out.setdefault(rt.group, []):
                out[rt.group].append(rt.version)
        return out

    def group_versions(self) -> set[tuple[str, str]]:
        return {(rt.group, rt.version) for rt in self._index.values()}
