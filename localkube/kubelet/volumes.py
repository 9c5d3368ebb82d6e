"""Pod volumes as per-pod directories, and the mount plan that puts them at their `mountPath`s.

`materialize` writes emptyDir/secret/configMap/downwardAPI/projected volumes under the pod directory (I/O);
`mount_plan` (pure) says which directory or file goes to which mount path for one container; `mount_script`
(pure) renders the plan as a shell prologue run inside the container's private mount namespace.
`write_serviceaccount` writes the files a pod's service account token mount holds (token, ca.crt,
namespace) and `serviceaccount_mount` (pure) puts them at the path in-cluster clients read.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from localkube.kubelet.podenv import EnvError, NodeResources, field_value, resource_value
from rayside.objects import JSON, namespace_of

log = logging.getLogger(__name__)
SERVICEACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
Lookup = Callable[[str, str, str], JSON | None]


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool


def _files_of(obj: JSON, items: list[JSON] | None) -> dict[str, tuple[bytes, int | None]]:
    """key -> bytes for a Secret/ConfigMap, restricted/renamed by `items` when given."""
    data: dict[str, bytes] = {}
    secret = obj.get("kind") == "Secret" or "type" in obj
    for key, value in (obj.get("data") or {}).items():
        data[key] = base64.b64decode(value) if secret else str(value).encode()
    for key, value in (obj.get("binaryData") or {}).items():
        data[key] = base64.b64decode(value)
    for key, value in (obj.get("stringData") or {}).items():
        data.setdefault(key, str(value).encode())
    if not items:
        return {k: (v, None) for k, v in data.items()}
    out: dict[str, tuple[bytes, int | None]] = {}
    for item in items:
        key = str(item.get("key", ""))
        if key not in data:
            raise EnvError(f"volume item key {key!r} not found in {obj.get('metadata', {}).get('name')!r}")
        out[str(item.get("path") or key)] = (data[key], item.get("mode"))
    return out


def _write_files(root: Path, files: dict[str, tuple[bytes, int | None]], default_mode: int | None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, (content, mode) in files.items():
        path = root / rel
        if ".." in Path(rel).parts:
            raise EnvError(f"volume item path {rel!r} must not contain '..'")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        with contextlib.suppress(OSError):
            fallback = default_mode if default_mode is not None else 0o644
            os.chmod(path, mode if mode is not None else fallback)


def _downward(pod: JSON, items: list[JSON], node: NodeResources) -> dict[str, tuple[bytes, int | None]]:
    containers = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
    out: dict[str, tuple[bytes, int | None]] = {}
    for item in items:
        if "fieldRef" in item:
            value = field_value(pod, str(item["fieldRef"].get("fieldPath", "")))
        else:
            ref = item.get("resourceFieldRef") or {}
            container: JSON = containers.get(ref.get("containerName")) or next(iter(containers.values()), {})
            value = resource_value(container, ref, node)
        out[str(item.get("path"))] = (value.encode(), item.get("mode"))
    return out


def _source_files(
    kind: str, ref: JSON, ns: str, lookup: Lookup
) -> dict[str, tuple[bytes, int | None]] | None:
    name = str(ref.get("name") or ref.get("secretName") or "")
    obj = lookup(kind, ns, name)
    if obj is None:
        if ref.get("optional"):
            return {}
        raise EnvError(f'{kind.lower()} "{name}" not found')
    return _files_of(obj, ref.get("items"))


def materialize(
    pod: JSON, pod_dir: Path, state_dir: Path, lookup: Lookup, node: NodeResources, token: str = ""
) -> dict[str, str]:
    """Create every volume of `pod`; returns volume name -> host path (directory, or hostPath).
    `token` fills projected `serviceAccountToken` sources."""
    ns = namespace_of(pod) or "default"
    paths: dict[str, str] = {}
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        name = str(vol.get("name"))
        root = pod_dir / "volumes" / name
        if "hostPath" in vol:
            paths[name] = str(vol["hostPath"].get("path"))
            continue
        if "persistentVolumeClaim" in vol:
            root = state_dir / "pvc" / ns / str(vol["persistentVolumeClaim"].get("claimName"))
        root.mkdir(parents=True, exist_ok=True)
        paths[name] = str(root)
        files: dict[str, tuple[bytes, int | None]] = {}
        if "secret" in vol:
            files = _source_files("Secret", vol["secret"], ns, lookup) or {}
            _write_files(root, files, vol["secret"].get("defaultMode"))
        elif "configMap" in vol:
            files = _source_files("ConfigMap", vol["configMap"], ns, lookup) or {}
            _write_files(root, files, vol["configMap"].get("defaultMode"))
        elif "downwardAPI" in vol:
            _write_files(root, _downward(pod, vol["downwardAPI"].get("items") or [], node), None)
        elif "projected" in vol:
            _write_files(root, _projected(pod, vol["projected"], ns, lookup, node, token), None)
    return paths


def _projected(
    pod: JSON, spec: JSON, ns: str, lookup: Lookup, node: NodeResources, token: str
) -> dict[str, tuple[bytes, int | None]]:
    files: dict[str, tuple[bytes, int | None]] = {}
    for src in spec.get("sources") or []:
        if "secret" in src:
            files.update(_source_files("Secret", src["secret"], ns, lookup) or {})
        elif "configMap" in src:
            files.update(_source_files("ConfigMap", src["configMap"], ns, lookup) or {})
        elif "downwardAPI" in src:
            files.update(_downward(pod, src["downwardAPI"].get("items") or [], node))
        elif "serviceAccountToken" in src:  # the token the kubelet was given for pods (no issuer)
            files[str(src["serviceAccountToken"].get("path", "token"))] = (token.encode(), None)
    return files


def automounts_token(pod: JSON) -> bool:
    """Whether the pod gets the service account token mount (`automountServiceAccountToken` not false)."""
    return (pod.get("spec") or {}).get("automountServiceAccountToken") is not False


def write_serviceaccount(pod: JSON, pod_dir: Path, token: str, ca_pem: bytes) -> str:
    """Write token, ca.crt and namespace (what in-cluster config reads) to the pod's own directory."""
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    root = pod_dir / "serviceaccount"
    files: dict[str, tuple[bytes, int | None]] = {
        "token": (token.encode(), None),
        "ca.crt": (ca_pem, None),
        "namespace": (ns.encode(), None),
    }
    _write_files(root, files, 0o644)
    return str(root)


