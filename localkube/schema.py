"""Structural OpenAPI v3 schemas of CRD versions: structural checks, pruning, defaulting and validation.

Pure functions over JSON-like values. Field paths are rendered the Kubernetes way (``spec.items[0].name``);
validation errors are :class:`FieldError` values that :func:`format_invalid` turns into the 422 message.
Structural checks, pruning and defaulting live here; error rendering is in :mod:`localkube.schema_errors` and
validation in :mod:`localkube.schema_validate` (both re-exported from this module).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from localkube import cel
from localkube.schema_errors import FieldError, field_error_cause, format_error, format_invalid
from localkube.schema_errors import join_path as _join
from localkube.schema_validate import _EMBEDDED, _INT_OR_STRING, Schema, format_ok, validate

__all__ = [
    "FieldError",
    "apply_defaults",
    "field_error_cause",
    "format_error",
    "format_invalid",
    "format_ok",
    "prune",
    "structural_errors",
    "validate",
]

_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_OBJECT_META = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
})  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Structural checks
# ---------------------------------------------------------------------------------------------------------

_FORBIDDEN_KEYS = ("$ref", "definitions", "dependencies", "patternProperties", "additionalItems", "id")


def structural_errors(schema: dict[str, Any]) -> list[str]:
    """Problems that make ``schema`` non-structural, as ``<path>: <message>`` strings (empty = fine)."""
    out: list[str] = []
    if schema.get("type") != "object":
        out.append(
            'type: Unsupported value: "' + str(schema.get("type", "")) + '": supported values: "object"'
        )
    if "default" in schema:
        out.append("default: Forbidden: must not be set at the root")
    meta = (schema.get("properties") or {}).get("metadata")
    if isinstance(meta, dict):
        extra = set(meta) - {"type", "properties", "description"}
        props = set((meta.get("properties") or {}).keys()) - {"name", "generateName"}
        if extra or props:
            out.append(
                "properties[metadata]: Forbidden: must not specify anything other than name and "
                "generateName, but metadata is implicitly specified"
            )
    _structural_node(schema, "", out, root=True)
    return out


def _structural_node(node: Any, path: str, out: list[str], root: bool = False) -> None:
    if not isinstance(node, dict):
        out.append(f"{path or '<root>'}: Invalid value: must be a schema object")
        return
    where = f"{path}." if path else ""
    for key in _FORBIDDEN_KEYS:
        if key in node:
            out.append(f"{where}{key}: Forbidden: {key} is not supported")
    if node.get("uniqueItems") is True:
        out.append(f"{where}uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime "
                   "complexity becomes quadratic")  # fmt: skip
    typ = node.get("type")
    if node.get(_INT_OR_STRING):
        if typ:
            out.append(
                f'{where}type: Invalid value: "{typ}": must be empty if x-kubernetes-int-or-string is true'
            )
    elif not typ and not node.get(_PRESERVE) and not root:
        out.append(f"{where}type: Required value: must not be empty for specified object fields")
    if typ == "array" and "items" not in node:
        out.append(f"{where}items: Required value: must be specified")
    if "properties" in node and "additionalProperties" in node:
        out.append(
            f"{where}additionalProperties: Forbidden: "
            "additionalProperties and properties are mutual exclusive"
        )
    _structural_lists(node, where, out)
    _structural_cel(node, where, out)
    for key, sub in (node.get("properties") or {}).items():
        _structural_node(sub, f"{where}properties[{key}]", out)
    if isinstance(node.get("items"), dict):
        _structural_node(node["items"], f"{where}items", out)
    if isinstance(node.get("additionalProperties"), dict):
        _structural_node(node["additionalProperties"], f"{where}additionalProperties", out)


def _structural_lists(node: Schema, where: str, out: list[str]) -> None:
    list_type = node.get("x-kubernetes-list-type")
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        out.append(f'{where}x-kubernetes-list-type: Unsupported value: "{list_type}": supported values: '
                   '"atomic", "map", "set"')  # fmt: skip
    if list_type is not None and node.get("type") != "array":
        out.append(f"{where}x-kubernetes-list-type: Invalid value: must only be used on array types")
    if node.get("x-kubernetes-list-map-keys") and list_type != "map":
        out.append(f"{where}x-kubernetes-list-type: Invalid value: must be map if x-kubernetes-list-map-keys "
                   "is non-empty")  # fmt: skip
    if list_type == "map" and not node.get("x-kubernetes-list-map-keys"):
        out.append(f"{where}x-kubernetes-list-map-keys: Required value: must not be empty if "
                   "x-kubernetes-list-type is map")  # fmt: skip


def _structural_cel(node: Schema, where: str, out: list[str]) -> None:
    for i, rule in enumerate(node.get("x-kubernetes-validations") or []):
        for key in ("rule", "messageExpression"):
            text = rule.get(key) if isinstance(rule, dict) else None
            if key == "rule" and not text:
                out.append(f"{where}x-kubernetes-validations[{i}].rule: Required value")
                continue
            if text:
                try:
                    cel.compile_rule(str(text))
                except cel.CelError as exc:
                    out.append(
                        f"{where}x-kubernetes-validations[{i}].{key}: "
                        f"Invalid value: {json.dumps(text)}: {exc}"
                    )


# ---------------------------------------------------------------------------------------------------------
# Pruning
# ---------------------------------------------------------------------------------------------------------


def prune(obj: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Remove fields the schema does not describe; returns (pruned copy, paths of removed fields).

    Root ``apiVersion``/``kind`` are kept and root ``metadata`` is reduced to ObjectMeta fields.
    """
    unknown: list[str] = []
    result = copy.deepcopy(obj)
    _prune_object(result, schema, "", unknown, root=True)
    return result, unknown


