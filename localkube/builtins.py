"""Per-kind server behaviour of built-in resources: defaults, validation, allocation, immutability."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from localkube.errors import ApiError, cause, invalid
from localkube.registry import ResourceType
from rayside.objects import JSON, name_of, namespace_of, uid_of

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
NODE_PORTS = range(30000, 32768)


def _pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    return "Always" if ":" not in tail or tail.endswith(":latest") else "IfNotPresent"


def _qos(spec: JSON) -> str:
    res = [c.get("resources") or {} for c in spec.get("containers") or []]
    if not any(r.get("requests") or r.get("limits") for r in res):
        return "BestEffort"
    for r in res:
        lim, req = r.get("limits") or {}, r.get("requests") or {}
        if not (lim.get("cpu") and lim.get("memory")):
            return "Burstable"
        if any(req.get(k, lim[k]) != lim[k] for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


def pod_defaults(pod: JSON) -> None:
    spec = pod.setdefault("spec", {})
    for key, value in (
        ("restartPolicy", "Always"),
        ("dnsPolicy", "ClusterFirst"),
        ("schedulerName", "default-scheduler"),
        ("terminationGracePeriodSeconds", 30),
        ("securityContext", {}),
        ("enableServiceLinks", True),
        ("priority", 0),
        ("serviceAccountName", spec.get("serviceAccount") or "default"),
    ):
        spec.setdefault(key, value)
    for group in ("containers", "initContainers"):
        for ctr in spec.get(group) or []:
            ctr.setdefault("terminationMessagePath", "/dev/termination-log")
            ctr.setdefault("terminationMessagePolicy", "File")
            ctr.setdefault("imagePullPolicy", _pull_policy(str(ctr.get("image", ""))))
            ctr.setdefault("resources", {})


def _mutable_view(spec: JSON) -> JSON:
    view = dict(spec)
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        view.pop(key, None)
    for group in ("containers", "initContainers"):
        if group in view:
            view[group] = [{k: v for k, v in c.items() if k != "image"} for c in view[group]]
    return view


def pod_update_causes(new: JSON, old: JSON) -> list[dict[str, str]]:
    if _mutable_view(new.get("spec") or {}) != _mutable_view(old.get("spec") or {}):
        return [
            cause(
                "FieldValueForbidden",
                "spec",
                "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
                "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` "
                "(only additions "
                "to existing tolerations), `spec.terminationGracePeriodSeconds` (allow it to be "
                "set to 1 if it "
                "was previously negative)",
            )
        ]
    return []


def _taken_ips(services: Iterable[JSON]) -> set[str]:
    ips: set[str] = set()
    for svc in services:
        for ip in (svc.get("spec") or {}).get("clusterIPs") or []:
            ips.add(ip)
    return ips


def _taken_ports(services: Iterable[JSON]) -> set[int]:
    return {
        int(p["nodePort"])
        for svc in services
        for p in (svc.get("spec") or {}).get("ports") or []
        if p.get("nodePort")
    }


def service_create(svc: JSON, existing: list[JSON]) -> list[dict[str, str]]:
    """Defaults, clusterIP and nodePort allocation; returns validation causes."""
    spec = svc.setdefault("spec", {})
    stype = spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    ports = spec.get("ports") or []
    out: list[dict[str, str]] = []
    for i, port in enumerate(ports):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if len(ports) > 1 and not port.get("name"):
            out.append(cause("FieldValueRequired", f"spec.ports[{i}].name", "Required value"))
    if stype in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
        taken = _taken_ports(existing)
        free = (p for p in NODE_PORTS if p not in taken)
        for i, port in enumerate(ports):
            want = port.get("nodePort")
            if want is None:
                port["nodePort"] = next(free)
            elif int(want) not in NODE_PORTS or int(want) in taken:
                out.append(
                    cause(
                        "FieldValueInvalid",
                        f"spec.ports[{i}].nodePort",
                        f"Invalid value: {want}: "
                        "provided port is already allocated or not in the valid range 30000-32767",
                    )
                )
    svc.setdefault("status", {}).setdefault("loadBalancer", {})
    ip = spec.get("clusterIP")
    if ip == "None":
        spec["clusterIPs"] = ["None"]
    else:
        taken_ips = _taken_ips(existing)
        if ip:
            if ipaddress.ip_address(ip) not in SERVICE_CIDR or ip in taken_ips:
                out.append(
                    cause(
                        "FieldValueInvalid",
                        "spec.clusterIP",
                        f'Invalid value: "{ip}": provided IP is '
                        f"already allocated or not in the valid range {SERVICE_CIDR}",
                    )
                )
        else:
            ip = next(str(a) for a in SERVICE_CIDR.hosts() if str(a) not in taken_ips)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    return out


def service_update_causes(new: JSON, old: JSON) -> list[dict[str, str]]:
    old_ip = (old.get("spec") or {}).get("clusterIP")
    spec = new.setdefault("spec", {})
    if not spec.get("clusterIP"):
        spec["clusterIP"] = old_ip
        spec["clusterIPs"] = (old.get("spec") or {}).get("clusterIPs")
    if spec.get("clusterIP") != old_ip:
        return [cause("FieldValueInvalid", "spec.clusterIP", "Invalid value: field is immutable")]
    return []


def job_create(job: JSON) -> list[dict[str, str]]:
    spec = job.setdefault("spec", {})
    if "parallelism" not in spec and "completions" not in spec:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    tmpl = spec.setdefault("template", {})
    uid, name = uid_of(job), name_of(job)
    if not spec.get("manualSelector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        labels = tmpl.setdefault("metadata", {}).setdefault("labels", {})
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            }
        )
    policy = (tmpl.get("spec") or {}).get("restartPolicy")
    if policy not in ("Never", "OnFailure"):
        return [
            cause(
                "FieldValueNotSupported",
                "spec.template.spec.restartPolicy",
                f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
            )
        ]
    pod_defaults(tmpl)
    return []


def job_update_causes(new: JSON, old: JSON) -> list[dict[str, str]]:
    out = []
    for key in ("template", "selector"):
        if (new.get("spec") or {}).get(key) != (old.get("spec") or {}).get(key):
            out.append(cause("FieldValueInvalid", f"spec.{key}", "Invalid value: field is immutable"))
    return out


def secret_defaults(secret: JSON) -> list[dict[str, str]]:
    """`stringData` is write-only: merged into base64 `data` (winning over it); `type` defaults to Opaque."""
    secret.setdefault("type", "Opaque")
    string_data = secret.pop("stringData", None) or {}
    if not isinstance(string_data, dict):
        return [cause("FieldValueInvalid", "stringData", "Invalid value: must be a map of strings")]
    data = secret.setdefault("data", {}) if string_data else secret.get("data")
    for key, value in string_data.items():
        assert isinstance(data, dict)
        data[key] = base64.b64encode(str(value).encode()).decode()
    return []


def owner_causes(meta: JSON) -> list[dict[str, str]]:
    refs = meta.get("ownerReferences") or []
    out: list[dict[str, str]] = []
    if sum(1 for r in refs if isinstance(r, dict) and r.get("controller")) > 1:
        out.append(
            cause(
                "FieldValueInvalid",
                "metadata.ownerReferences",
                "Invalid value: only one reference can have Controller set to true",
            )
        )
    for i, ref in enumerate(refs):
        for key in ("apiVersion", "kind", "name", "uid"):
            if not isinstance(ref, dict) or not ref.get(key):
                out.append(
                    cause("FieldValueRequired", f"metadata.ownerReferences[{i}].{key}", "Required value")
                )
    return out


def event_causes(event: JSON) -> list[dict[str, str]]:
    """A core/v1 Event lives in its involved object's namespace (`default` for cluster-scoped objects)."""
    involved = (event.get("involvedObject") or {}).get("namespace") or "default"
    if involved != namespace_of(event):
        return [
            cause(
                "FieldValueInvalid",
                "involvedObject.namespace",
                f'Invalid value: "{involved}": does not match event.namespace',
            )
        ]
    return []


