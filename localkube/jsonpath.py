"""A small Kubernetes-flavoured JSONPath subset, enough for CRD ``additionalPrinterColumns``.

Supported: ``.a.b``, ``['a.b']``, ``[0]``, ``[-1]``, ``[*]``, ``.*``, ``..a`` (recursive descent) and filters
``[?(@.type=="Ready")]`` with ``== != < <= > >=`` or a bare ``[?(@.a)]`` existence test; the expression may
be wrapped in ``{…}`` and may start with ``$``. :func:`find` returns every match, in document order.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["JsonPathError", "compile_path", "find"]


class JsonPathError(ValueError):
    """An expression outside the supported subset."""


@dataclass(frozen=True)
class _Step:
    op: str  # field | index | wild | recurse | filter
    arg: Any = None


_FILTER_RE = re.compile(r"^\?\(\s*@((?:\.[\w-]+|\['[^']*'\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)$")


def _field_steps(text: str) -> list[_Step]:
    return [
        _Step("field", dotted or quoted) for dotted, quoted in re.findall(r"\.([\w-]+)|\['([^']*)'\]", text)
    ]


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise JsonPathError(f"unsupported filter literal {text!r}") from None


def _bracket(inner: str) -> _Step:
    inner = inner.strip()
    if inner == "*":
        return _Step("wild")
    if re.fullmatch(r"-?\d+", inner):
        return _Step("index", int(inner))
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return _Step("field", inner[1:-1])
    match = _FILTER_RE.match(inner)
    if match:
        path = _field_steps(match.group(1))
        literal = _literal(match.group(3)) if match.group(2) else None
        return _Step("filter", (tuple(path), match.group(2), literal))
    raise JsonPathError(f"unsupported JSONPath bracket expression [{inner}]")


def _close(text: str, start: int) -> int:
    depth, quote = 0, ""
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i
    raise JsonPathError(f"unterminated '[' in {text!r}")


@functools.lru_cache(maxsize=512)
def compile_path(expr: str) -> tuple[_Step, ...]:
    """Parse ``expr`` into steps (raises :class:`JsonPathError`)."""
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[_Step] = []
    pos = 0
    while pos < len(text):
        if text.startswith("..", pos):
            steps.append(_Step("recurse"))
            pos += 1
            continue
        ch = text[pos]
        if ch == ".":
            match = re.match(r"\.(\*|[\w-]+)", text[pos:])
            if not match:
                raise JsonPathError(f"unsupported JSONPath at {text[pos:]!r}")
            steps.append(_Step("wild") if match.group(1) == "*" else _Step("field", match.group(1)))
            pos += match.end()
        elif ch == "[":
            end = _close(text, pos)
            steps.append(_bracket(text[pos + 1 : end]))
            pos = end + 1
        else:
            raise JsonPathError(f"unsupported JSONPath at {text[pos:]!r} in {expr!r}")
    return tuple(steps)


_MISSING = object()


def _descend(value: Any, path: tuple[_Step, ...]) -> Any:
    for step in path:
        if not isinstance(value, dict) or step.arg not in value:
            return _MISSING
        value = value[step.arg]
    return value


def _compare(have: Any, op: str | None, want: Any) -> bool:
    if op is None:
        return have is not _MISSING
    if have is _MISSING:
        return False
    if op == "==":
        return bool(have == want)
    if op == "!=":
        return bool(have != want)
    try:
        return bool({"<": have < want, "<=": have <= want, ">": have > want, ">=": have >= want}[op])
    except TypeError:
        return False


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return []


def _all_nodes(value: Any) -> list[Any]:
    out = [value]
    for child in _children(value):
        out.extend(_all_nodes(child))
    return out


def _selects(step: _Step, value: Any) -> bool:
    if step.op == "field":
        return isinstance(value, dict) and step.arg in value
    return step.op == "index" and isinstance(value, list) and -len(value) <= step.arg < len(value)


def _apply(step: _Step, current: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in current:
        if _selects(step, value):
            out.append(value[step.arg])
        elif step.op == "wild":
            out.extend(_children(value))
        elif step.op == "recurse":
            out.extend(_all_nodes(value))
        elif step.op == "filter" and isinstance(value, list):
            path, op, literal = step.arg
            out.extend(item for item in value if _compare(_descend(item, path), op, literal))
    return out


def find(obj: Any, expr: str) -> list[Any]:
    """Every value of ``obj`` matched by ``expr`` (empty when nothing matches)."""
    current = [obj]
    for step in compile_path(expr):
        current = _apply(step, current)
    return current
