"""Reading, validating and ordering the YAML documents given to `rayside up` (pure: no cluster needed).

Every document is checked before anything starts: it must be a mapping with a kind rayside knows, a name,
and (for ray.io kinds) pass the operator's models. Problems are `DocumentError`s whose message names the
file, the document index and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rayside.objects import JSON, Resource, name_of, namespace_of, resource_for

RAY_KINDS = ("RayCluster", "RayJob", "RayService")
# Applied first: what Ray objects read (config, secrets, accounts); Ray objects last, in file order.
_ORDER = {"Namespace": 0, "ServiceAccount": 1, "Secret": 1, "ConfigMap": 1, "Role": 2, "RoleBinding": 2}
_LATE = 5


class DocumentError(Exception):
    """A user mistake in an input file; the message is one line."""


@dataclass(frozen=True)
class Document:
    """One object to apply: where it came from, its resource and the raw body."""

    source: str  # "<file>#<index>" (index from 0)
    resource: Resource
    body: JSON

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def name(self) -> str:
        return name_of(self.body)

    @property
    def namespace(self) -> str:
        return namespace_of(self.body) or "default"


def _model_for(kind: str) -> type[BaseModel]:
    from ray_operator.models import RayCluster, RayJob, RayService

    models: dict[str, type[BaseModel]] = {
        "RayCluster": RayCluster,
        "RayJob": RayJob,
        "RayService": RayService,
    }
    return models[kind]


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_document(source: str, raw: Any) -> Document:
    """One parsed YAML document → `Document`, or DocumentError naming `source` and the field."""
    if not isinstance(raw, dict):
        raise DocumentError(f"{source}: expected a mapping (a Kubernetes object), got {type(raw).__name__}")
    api_version, kind = str(raw.get("apiVersion") or ""), str(raw.get("kind") or "")
    if not kind or not api_version:
        missing = "kind" if not kind else "apiVersion"
        raise DocumentError(f"{source}: field {missing} is required")
    try:
        resource = resource_for(api_version, kind)
    except LookupError:
        raise DocumentError(
            f"{source}: kind {kind!r} (apiVersion {api_version!r}) is not supported; "
            "use RayJob, RayCluster, RayService (ray.io/v1) or a core kind such as ConfigMap (v1)"
        ) from None
    meta = raw.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise DocumentError(f"{source}: field metadata.name is required")
    if kind in RAY_KINDS:
        try:
            _model_for(kind).model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = _field_path(tuple(err["loc"]))
            raise DocumentError(f"{source}: field {where}: {err['msg']}") from None
    return Document(source, resource, raw)


def parse_text(name: str, text: str) -> list[Document]:
    """The documents of one file's text (empty documents skipped)."""
    try:
        raws = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise DocumentError(f"{name}: not YAML{where}: {problem}") from None
    docs = [check_document(f"{name}#{i}", raw) for i, raw in enumerate(raws) if raw is not None]
    if not docs:
        raise DocumentError(f"{name}: no Kubernetes objects in the file")
    return docs


def load_files(paths: list[str]) -> list[Document]:
    """All documents of all files, validated, in apply order (see `ordered`)."""
    docs: list[Document] = []
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise DocumentError(f"{path}: cannot read: {exc.strerror or exc}") from None
        docs += parse_text(path, text)
    seen: dict[tuple[str, str, str], str] = {}
    for doc in docs:
        key = (doc.kind, doc.namespace, doc.name)
        if key in seen:
            raise DocumentError(f"{doc.source}: {doc.kind} {doc.namespace}/{doc.name} also in {seen[key]}")
        seen[key] = doc.source
    return ordered(docs)


def ordered(docs: list[Document]) -> list[Document]:
    """Namespaces, then config (ConfigMaps, Secrets, accounts), then RBAC, then the rest; stable otherwise."""
    return sorted(docs, key=lambda d: _ORDER.get(d.kind, _LATE))
