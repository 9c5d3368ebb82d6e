"""Generate the ray.io/v1 CRD YAML from the pydantic models (`python -m ray_operator.crdgen`, `rayside crds`).

Usage: `rayside crds [--out DIR] [--check]`. Without `--check` the three files are (re)written; with `--check`
nothing is written and the exit code says whether the files are current. Exit codes: 0 up to date / written,
1 stale (`--check`), 2 usage error.

The pydantic JSON schema is turned into a Kubernetes *structural* schema: `$ref`s inlined, `Optional[X]`
collapsed to `X` (Kubernetes omits unset fields rather than storing null), free-form dicts (pod templates,
Services...) become `type: object` + `x-kubernetes-preserve-unknown-fields: true`, titles dropped, CEL rules
kept. Pod templates are not marked `x-kubernetes-embedded-resource` because a PodTemplateSpec has no
apiVersion/kind, which that marker makes mandatory.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import BaseModel

from ray_operator.constants import GROUP, VERSION
from ray_operator.models import RayCluster, RayJob, RayService
from ray_operator.models.common import K8S_TYPE

CRD_DIR = Path(__file__).resolve().parent / "manifests" / "crds"
EXIT_OK, EXIT_STALE, EXIT_USAGE = 0, 1, 2

_DROP_KEYS = frozenset({"title"})
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml writes the same text 3-4x faster


def _column(name: str, typ: str, path: str, priority: int = 0, fmt: str | None = None) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": typ, "jsonPath": path}
    if fmt:
        col["format"] = fmt
    if priority:
        col["priority"] = priority
    return col


_AGE = _column("age", "date", ".metadata.creationTimestamp")

# (model, plural, singular, printer columns) — columns follow KubeRay's kubebuilder markers.
KINDS: list[tuple[type[BaseModel], str, str, list[dict[str, Any]]]] = [
    (
        RayCluster,
        "rayclusters",
        "raycluster",
        [
            _column("desired workers", "integer", ".status.desiredWorkerReplicas"),
            _column("available workers", "integer", ".status.availableWorkerReplicas"),
            _column("cpus", "string", ".status.desiredCPU"),
            _column("memory", "string", ".status.desiredMemory"),
            _column("gpus", "string", ".status.desiredGPU"),
            _column("tpus", "string", ".status.desiredTPU", priority=1),
            _column("status", "string", ".status.state"),
            _AGE,
            _column("head pod IP", "string", ".status.head.podIP", priority=1),
            _column("head service IP", "string", ".status.head.serviceIP", priority=1),
        ],
    ),
    (
        RayJob,
        "rayjobs",
        "rayjob",
        [
            _column("job status", "string", ".status.jobStatus"),
            _column("deployment status", "string", ".status.jobDeploymentStatus"),
            _column("ray cluster name", "string", ".status.rayClusterName"),
            _column("start time", "string", ".status.startTime", fmt="date-time"),
            _column("end time", "string", ".status.endTime", fmt="date-time"),
            _AGE,
        ],
    ),
    (
        RayService,
        "rayservices",
        "rayservice",
        [
            _column("service status", "string", ".status.serviceStatus"),
            _column("num serve endpoints", "string", ".status.numServeEndpoints"),
        ],
    ),
]


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline `$ref`s and collapse nullable unions, recursively."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is not None:
        target = dict(defs[ref.rsplit("/", 1)[-1]])
        target.update(node)
        node = target
    any_of = node.get("anyOf")
    if any_of is not None:
        branches = [b for b in any_of if b.get("type") != "null"]
        del node["anyOf"]
        if len(branches) == 1:
            merged = dict(branches[0])
            merged.update(node)
            node = merged
            return _resolve(node, defs)
        node["anyOf"] = branches
    return {k: _resolve(v, defs) for k, v in node.items() if k not in _DROP_KEYS}


def _kubernetes_type(node: dict[str, Any]) -> dict[str, Any]:
    """The generated schema of a field marked with `k8s_type(...)` (its description kept)."""
    from ray_operator.k8sschema import schema_of  # imports the kubernetes models: only when generating

    schema = schema_of(node[K8S_TYPE])
    if "description" in node:
        schema = {"description": node["description"], **schema}
    return schema


def _structural(node: Any) -> Any:
    """Rewrite a resolved JSON schema into a structural schema."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    if K8S_TYPE in node:
        return _kubernetes_type(node)
    out = {k: _structural(v) for k, v in node.items()}
    if out.get("default", 0) is None:
        del out["default"]
    if "anyOf" in out:
        kinds = {b.get("type") for b in out["anyOf"]}
        if kinds <= {"integer", "number", "string"}:  # a quantity: int-or-string
            del out["anyOf"]
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
            out["x-kubernetes-int-or-string"] = True
    if out.get("type") == "object" or "properties" in out:
        out["type"] = "object"
        extra = out.get("additionalProperties")
        if "properties" in out:
            out.pop("additionalProperties", None)
        elif extra is True or extra == {} or extra is None:
            out.pop("additionalProperties", None)
            out["x-kubernetes-preserve-unknown-fields"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out


def schema_for(model: type[BaseModel]) -> dict[str, Any]:
    """The openAPIV3Schema of one kind."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    resolved: dict[str, Any] = _structural(_resolve(raw, defs))
    props = resolved["properties"]
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"type": "object"}
    resolved.pop("description", None)
    resolved["required"] = ["spec"] if "spec" in resolved.get("required", []) else []
    if not resolved["required"]:
        del resolved["required"]
    resolved["properties"] = {k: props[k] for k in ("apiVersion", "kind", "metadata", "spec", "status")}
    return resolved


def crd_for(
    model: type[BaseModel], plural: str, singular: str, columns: list[dict[str, Any]]
) -> dict[str, Any]:
    """The full CustomResourceDefinition of one kind."""
    kind = model.model_fields["kind"].default
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "categories": ["all"],
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema_for(model)},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


@functools.cache
def _render_all() -> tuple[tuple[str, str], ...]:
    return tuple(_render().items())


def render_all() -> dict[str, str]:
    """File name → YAML text for every CRD (computed once per process)."""
    return dict(_render_all())


def _render() -> dict[str, str]:
    header = "# Generated by `python -m ray_operator.crdgen` from ray_operator/models; do not edit.\n"
    files: dict[str, str] = {}
    for model, plural, singular, columns in KINDS:
        text = yaml.dump(
            crd_for(model, plural, singular, columns),
            Dumper=_DUMPER,
            sort_keys=False,
            width=120,
            allow_unicode=True,
        )
        files[f"{GROUP}_{plural}.yaml"] = header + text
    return files


def stale_files(out_dir: Path) -> list[str]:
    """Names of the files in out_dir that are missing or differ from what the models generate."""
    stale = []
    for name, text in render_all().items():
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _write(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out / name).write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; see the module docstring for exit codes. User errors are one line on stderr."""
    parser = _Parser(prog="rayside crds", description="Generate the ray.io/v1 CRD YAML.")
    parser.add_argument("--out", type=Path, default=CRD_DIR, help=f"output directory (default {CRD_DIR})")
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are stale; write nothing")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    except _UsageError as exc:
        print(f"rayside crds: {exc} (see --help)", file=sys.stderr)
        return EXIT_USAGE
    if args.check:
        stale = stale_files(args.out)
        if stale:
            print(f"stale CRDs in {args.out}: {', '.join(stale)}; run `rayside crds`", file=sys.stderr)
            return EXIT_STALE
        return EXIT_OK
    try:
        _write(args.out)
    except OSError as exc:
        print(f"rayside crds: --out {str(args.out)!r}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {len(KINDS)} CRDs to {args.out}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
