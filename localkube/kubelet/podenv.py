"""Pure derivation of a container's environment and of a pod's /etc/hosts.

Environment: `env` (value, `$(VAR)` expansion, valueFrom secretKeyRef/configMapKeyRef/fieldRef/
resourceFieldRef) and `envFrom`, on top of a base environment (PATH, HOME, KUBERNETES_SERVICE_*, ...).
Referenced Secrets and ConfigMaps are looked up through an injected function.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from rayside.objects import JSON, name_of, namespace_of
from rayside.quantity import QuantityError, parse_quantity

Lookup = Callable[[str, str, str], JSON | None]  # (kind "Secret"|"ConfigMap", namespace, name) -> object
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


class EnvError(ValueError):
    """A container's environment cannot be built (the kubelet reports CreateContainerConfigError)."""


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: known names are replaced, `$$` becomes `$`, others stay as written."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _REF.sub(repl, text)


def _decode(obj: JSON, key: str) -> str | None:
    if obj.get("kind") == "Secret" or "type" in obj:
        raw = (obj.get("data") or {}).get(key)
        if raw is not None:
            return base64.b64decode(raw).decode(errors="replace")
        string = (obj.get("stringData") or {}).get(key)
        return None if string is None else str(string)
    value = (obj.get("data") or {}).get(key)
    if value is None and key in (obj.get("binaryData") or {}):
        return base64.b64decode(obj["binaryData"][key]).decode(errors="replace")
    return None if value is None else str(value)