def serviceaccount_mount(container: JSON, source: str) -> Mount | None:
    """The read-only mount of `source` at SERVICEACCOUNT_PATH, unless the container mounts a volume at
    that very path itself (the service account admission leaves such containers alone too)."""
    for vm in container.get("volumeMounts") or []:
        if str(vm.get("mountPath", "")).rstrip("/") == SERVICEACCOUNT_PATH:
            return None
    return Mount(source, SERVICEACCOUNT_PATH, True)


def mount_plan(container: JSON, volume_paths: dict[str, str]) -> list[Mount]:
    """Bind mounts for `container`: volume directory (or its subPath) onto each mountPath."""
    mounts = []
    for vm in container.get("volumeMounts") or []:
        source = volume_paths.get(str(vm.get("name")))
        if source is None:
            raise EnvError(f"volumeMounts.name: {vm.get('name')!r} is not a volume of the pod")
        sub = str(vm.get("subPath") or "")
        if sub:
            source = str(Path(source) / sub)
        target = str(vm.get("mountPath", ""))
        if source != target:
            mounts.append(Mount(source, target, bool(vm.get("readOnly"))))
    return mounts


def prepare_targets(mounts: list[Mount]) -> list[Path]:
    """Create missing mount points on the host (directories, or empty files for file sources); returns
    what was created so it can be removed again. Existing host files are never modified."""
    created: list[Path] = []
    for m in mounts:
        target = Path(m.target)
        if target.exists() or target.is_symlink():
            continue
        missing = [p for p in [target, *target.parents] if not p.exists()]
        if Path(m.source).is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        else:
            target.mkdir(parents=True, exist_ok=True)
        created.extend(missing)
    return created


def remove_targets(created: list[Path]) -> None:
    """Remove mount points made by `prepare_targets` (deepest first; only if still empty)."""
    for path in sorted(set(created), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            if path.is_dir():
                path.rmdir()
            elif path.is_file() and path.stat().st_size == 0:
                path.unlink()


def mount_script(mounts: list[Mount]) -> str:
    """Shell prologue that bind-mounts each source onto its target, then execs the container command."""
    lines = ["set -e"]
    for m in mounts:
        src, dst = shlex.quote(m.source), shlex.quote(m.target)
        lines.append(f"mount --bind {src} {dst}")
        if m.read_only:
            lines.append(f"mount -o remount,bind,ro {dst}")
    lines.append('exec "$@"')
    return "\n".join(lines)
