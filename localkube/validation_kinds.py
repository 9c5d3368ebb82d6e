"""Per-kind validation rules of built-in kinds, one function per kind in `RULES` and one type table per kind
in `TYPES` (pure; shared checks and messages in `localkube/validation.py`).

`check_decode(storage_key, obj)` gives the 400 message of a value of the wrong JSON type;
`causes(storage_key, obj)` gives the 422 causes of disallowed values. Both run on the object as it will be
stored (after defaulting), on create and on every update.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from localkube import validation as v
from localkube.validation import Base64, Cause, ListOf, MapOf, Struct

PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
RESTART_POLICIES = ("Always", "OnFailure", "Never")  # kube's order in this message
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
COMPLETION_MODES = ("Indexed", "NonIndexed")
PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")

# -- types (decoding) --------------------------------------------------------------------------------------
_STRINGS = ListOf("string", "[]string")
_STRING_MAP = MapOf("string", "map[string]string")
_CONTAINER = Struct(
    "Container",
    {
        "name": "string",
        "image": "string",
        "command": _STRINGS,
        "args": _STRINGS,
        "workingDir": "string",
        "imagePullPolicy": "string",
        "env": ListOf(Struct("EnvVar", {"name": "string", "value": "string"}), "[]v1.EnvVar"),
        "ports": ListOf(
            Struct(
                "ContainerPort",
                {"name": "string", "containerPort": "int32", "hostPort": "int32", "protocol": "string"},
            ),
            "[]v1.ContainerPort",
        ),
    },
)
_POD_SPEC = Struct(
    "PodSpec",
    {
        "containers": ListOf(_CONTAINER, "[]v1.Container"),
        "initContainers": ListOf(_CONTAINER, "[]v1.Container"),
        "restartPolicy": "string",
        "dnsPolicy": "string",
        "serviceAccountName": "string",
        "nodeName": "string",
        "hostNetwork": "bool",
        "terminationGracePeriodSeconds": "int64",
        "activeDeadlineSeconds": "int64",
    },
)
_SERVICE_PORT = Struct(
    "ServicePort", {"name": "string", "protocol": "string", "port": "int32", "nodePort": "int32"}
)
_SERVICE_SPEC = Struct(
    "ServiceSpec",
    {
        "type": "string",
        "clusterIP": "string",
        "selector": _STRING_MAP,
        "ports": ListOf(_SERVICE_PORT, "[]v1.ServicePort"),
    },
)
_JOB_SPEC = Struct(
    "JobSpec",
    {
        "parallelism": "int32",
        "completions": "int32",
        "backoffLimit": "int32",
        "activeDeadlineSeconds": "int64",
        "template": Struct("PodTemplateSpec", {"spec": _POD_SPEC}),
    },
)
_LEASE_SPEC = Struct(
    "LeaseSpec", {"holderIdentity": "string", "leaseDurationSeconds": "int32", "leaseTransitions": "int32"}
)
_BYTES_MAP = MapOf(Base64(), "map[string][]uint8")
# the typed fields of each kind beyond metadata (the Go struct name is the kind)
TYPES: dict[str, dict[str, Any]] = {
    "core/pods": {"spec": _POD_SPEC},
    "core/configmaps": {"data": _STRING_MAP, "binaryData": _BYTES_MAP},
    "core/secrets": {"data": _BYTES_MAP, "stringData": _STRING_MAP, "type": "string"},
    "core/services": {"spec": _SERVICE_SPEC},
    "batch/jobs": {"spec": _JOB_SPEC},
    "coordination.k8s.io/leases": {"spec": _LEASE_SPEC},
}


_META = Struct(
    "ObjectMeta",
    {
        "name": "string",
        "generateName": "string",
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "finalizers": _STRINGS,
    },
)


def check_decode(storage_key: str, kind: str, api_version: str, obj: Any) -> str | None:
    """The 400 message when a field of `obj` has the wrong JSON type (None when it decodes); metadata is
    checked for every kind, the rest per `TYPES`."""
    fields = TYPES.get(storage_key, {})
    return v.decode_error(kind, api_version, Struct(kind, {"metadata": _META, **fields}), obj)


# -- values (422) ------------------------------------------------------------------------------------------
def _container(path: str, ctr: dict[str, Any], seen: set[str]) -> list[Cause]:
    out: list[Cause] = []
    name = ctr.get("name")
    if not name:
        out.append(v.required(f"{path}.name"))
    else:
        out += v.dns1123_label(f"{path}.name", str(name))
        if name in seen:
            out.append(v.duplicate(f"{path}.name", name))
        seen.add(str(name))
    if not ctr.get("image"):
        out.append(v.required(f"{path}.image"))
    out += v.enum(f"{path}.imagePullPolicy", ctr.get("imagePullPolicy"), PULL_POLICIES)
    for j, port in enumerate(ctr.get("ports") or []):
        pp = f"{path}.ports[{j}]"
        if not port.get("containerPort"):
            out.append(v.required(f"{pp}.containerPort"))
        else:
            out += v.port_number(f"{pp}.containerPort", port["containerPort"])
        if port.get("hostPort"):
            out += v.port_number(f"{pp}.hostPort", port["hostPort"])
        if port.get("name"):
            out += v.port_name(f"{pp}.name", str(port["name"]))
        out += v.enum(f"{pp}.protocol", port.get("protocol"), PROTOCOLS)
    for j, env in enumerate(ctr.get("env") or []):
        ep = f"{path}.env[{j}].name"
        name = env.get("name")
        if not name:
            out.append(v.required(ep))
        elif "=" in name or not all(" " <= ch <= "~" for ch in name):
            out.append(
                v.invalid(
                    ep,
                    name,
                    "a valid environment variable name must consist only of printable ASCII characters "
                    "other than '='",
                )
            )
    return out


def pod_spec(path: str, spec: dict[str, Any], *, restart: bool = True) -> list[Cause]:
    """A PodSpec at `path` (`spec`, or `spec.template.spec` of a Job)."""
    out: list[Cause] = []
    ctrs = spec.get("containers") or []
    if not ctrs:
        out.append(v.required(f"{path}.containers"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, ctr in enumerate(spec.get(group) or []):
            out += _container(f"{path}.{group}[{i}]", ctr, seen)
    if restart:
        out += v.enum(f"{path}.restartPolicy", spec.get("restartPolicy"), RESTART_POLICIES, optional=False)
    out += v.enum(f"{path}.dnsPolicy", spec.get("dnsPolicy"), DNS_POLICIES)
    if spec.get("serviceAccountName"):
        out += v.dns1123_subdomain(f"{path}.serviceAccountName", str(spec["serviceAccountName"]))
    return out


def pod(obj: dict[str, Any]) -> list[Cause]:
    return pod_spec("spec", obj.get("spec") or {})


def job(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    for key in ("parallelism", "completions", "backoffLimit"):
        out += v.non_negative(f"spec.{key}", spec.get(key))
    out += v.enum("spec.completionMode", spec.get("completionMode"), COMPLETION_MODES)
    tmpl = (spec.get("template") or {}).get("spec") or {}
    return out + pod_spec("spec.template.spec", tmpl, restart=False)  # restartPolicy: Job's own rule


def _service_port(i: int, port: dict[str, Any], many: bool, names: set[str]) -> list[Cause]:
    path = f"spec.ports[{i}]"
    out: list[Cause] = []
    name = port.get("name")
    if not name:
        if many:
            out.append(v.required(f"{path}.name"))
    else:
        out += v.dns1123_label(f"{path}.name", str(name))
        if name in names:
            out.append(v.duplicate(f"{path}.name", name))
        names.add(str(name))
    out += v.port_number(f"{path}.port", port.get("port"))
    out += v.enum(f"{path}.protocol", port.get("protocol"), PROTOCOLS)
    target = port.get("targetPort")
    if isinstance(target, str) and target:
        out += v.port_name(f"{path}.targetPort", target)
    elif isinstance(target, int) and target:
        out += v.port_number(f"{path}.targetPort", target)
    return out


def service(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    out = v.enum("spec.type", spec.get("type"), SERVICE_TYPES)
    out += v.enum("spec.sessionAffinity", spec.get("sessionAffinity"), SESSION_AFFINITIES)
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if not ports and not headless and spec.get("type") != "ExternalName":
        out.append(v.required("spec.ports"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        out += _service_port(i, port, len(ports) > 1, names)
    if spec.get("type") == "ExternalName" and not spec.get("externalName"):
        out.append(v.required("spec.externalName"))
    return out


def configmap(obj: dict[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    sizes: list[int] = []
    for key, value in (obj.get("data") or {}).items():
        out += v.config_key(f"data[{key}]", str(key))
        sizes.append(len(str(value).encode()))
    for key, value in (obj.get("binaryData") or {}).items():
        out += v.config_key(f"binaryData[{key}]", str(key))
        if key in (obj.get("data") or {}):
            out.append(v.invalid(f"binaryData[{key}]", key, "duplicate of key present in data"))
        sizes.append(len(value) * 3 // 4)
    return out + v.data_size("[]", sizes)


def secret(obj: dict[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    sizes: list[int] = []
    for key, value in (obj.get("data") or {}).items():
        out += v.config_key(f"data[{key}]", str(key))
        try:
            sizes.append(len(base64.b64decode(str(value))))
        except (binascii.Error, ValueError):
            sizes.append(len(str(value)))
    return out + v.data_size("data", sizes)


def lease(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        out.append(v.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    return out + v.non_negative("spec.leaseTransitions", spec.get("leaseTransitions"))


def _ingress_path(path: str, item: dict[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    kind = item.get("pathType")
    if not kind:
        out.append(v.required(f"{path}.pathType", "pathType must be specified"))
    else:
        out += v.enum(f"{path}.pathType", kind, PATH_TYPES)
    text = item.get("path")
    if kind in ("Exact", "Prefix") and not str(text or "").startswith("/"):
        out.append(v.invalid(f"{path}.path", text or "", "must be an absolute path"))
    svc = ((item.get("backend") or {}).get("service") or {}).get("name")
    if svc:
        out += v.dns1035_label(f"{path}.backend.service.name", str(svc))
    return out


def ingress(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    out: list[Cause] = []
    if spec.get("ingressClassName"):
        out += v.dns1123_subdomain("spec.ingressClassName", str(spec["ingressClassName"]))
    for i, rule in enumerate(spec.get("rules") or []):
        host = str(rule.get("host") or "")
        if host:
            out += v.dns1123_subdomain(f"spec.rules[{i}].host", host.removeprefix("*."))
        for j, item in enumerate((rule.get("http") or {}).get("paths") or []):
            out += _ingress_path(f"spec.rules[{i}].http.paths[{j}]", item)
    return out


RULES: dict[str, Callable[[dict[str, Any]], list[Cause]]] = {
    "core/pods": pod,
    "batch/jobs": job,
    "core/services": service,
    "core/configmaps": configmap,
    "core/secrets": secret,
    "coordination.k8s.io/leases": lease,
    "networking.k8s.io/ingresses": ingress,
}


def causes(storage_key: str, obj: dict[str, Any]) -> list[Cause]:
    """422 causes of `obj` of `storage_key` (names are checked separately, on create)."""
    rule = RULES.get(storage_key)
    return rule(obj) if rule is not None else []