def _prune_object(value: dict[str, Any], schema: Schema, path: str, unknown: list[str], root: bool) -> None:
    props: dict[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    keep_all = bool(schema.get(_PRESERVE)) or additional is True
    implicit = root or bool(schema.get(_EMBEDDED))
    for key in list(value):
        sub = props.get(key)
        if implicit and key in ("apiVersion", "kind"):
            continue
        if implicit and key == "metadata" and isinstance(value[key], dict):
            for mkey in [k for k in value[key] if k not in _OBJECT_META]:
                unknown.append(_join(_join(path, "metadata"), mkey))
                del value[key][mkey]
            continue
        if sub is None and isinstance(additional, dict):
            sub = additional
        if sub is None:
            if not keep_all:
                unknown.append(_join(path, key))
                del value[key]
            continue
        _prune_value(value[key], sub, _join(path, key), unknown)


def _prune_value(value: Any, schema: Schema, path: str, unknown: list[str]) -> None:
    if isinstance(value, dict):
        if schema.get(_INT_OR_STRING) or (schema.get(_PRESERVE) and not schema.get("properties")
                                          and not isinstance(schema.get("additionalProperties"), dict)
                                          and not schema.get(_EMBEDDED)):  # fmt: skip
            return
        _prune_object(value, schema, path, unknown, root=False)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _prune_value(item, schema["items"], f"{path}[{i}]", unknown)


# ---------------------------------------------------------------------------------------------------------
# Defaulting
# ---------------------------------------------------------------------------------------------------------


def apply_defaults(obj: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Fill ``default`` values (recursively); ``null`` in non-nullable fields is dropped, then defaulted."""
    result = copy.deepcopy(obj)
    _default_value(result, schema)
    return result


def _default_value(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties") or {}
        for key, sub in props.items():
            if not isinstance(sub, dict):
                continue
            if key in value and value[key] is None and not sub.get("nullable"):
                del value[key]
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default_value(value[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in [k for k in value if k not in props]:
                _default_value(value[key], additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default_value(item, schema["items"])
