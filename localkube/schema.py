"""Structural OpenAPI v3 schemas of CRD versions: structural checks, pruning, defaulting and validation.

Pure functions over JSON-like values. Field paths are rendered the Kubernetes way (``spec.items[0].name``);
validation errors are :class:`FieldError` values that :func:`format_invalid` turns into the 422 message.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from dataclasses import dataclass
from typing import Any

from localkube import cel

__all__ = [
    "FieldError",
    "apply_defaults",
    "field_error_cause",
    "format_error",
    "format_invalid",
    "prune",
    "structural_errors",
    "validate",
]

Schema = dict[str, Any]
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_EMBEDDED = "x-kubernetes-embedded-resource"
_INT_OR_STRING = "x-kubernetes-int-or-string"
_OBJECT_META = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
})  # fmt: skip


@dataclass
class FieldError:
    """One validation failure; ``type`` is the Kubernetes cause type (``FieldValueInvalid`` …)."""

    type: str
    field: str
    detail: str
    value: Any = None


_TYPE_WORDS = {
    "FieldValueRequired": "Required value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueTypeInvalid": "Invalid value",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "FieldValueForbidden": "Forbidden",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueNotFound": "Not found",
}
_NO_VALUE = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong"}


def _render(value: Any) -> str:
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def format_error(err: FieldError) -> str:
    """``<field>: <Type words>[: <value>][: <detail>]`` — the text of one cause."""
    body = _TYPE_WORDS.get(err.type, "Invalid value")
    if err.type not in _NO_VALUE:
        body += f": {_render(err.value)}"
    if err.detail:
        body += f": {err.detail}"
    return f"{err.field}: {body}" if err.field else body


def field_error_cause(err: FieldError) -> dict[str, str]:
    """The ``details.causes[]`` entry of a 422 Status for ``err``."""
    text = format_error(err)
    return {
        "reason": err.type,
        "message": text[len(err.field) + 2 :] if err.field else text,
        "field": err.field,
    }


def format_invalid(kind_group: str, name: str, errors: list[FieldError]) -> str:
    """``RayCluster.ray.io "x" is invalid: [a: ..., b: ...]`` (no brackets for a single error)."""
    texts = [format_error(e) for e in errors]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return f'{kind_group} "{name}" is invalid: {joined}'


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


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


# ---------------------------------------------------------------------------------------------------------
# Validation (CEL rules via localkube.cel)
# ---------------------------------------------------------------------------------------------------------


def validate(
    obj: dict[str, Any], schema: dict[str, Any], old: dict[str, Any] | None = None
) -> list[FieldError]:
    """All schema violations of ``obj`` (CEL transition rules see ``old`` when given)."""
    validator = _Validator()
    validator.node(obj, schema, "", old, old is not None, root=True)
    return validator.errors


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def format_ok(fmt: str, value: Any) -> bool:
    """Whether ``value`` satisfies the OpenAPI ``format`` (unknown formats always pass)."""
    if fmt == "int32":
        return not isinstance(value, int) or -(2**31) <= value < 2**31
    if fmt == "int64":
        return not isinstance(value, int) or -(2**63) <= value < 2**63
    if not isinstance(value, str):
        return True
    if fmt == "date-time":
        return bool(_DATE_TIME.match(value))
    if fmt == "date":
        return bool(_DATE.match(value))
    if fmt == "uuid":
        return bool(_UUID.match(value))
    if fmt == "byte":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
    return True


_JSON_TYPES = (("boolean", bool), ("integer", int), ("number", float), ("string", str), ("array", list),
               ("object", dict))  # fmt: skip


def _json_type(value: Any) -> str:
    for name, cls in _JSON_TYPES:
        if isinstance(value, cls):
            return name
    return "null"


def _type_ok(typ: str, value: Any) -> bool:
    actual = _json_type(value)
    if typ == "number":
        return actual in ("integer", "number")
    if typ == "integer" and actual == "number":
        return float(value).is_integer()
    return actual == typ


class _Validator:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, typ: str, field: str, detail: str, value: Any = None) -> None:
        self.errors.append(FieldError(typ, field, detail, value))

    def node(
        self, value: Any, schema: Schema, path: str, old: Any, has_old: bool, root: bool = False
    ) -> None:
        if not self.check_type(value, schema, path):
            return
        if value is None:
            return
        self.scalar(value, schema, path)
        if isinstance(value, dict):
            self.object(value, schema, path, old if isinstance(old, dict) else None, has_old, root)
        elif isinstance(value, list):
            self.array(value, schema, path, old if isinstance(old, list) else None, has_old)
        self.combinators(value, schema, path)
        self.rules(value, schema, path, old, has_old and old is not None)

    def check_type(self, value: Any, schema: Schema, path: str) -> bool:
        if value is None:
            if schema.get("nullable"):
                return True
            if not schema.get("type") and not schema.get(_INT_OR_STRING):
                return True
        if schema.get(_INT_OR_STRING):
            if _json_type(value) in ("integer", "string"):
                return True
            typ = "integer or string"
        else:
            typ = str(schema.get("type") or "")
            if not typ or _type_ok(typ, value):
                return True
        actual = _json_type(value)
        self.add(
            "FieldValueTypeInvalid",
            path,
            f'{path or "body"} in body must be of type {typ}: "{actual}"',
            actual,
        )
        return False

    def scalar(self, value: Any, schema: Schema, path: str) -> None:
        where = path or "body"
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(json.dumps(v) for v in schema["enum"])
            self.add("FieldValueNotSupported", path, f"supported values: {allowed}", value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.bounds(value, schema, path)
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                self.add(
                    "FieldValueInvalid",
                    path,
                    f"{where} in body should be at least {schema['minLength']} chars long",
                    value,
                )
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                self.add(
                    "FieldValueTooLong", path, f"may not be more than {schema['maxLength']} bytes", value
                )
            if "pattern" in schema and not re.search(schema["pattern"], value):
                self.add(
                    "FieldValueInvalid", path, f"{where} in body should match '{schema['pattern']}'", value
                )
        fmt = schema.get("format")
        if fmt and not format_ok(str(fmt), value):
            self.add(
                "FieldValueInvalid",
                path,
                f"{where} in body must be of type {fmt}: {json.dumps(value)}",
                value,
            )

    def bounds(self, value: float, schema: Schema, path: str) -> None:
        where = path or "body"
        if "minimum" in schema:
            low = schema["minimum"]
            if schema.get("exclusiveMinimum") and value <= low:
                self.add("FieldValueInvalid", path, f"{where} in body should be greater than {low}", value)
            elif value < low:
                self.add(
                    "FieldValueInvalid",
                    path,
                    f"{where} in body should be greater than or equal to {low}",
                    value,
                )
        if "maximum" in schema:
            high = schema["maximum"]
            if schema.get("exclusiveMaximum") and value >= high:
                self.add("FieldValueInvalid", path, f"{where} in body should be less than {high}", value)
            elif value > high:
                self.add(
                    "FieldValueInvalid",
                    path,
                    f"{where} in body should be less than or equal to {high}",
                    value,
                )
        if schema.get("multipleOf") and value % schema["multipleOf"]:
            self.add(
                "FieldValueInvalid",
                path,
                f"{where} in body should be a multiple of {schema['multipleOf']}",
                value,
            )

    def object(self, value: dict[str, Any], schema: Schema, path: str, old: dict[str, Any] | None,
               has_old: bool, root: bool) -> None:  # fmt: skip
        where = path or "body"
        for key in schema.get("required") or []:
            if key not in value and not (root and key in ("apiVersion", "kind", "metadata")):
                self.add("FieldValueRequired", _join(path, key), "")
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            self.add(
                "FieldValueInvalid",
                path,
                f"{where} in body should have at least {schema['minProperties']} properties",
                len(value),
            )
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            self.add(
                "FieldValueTooMany", path, f"must have at most {schema['maxProperties']} items", len(value)
            )
        if schema.get(_EMBEDDED):
            for key in ("apiVersion", "kind"):
                if not value.get(key):
                    self.add("FieldValueRequired", _join(path, key), "must not be empty")
        props: dict[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if (root or schema.get(_EMBEDDED)) and key == "metadata":
                continue
            sub = props.get(key, additional if isinstance(additional, dict) else None)
            if isinstance(sub, dict):
                sub_old = old.get(key) if old is not None else None
                self.node(item, sub, _join(path, key), sub_old, has_old and old is not None and key in old)

    def array(
        self, value: list[Any], schema: Schema, path: str, old: list[Any] | None, has_old: bool
    ) -> None:
        where = path or "body"
        if "minItems" in schema and len(value) < schema["minItems"]:
            self.add(
                "FieldValueInvalid",
                path,
                f"{where} in body should have at least {schema['minItems']} items",
                len(value),
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.add("FieldValueTooMany", path, f"must have at most {schema['maxItems']} items", len(value))
        list_type = schema.get("x-kubernetes-list-type")
        keys = list(schema.get("x-kubernetes-list-map-keys") or [])
        seen: list[Any] = []
        for i, item in enumerate(value):
            ident = {k: item.get(k) for k in keys} if list_type == "map" and isinstance(item, dict) else item
            if (list_type in ("set", "map") or schema.get("uniqueItems")) and ident in seen:
                self.add("FieldValueDuplicate", f"{path}[{i}]", "", ident)
            seen.append(ident)
        items = schema.get("items")
        if not isinstance(items, dict):
            return
        old_by_key = {}
        if list_type == "map" and old is not None and has_old:
            old_by_key = {
                json.dumps({k: o.get(k) for k in keys}, sort_keys=True): o for o in old if isinstance(o, dict)
            }
        for i, item in enumerate(value):
            ident_key = (
                json.dumps({k: item.get(k) for k in keys}, sort_keys=True) if isinstance(item, dict) else ""
            )
            sub_old = old_by_key.get(ident_key)
            self.node(item, items, f"{path}[{i}]", sub_old, sub_old is not None)

    def combinators(self, value: Any, schema: Schema, path: str) -> None:
        def passes(sub: Schema) -> bool:
            probe = _Validator()
            probe.node(value, sub, path, None, False)
            return not probe.errors

        for sub in schema.get("allOf") or []:
            self.node(value, sub, path, None, False)
        if schema.get("anyOf") and not any(passes(s) for s in schema["anyOf"]):
            self.add("FieldValueInvalid", path, "must validate at least one schema (anyOf)", value)
        if schema.get("oneOf") and sum(1 for s in schema["oneOf"] if passes(s)) != 1:
            self.add("FieldValueInvalid", path, "must validate one and only one schema (oneOf)", value)
        if isinstance(schema.get("not"), dict) and passes(schema["not"]):
            self.add("FieldValueInvalid", path, "must not validate the schema (not)", value)

    def rules(self, value: Any, schema: Schema, path: str, old: Any, has_old: bool) -> None:
        for rule in schema.get("x-kubernetes-validations") or []:
            text = str(rule.get("rule", ""))
            try:
                compiled = cel.compile_rule(text)
                if compiled.transition and not has_old:
                    continue
                if cel.evaluate_rule(text, value, old, has_old):
                    continue
                message = self.rule_message(rule, value, old, has_old)
            except cel.CelError as exc:
                message = f"{text}: {exc}"
            reason = str(rule.get("reason") or "FieldValueInvalid")
            field = path + str(rule.get("fieldPath") or "")
            field = field[1:] if field.startswith(".") else field
            kind = "object" if isinstance(value, dict) else _json_type(value)
            bad: Any = kind if kind in ("object", "array") else value
            self.add(reason if reason in _TYPE_WORDS else "FieldValueInvalid", field, message, bad)

    @staticmethod
    def rule_message(rule: dict[str, Any], value: Any, old: Any, has_old: bool) -> str:
        if rule.get("messageExpression"):
            try:
                text = cel.evaluate_message(str(rule["messageExpression"]), value, old, has_old)
                if text.strip():
                    return text
            except cel.CelError:
                pass
        if rule.get("message"):
            return str(rule["message"])
        return f"failed rule: {rule.get('rule', '')}"
