"""Field errors of CRD schema validation and their Kubernetes renderings (422 message and causes).

Split out of :mod:`localkube.schema`, which re-exports the public names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["FieldError", "field_error_cause", "format_error", "format_invalid", "join_path"]


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


def join_path(path: str, key: str) -> str:
    """``path.key`` (just ``key`` at the root)."""
    return f"{path}.{key}" if path else key
