"""CEL evaluation for CRD ``x-kubernetes-validations`` rules, on top of the pure-Python ``celpy`` package.

Adds the Kubernetes CEL extension functions our CRDs use (string library: ``lowerAscii``, ``upperAscii``,
``trim``, ``split``, ``join``, ``indexOf``, ``lastIndexOf``, ``replace``, ``substring``; list library:
``isSorted``, ``sum``, ``min``, ``max``) next to CEL's built-ins (``has``, ``size``, ``all``, ``exists``,
``exists_one``, ``map``, ``filter``, ``startsWith``, ``endsWith``, ``contains``, ``matches``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes

__all__ = ["CelError", "CompiledRule", "compile_rule", "evaluate_message", "evaluate_rule"]

_OLD_SELF = re.compile(r"\boldSelf\b")


class CelError(ValueError):
    """A rule that does not compile or cannot be evaluated."""


def _str(value: Any) -> celtypes.StringType:
    return celtypes.StringType(str(value))


def _split(s: Any, sep: Any, limit: Any = -1) -> celtypes.ListType:
    parts = str(s).split(str(sep)) if int(limit) < 0 else str(s).split(str(sep), max(int(limit) - 1, 0))
    return celtypes.ListType([_str(p) for p in parts])


def _join(items: Any, sep: Any = "") -> celtypes.StringType:
    return _str(str(sep).join(str(i) for i in items))


def _substring(s: Any, start: Any, end: Any = None) -> celtypes.StringType:
    text = str(s)
    return _str(text[int(start) :] if end is None else text[int(start) : int(end)])


def _replace(s: Any, old: Any, new: Any, count: Any = -1) -> celtypes.StringType:
    return _str(str(s).replace(str(old), str(new), int(count)))


def _is_sorted(items: Any) -> celtypes.BoolType:
    values = list(items)
    return celtypes.BoolType(all(values[i] <= values[i + 1] for i in range(len(values) - 1)))


def _sum(items: Any) -> Any:
    values = list(items)
    total: Any = celtypes.IntType(0) if not values else values[0]
    for v in values[1:]:
        total = total + v
    return total


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lowerAscii": lambda s: _str(str(s).lower()),
    "upperAscii": lambda s: _str(str(s).upper()),
    "trim": lambda s: _str(str(s).strip()),
    "split": _split,
    "join": _join,
    "indexOf": lambda s, sub: celtypes.IntType(str(s).find(str(sub))),
    "lastIndexOf": lambda s, sub: celtypes.IntType(str(s).rfind(str(sub))),
    "replace": _replace,
    "substring": _substring,
    "isSorted": _is_sorted,
    "sum": _sum,
    "min": lambda items: min(list(items)),
    "max": lambda items: max(list(items)),
}


@dataclass(frozen=True)
class CompiledRule:
    """A compiled rule; ``transition`` is true when it refers to ``oldSelf``."""

    text: str
    program: Any
    transition: bool


_ENV = celpy.Environment()


@functools.lru_cache(maxsize=1024)
def compile_rule(text: str) -> CompiledRule:
    """Compile (and cache) a CEL expression; raises :class:`CelError` with the parser's message."""
    try:
        ast = _ENV.compile(text)
        program = _ENV.program(ast, functions=FUNCTIONS)
    except Exception as exc:  # celpy raises several parser exception types
        raise CelError(f"compilation failed: {str(exc).splitlines()[0] if str(exc) else exc!r}") from exc
    return CompiledRule(text, program, bool(_OLD_SELF.search(text)))


def _activation(value: Any, old: Any, has_old: bool) -> dict[str, Any]:
    act = {"self": celpy.json_to_cel(value)}
    if has_old:
        act["oldSelf"] = celpy.json_to_cel(old)
    return act


def _run(rule: CompiledRule, value: Any, old: Any, has_old: bool) -> Any:
    try:
        result = rule.program.evaluate(_activation(value, old, has_old))
    except Exception as exc:
        raise CelError(f"evaluation error: {exc}") from exc
    if isinstance(result, celpy.CELEvalError):
        raise CelError(f"evaluation error: {result.args[0] if result.args else result}")
    return result


def evaluate_rule(text: str, value: Any, old: Any = None, has_old: bool = False) -> bool:
    """True when the rule holds for ``self=value`` (and ``oldSelf=old`` when ``has_old``)."""
    result = _run(compile_rule(text), value, old, has_old)
    if not isinstance(result, celtypes.BoolType | bool):
        raise CelError(f"rule did not evaluate to a bool: {result!r}")
    return bool(result)


def evaluate_message(text: str, value: Any, old: Any = None, has_old: bool = False) -> str:
    """Evaluate a ``messageExpression``; it must produce a string."""
    result = _run(compile_rule(text), value, old, has_old)
    if not isinstance(result, celtypes.StringType | str):
        raise CelError("messageExpression must evaluate to a string")
    return str(result)
