"""The object layer every rayside process shares: one table of the resources rayside reads or writes, which
builds every REST path; TypedDicts that name the shape of raw objects at the boundary; and small accessors,
so no module digs through ``metadata`` inline or spells a plural twice.

Objects stay plain JSON dicts (what the API server sends); the TypedDicts document and type-check the parts
rayside relies on. A kind is declared once, as a :class:`Resource` (group, version, plural, kind,
namespaced); :func:`resource_for` finds it from an object's ``apiVersion``/``kind``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, cast
from urllib.parse import quote

JSON = dict[str, Any]
"""A raw Kubernetes object or fragment, as decoded from the API's JSON."""


class OwnerReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ObjectMeta(TypedDict, total=False):
    name: str
    generateName: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    creationTimestamp: str
    deletionTimestamp: str
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[OwnerReference]
    finalizers: list[str]
    managedFields: list[JSON]


class KubeObject(TypedDict, total=False):
    """Any top-level object: the parts every kind shares."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: JSON
    status: JSON


# -- the resource table -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resource:
    """One served resource: where it lives in the API and whether it is namespaced."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """REST path of the collection (all namespaces when ``namespace`` is None), or of one object."""
        parts = ["/api", self.version] if not self.group else ["/apis", self.group, self.version]
        if namespace and self.namespaced:
            parts += ["namespaces", quote(namespace, safe="")]
        parts.append(self.plural)
        if name:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    def path_of(self, obj: Mapping[str, Any], subresource: str | None = None) -> str:
        """REST path of ``obj`` itself (its namespace and name)."""
        return self.path(namespace_of(obj) or None, name_of(obj), subresource)


PODS = Resource("", "v1", "pods", "Pod")
SERVICES = Resource("", "v1", "services", "Service")
ENDPOINTS = Resource("", "v1", "endpoints", "Endpoints")
SECRETS = Resource("", "v1", "secrets", "Secret")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
EVENTS = Resource("", "v1", "events", "Event")
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
JOBS = Resource("batch", "v1", "jobs", "Job")
INGRESSES = Resource("networking.k8s.io", "v1", "ingresses", "Ingress")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False)
RAYCLUSTERS = Resource("ray.io", "v1", "rayclusters", "RayCluster")
RAYJOBS = Resource("ray.io", "v1", "rayjobs", "RayJob")
RAYSERVICES = Resource("ray.io", "v1", "rayservices", "RayService")
VOLCANO_PODGROUPS = Resource("scheduling.volcano.sh", "v1beta1", "podgroups", "PodGroup")
VOLCANO_QUEUES = Resource("scheduling.volcano.sh", "v1beta1", "queues", "Queue", namespaced=False)
COSCHEDULING_PODGROUPS = Resource("scheduling.x-k8s.io", "v1alpha1", "podgroups", "PodGroup")
GATEWAYS = Resource("gateway.networking.k8s.io", "v1", "gateways", "Gateway")
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")

KNOWN: tuple[Resource, ...] = (
    PODS, SERVICES, ENDPOINTS, SECRETS, CONFIGMAPS, SERVICEACCOUNTS, EVENTS, NODES, NAMESPACES, LEASES,
    JOBS, INGRESSES, ROLES, ROLEBINDINGS, CRDS, RAYCLUSTERS, RAYJOBS, RAYSERVICES, VOLCANO_PODGROUPS,
    VOLCANO_QUEUES, COSCHEDULING_PODGROUPS, GATEWAYS, HTTPROUTES,
)  # fmt: skip
_BY_TYPE: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in KNOWN}


def resource_for(api_version: str, kind: str) -> Resource:
    """The entry for ``apiVersion``/``kind``; LookupError names the pair when rayside does not know it."""
    try:
        return _BY_TYPE[(api_version, kind)]
    except KeyError:
        raise LookupError(f"no resource is declared for apiVersion {api_version!r}, kind {kind!r}") from None


def resource_of(obj: Mapping[str, Any]) -> Resource:
    """The resource ``obj`` belongs to, from its own ``apiVersion`` and ``kind``."""
    return resource_for(str(obj.get("apiVersion") or "v1"), str(obj.get("kind") or ""))


def group_version_path(group: str, version: str) -> str:
    """The discovery path listing the resources of one group/version (core group ``""``: ``/api/v1``)."""
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def path_of(obj: Mapping[str, Any], subresource: str | None = None) -> str:
    """REST path of ``obj`` from its apiVersion, kind, namespace and name."""
    return resource_of(obj).path_of(obj, subresource)


# -- accessors ----------------------------------------------------------------------------------------------
def meta_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``metadata`` of ``obj`` (an empty mapping when absent or null)."""
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta_of(obj).get("name") or "")


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta_of(obj).get("namespace") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str(meta_of(obj).get("uid") or "")


def resource_version_of(obj: Mapping[str, Any]) -> str:
    return str(meta_of(obj).get("resourceVersion") or "")


def rv_number(obj: Mapping[str, Any]) -> int:
    """``resourceVersion`` as a number for ordering copies of one object; -1 when absent or not numeric."""
    value = resource_version_of(obj)
    return int(value) if value.isdigit() else -1


def generation_of(obj: Mapping[str, Any]) -> int:
    value = meta_of(obj).get("generation")
    return value if isinstance(value, int) else 0


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """The object's labels (a new empty dict when it has none; mutate ``obj`` itself to change them)."""
    labels = meta_of(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    annotations = meta_of(obj).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def owner_references_of(obj: Mapping[str, Any]) -> list[OwnerReference]:
    refs = meta_of(obj).get("ownerReferences")
    if not isinstance(refs, list):
        return []
    return [cast(OwnerReference, r) for r in refs if isinstance(r, dict)]


def controller_of(obj: Mapping[str, Any]) -> OwnerReference | None:
    """The owner reference with ``controller: true``, if any."""
    return next((r for r in owner_references_of(obj) if r.get("controller")), None)


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool(meta_of(obj).get("deletionTimestamp"))


def key_of(obj: Mapping[str, Any]) -> str:
    """The cache/queue key ``namespace/name`` (just ``name`` for cluster-scoped objects)."""
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of a key made by :func:`key_of` (namespace "" for cluster-scoped objects)."""
    ns, _, name = key.rpartition("/")
    return ns, name


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True) -> OwnerReference:
    """An owner reference to ``owner`` (controller and blocking owner deletion by default)."""
    return {
        "apiVersion": str(owner.get("apiVersion") or ""),
        "kind": str(owner.get("kind") or ""),
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": controller,
        "blockOwnerDeletion": True,
    }


class ObjectIdentity:
    """Mixin for a class holding one object as ``obj``: its namespace, name, uid and cache key."""

    obj: JSON

    @property
    def namespace(self) -> str:
        return namespace_of(self.obj)

    @property
    def name(self) -> str:
        return name_of(self.obj)

    @property
    def uid(self) -> str:
        return uid_of(self.obj)

    @property
    def key(self) -> str:
        return key_of(self.obj)