def _bracket_key(path: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    return (m.group(1), m.group(2)) if m else None


def field_value(pod: JSON, path: str) -> str:
    """Value of a downward-API `fieldRef.fieldPath`."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    keyed = _bracket_key(path)
    if keyed is not None:
        return str((meta.get(keyed[0]) or {}).get(keyed[1], ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = (meta.get(path.split(".")[1]) or {}).items()
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(i.get("ip", "") for i in status.get("podIPs") or []),
        "status.hostIPs": ",".join(i.get("ip", "") for i in status.get("hostIPs") or []),
    }
    if path not in simple:
        raise EnvError(f"fieldRef.fieldPath: {path!r} is not supported")
    return str(simple[path] or "")


@dataclass(frozen=True)
class NodeResources:
    cpus: int
    memory_bytes: int


def resource_value(container: JSON, ref: JSON, node: NodeResources) -> str:
    """Value of a `resourceFieldRef` (limits fall back to the node's allocatable, like the kubelet)."""
    resource = str(ref.get("resource", ""))
    kind, _, name = resource.partition(".")
    section = (container.get("resources") or {}).get(kind) or {}
    try:
        divisor = parse_quantity(ref.get("divisor") or "1")
        amount = parse_quantity(section[name]) if name in section else None
    except QuantityError as exc:
        raise EnvError(f"resourceFieldRef {resource!r}: {exc}") from None
    if name == "cpu":
        default = node.cpus if kind == "limits" else 0
    elif name in ("memory", "ephemeral-storage"):
        default = node.memory_bytes if kind == "limits" else 0
    else:
        raise EnvError(f"resourceFieldRef.resource: {resource!r} is not supported")
    if amount is None:
        amount = Decimal(default)
    if divisor <= 0:
        raise EnvError(f"resourceFieldRef {resource!r}: divisor {ref.get('divisor')!r} must be positive")
    return str(math.ceil(amount / divisor))


def _value_from(src: JSON, pod: JSON, container: JSON, lookup: Lookup, node: NodeResources) -> str | None:
    ns = namespace_of(pod) or "default"
    for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
        ref = src.get(field)
        if ref is None:
            continue
        obj = lookup(kind, ns, str(ref.get("name", "")))
        value = None if obj is None else _decode(obj, str(ref.get("key", "")))
        if value is None and not ref.get("optional"):
            what = "secret" if kind == "Secret" else "configmap"
            raise EnvError(f'{what} "{ref.get("name")}" key "{ref.get("key")}" not found')
        return value
    if "fieldRef" in src:
        return field_value(pod, str(src["fieldRef"].get("fieldPath", "")))
    if "resourceFieldRef" in src:
        return resource_value(container, src["resourceFieldRef"], node)
    return None


def _env_from(source: JSON, ns: str, lookup: Lookup) -> dict[str, str]:
    out: dict[str, str] = {}
    prefix = str(source.get("prefix") or "")
    for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
        ref = source.get(field)
        if ref is None:
            continue
        obj = lookup(kind, ns, str(ref.get("name", "")))
        if obj is None:
            if ref.get("optional"):
                continue
            raise EnvError(f'{kind.lower()} "{ref.get("name")}" not found')
        keys = list((obj.get("data") or {}).keys()) + list((obj.get("stringData") or {}).keys())
        for key in keys:
            if ENV_NAME.match(prefix + key):
                out[prefix + key] = _decode(obj, key) or ""
    return out


def container_env(
    pod: JSON, container: JSON, base: dict[str, str], lookup: Lookup, node: NodeResources
) -> dict[str, str]:
    """The full environment of `container`; raises `EnvError` for a missing non-optional reference."""
    env = dict(base)
    ns = namespace_of(pod) or "default"
    for source in container.get("envFrom") or []:
        env.update(_env_from(source, ns, lookup))
    for item in container.get("env") or []:
        name = str(item.get("name", ""))
        if "valueFrom" in item:
            value = _value_from(item["valueFrom"], pod, container, lookup, node)
            if value is None:
                continue
            env[name] = value
        else:
            env[name] = expand(str(item.get("value", "")), env)
    return env


def container_argv(container: JSON, env: dict[str, str]) -> list[str]:
    """command + args with `$(VAR)` expansion; the image entrypoint cannot be known, so one is required."""
    argv = [expand(str(a), env) for a in (container.get("command") or []) + (container.get("args") or [])]
    if not argv:
        raise EnvError(f"container {container.get('name')!r}: command/args are required in process mode")
    return argv


# -- /etc/hosts ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PodAddr:
    """What DNS needs to know about one pod."""

    namespace: str
    name: str
    ip: str
    ready: bool
    labels: dict[str, str]
    hostname: str = ""
    subdomain: str = ""


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def service_ips(svc: JSON, pods: list[PodAddr]) -> list[str]:
    """Addresses a Service name resolves to: every selected pod for a headless Service (not-ready ones
    only with publishNotReadyAddresses), one ready pod for a ClusterIP Service (there is no kube-proxy)."""
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    ns, selector = meta.get("namespace"), spec.get("selector") or {}
    chosen = sorted(
        (p for p in pods if p.namespace == ns and p.ip and _selects(selector, p.labels)),
        key=lambda p: (not p.ready, p.name),
    )
    if spec.get("clusterIP") == "None":
        publish = bool(spec.get("publishNotReadyAddresses"))
        return [p.ip for p in chosen if p.ready or publish]
    ready = [p.ip for p in chosen if p.ready]
    return ready[:1]


def hosts_file(me: PodAddr, services: list[JSON], pods: list[PodAddr], machine_hostname: str) -> str:
    """/etc/hosts for pod `me`: itself, then every Service name with a resolvable address."""
    own = [me.name, machine_hostname]
    if me.hostname and me.subdomain:
        own = [f"{me.hostname}.{me.subdomain}.{me.namespace}.svc.cluster.local", me.hostname, *own]
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", f"{me.ip}\t{' '.join(own)}"]
    for svc in sorted(services, key=lambda s: (namespace_of(s), name_of(s))):
        name, ns = name_of(svc), namespace_of(svc)
        names = [f"{name}.{ns}.svc.cluster.local", f"{name}.{ns}.svc", f"{name}.{ns}"]
        if ns == me.namespace:
            names.append(name)
        lines.extend(f"{ip}\t{' '.join(names)}" for ip in service_ips(svc, pods))
    for p in pods:
        if p.hostname and p.subdomain and p.ip and p is not me:
            lines.append(f"{p.ip}\t{p.hostname}.{p.subdomain}.{p.namespace}.svc.cluster.local")
    return "\n".join(lines) + "\n"