def namespace_defaults(ns: JSON) -> None:
    name = name_of(ns)
    ns["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    ns.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    ns.setdefault("status", {}).setdefault("phase", "Active")


def crd_causes(crd: JSON, structural: Callable[[dict[str, Any]], list[str]]) -> list[dict[str, str]]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out: list[dict[str, str]] = []
    want = f"{names.get('plural')}.{spec.get('group')}"
    if name_of(crd) != want:
        out.append(
            cause(
                "FieldValueInvalid",
                "metadata.name",
                f'Invalid value: "{name_of(crd)}": must be spec.names.plural+"."+spec.group',
            )
        )
    for key in ("plural", "kind"):
        if not names.get(key):
            out.append(cause("FieldValueRequired", f"spec.names.{key}", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        out.append(
            cause(
                "FieldValueNotSupported",
                "spec.scope",
                f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions") or []
    if sum(1 for v in versions if v.get("storage")) != 1:
        out.append(
            cause(
                "FieldValueInvalid",
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    for i, ver in enumerate(versions):
        schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            out.append(
                cause("FieldValueRequired", f"spec.versions[{i}].schema.openAPIV3Schema", "Required value")
            )
            continue
        out.extend(
            cause("FieldValueInvalid", f"spec.versions[{i}].schema.openAPIV3Schema", msg)
            for msg in structural(schema)
        )
    return out


def crd_status(crd: JSON, when: str) -> None:
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("listKind", f"{names.get('kind')}List")
    names.setdefault("singular", str(names.get("kind", "")).lower())
    status = crd.setdefault("status", {})
    status["acceptedNames"] = names
    stored = set(status.get("storedVersions") or [])
    stored.update(v["name"] for v in spec.get("versions") or [] if v.get("storage"))
    status["storedVersions"] = sorted(stored)
    status["conditions"] = [
        {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": when}
        for t, r, m in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        )
    ]


def check(rt: ResourceType, obj: JSON, causes: list[dict[str, str]]) -> None:
    if causes:
        raise invalid(rt.kind, rt.group, name_of(obj), causes)


def forbid_namespace_terminating(ns_obj: JSON | None, ns: str) -> None:
    if ns_obj is not None and (ns_obj.get("status") or {}).get("phase") == "Terminating":
        raise ApiError(
            403,
            f"unable to create new content in namespace {ns} because it is being terminated",
            details={
                "name": ns,
                "kind": "namespaces",
                "causes": [
                    {
                        "reason": "NamespaceTerminating",
                        "message": f"namespace {ns} is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            },
        )
