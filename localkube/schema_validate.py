"""Validation of JSON-like values against structural OpenAPI v3 schemas, including CEL rules.

Split out of :mod:`localkube.schema`, which re-exports :func:`validate` and :func:`format_ok`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from localkube import cel
from localkube.schema_errors import _TYPE_WORDS, FieldError
from localkube.schema_errors import join_path as _join

__all__ = ["format_ok", "validate"]

Schema = dict[str, Any]
_EMBEDDED = "x-kubernetes-embedded-resource"
_INT_OR_STRING = "x-kubernetes-int-or-string"


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
