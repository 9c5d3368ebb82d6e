"""Kubernetes label and field selectors: parse the string forms and the structured LabelSelector.

Pure functions only. Every parser returns a predicate; malformed input raises :class:`SelectorError`
with a Kubernetes-style message (the server turns it into a 400 ``BadRequest``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "FIELD_LABELS",
    "SelectorError",
    "field_value",
    "label_selector_matcher",
    "label_selector_to_string",
    "parse_field_selector",
    "parse_label_selector",
]

LabelPredicate = Callable[[Mapping[str, str]], bool]
ObjectPredicate = Callable[[Mapping[str, Any]], bool]


class SelectorError(ValueError):
    """A label or field selector that cannot be parsed or is not supported."""


_NAME_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    ok = bool(name) and len(name) <= 63 and _NAME_RE.match(name) is not None
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.match(prefix)):
        ok = False
    if "/" in key and not prefix:
        ok = False
    if not ok:
        raise SelectorError(
            f'invalid label key "{key}": name part must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )


def _check_value(value: str) -> None:
    if value and (len(value) > 63 or not _NAME_RE.match(value)):
        raise SelectorError(
            f'invalid label value: "{value}": a valid label must be an empty string or consist '
            "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )


# ---------------------------------------------------------------------------------------------------------
# Label selectors (string form)
# ---------------------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\s*(==|!=|=|\(|\)|,|!|>|<|[^\s=!(),<>]+)")
_OPERATORS = {"=", "==", "!=", "in", "notin", ">", "<"}


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(text, pos)
        if match is None:  # pragma: no cover - the regex matches any non-space character
            raise SelectorError(f"unable to parse requirement: unexpected character at {pos} in {text!r}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        tok = self.peek()
        self.pos += 1
        return tok

    def fail(self, found: str | None, expected: str) -> SelectorError:
        what = "end of string" if found is None else f"'{found}'"
        return SelectorError(f"unable to parse requirement: found {what}, expected: {expected}")

    def parse(self) -> list[LabelPredicate]:
        reqs: list[LabelPredicate] = []
        while self.peek() is not None:
            reqs.append(self.requirement())
            tok = self.take()
            if tok is None:
                break
            if tok != ",":
                raise self.fail(tok, "','")
            if self.peek() is None:
                raise self.fail(None, "identifier after ','")
        return reqs

    def requirement(self) -> LabelPredicate:
        tok = self.take()
        if tok == "!":
            key = self.identifier()
            return lambda labels: key not in labels
        if tok is None or tok in _OPERATORS or tok in {"(", ")", ","}:
            raise self.fail(tok, "identifier")
        key = tok
        _check_key(key)
        op = self.peek()
        if op is None or op == ",":
            return lambda labels: key in labels
        self.pos += 1
        if op in {"=", "=="}:
            value = self.value()
            return lambda labels: labels.get(key) == value
        if op == "!=":
            value = self.value()
            return lambda labels: labels.get(key) != value
        if op in {"in", "notin"}:
            values = self.value_set()
            if op == "in":
                return lambda labels: key in labels and labels[key] in values
            return lambda labels: key not in labels or labels[key] not in values
        if op in {">", "<"}:
            return self.numeric(key, op)
        raise self.fail(op, "'=', '!=', '==', 'in', notin'")

    def numeric(self, key: str, op: str) -> LabelPredicate:
        raw = self.take()
        try:
            bound = int(raw or "")
        except ValueError:
            raise SelectorError(f"invalid value {raw!r} for operator {op!r}: must be an integer") from None

        def match(labels: Mapping[str, str]) -> bool:
            try:
                have = int(labels[key])
            except (KeyError, ValueError):
                return False
            return have > bound if op == ">" else have < bound

        return match

    def identifier(self) -> str:
        tok = self.take()
        if tok is None or tok in _OPERATORS or tok in {"(", ")", ",", "!"}:
            raise self.fail(tok, "identifier")
        _check_key(tok)
        return tok

    def value(self) -> str:
        tok = self.peek()
        if tok is None or tok == ",":
            return ""
        if tok in {"(", ")", "!", "=", "==", "!="}:
            raise self.fail(tok, "value")
        self.pos += 1
        _check_value(tok)
        return tok

    def value_set(self) -> frozenset[str]:
        tok = self.take()
        if tok != "(":
            raise self.fail(tok, "'('")
        values: set[str] = set()
        while True:
            tok = self.take()
            if tok is None:
                raise self.fail(None, "',', or ')'")
            if tok == ")":
                return frozenset(values)
            if tok == ",":
                values.add("")
                continue
            _check_value(tok)
            values.add(tok)
            nxt = self.take()
            if nxt == ")":
                return frozenset(values)
            if nxt != ",":
                raise self.fail(nxt, "',', or ')'")


def parse_label_selector(text: str) -> LabelPredicate:
    """Parse ``k=v,k!=v,k in (a,b),k notin (a),k,!k`` (comma = AND) into a predicate over labels."""
    reqs = _LabelParser(text or "").parse()
    return lambda labels: all(req(labels or {}) for req in reqs)


def label_selector_matcher(selector: Mapping[str, Any] | None) -> LabelPredicate:
    """Predicate for a structured ``metav1.LabelSelector`` (``matchLabels`` + ``matchExpressions``).

    An empty selector matches everything (as for Job/Deployment selectors).
    """
    reqs: list[LabelPredicate] = []
    for key, value in dict((selector or {}).get("matchLabels") or {}).items():
        _check_key(str(key))
        _check_value(str(value))
        reqs.append(_equals(str(key), str(value)))
    for i, expr in enumerate((selector or {}).get("matchExpressions") or []):
        reqs.append(_expression(i, expr))
    return lambda labels: all(req(labels or {}) for req in reqs)


def _equals(key: str, value: str) -> LabelPredicate:
    return lambda labels: labels.get(key) == value


def _expression(index: int, expr: Mapping[str, Any]) -> LabelPredicate:
    key = str(expr.get("key", ""))
    op = str(expr.get("operator", ""))
    values = frozenset(str(v) for v in expr.get("values") or [])
    where = f"matchExpressions[{index}]"
    _check_key(key)
    if op in {"In", "NotIn"} and not values:
        raise SelectorError(
            f"{where}.values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        )
    if op in {"Exists", "DoesNotExist"} and values:
        raise SelectorError(
            f"{where}.values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        )
    if op == "In":
        return lambda labels: key in labels and labels[key] in values
    if op == "NotIn":
        return lambda labels: key not in labels or labels[key] not in values
    if op == "Exists":
        return lambda labels: key in labels
    if op == "DoesNotExist":
        return lambda labels: key not in labels
    raise SelectorError(
        f'{where}.operator: Unsupported value: "{op}": supported values: "In", "NotIn", '
        '"Exists", "DoesNotExist"'
    )


def label_selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """Serialize a structured LabelSelector the way the API server does for ``Scale.status.selector``."""
    parts: list[str] = []
    for key, value in sorted(dict((selector or {}).get("matchLabels") or {}).items()):
        parts.append(f"{key}={value}")
    for expr in (selector or {}).get("matchExpressions") or []:
        key, op = str(expr.get("key", "")), str(expr.get("operator", ""))
        values = ",".join(sorted(str(v) for v in expr.get("values") or []))
        forms: dict[str, str] = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }
        parts.append(forms.get(op, key))
    return ",".join(parts)


# ---------------------------------------------------------------------------------------------------------
# Field selectors
# ---------------------------------------------------------------------------------------------------------

_COMMON = ("metadata.name", "metadata.namespace")
_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
_EVENT_FIELDS = (
    *(f"involvedObject.{f}" for f in _INVOLVED),
    "reason",
    "type",
    "source",
    "reportingComponent",
)

#: Supported field labels per resource (keyed by lower-case plural); every kind supports ``_COMMON``.
FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "events": _EVENT_FIELDS,
    "secrets": ("type",),
    "namespaces": ("status.phase",),
    "nodes": ("spec.unschedulable",),
    "jobs": ("status.successful",),
    "replicasets": ("status.replicas",),
    "replicationcontrollers": ("status.replicas",),
}

_KIND_TO_PLURAL = {
    "pod": "pods",
    "event": "events",
    "secret": "secrets",
    "namespace": "namespaces",
    "node": "nodes",
    "job": "jobs",
    "replicaset": "replicasets",
    "replicationcontroller": "replicationcontrollers",
}


def _plural(kind: str) -> str:
    low = kind.lower()
    return _KIND_TO_PLURAL.get(low, low)


def field_value(obj: Mapping[str, Any], label: str) -> str:
    """The string value a field label has on ``obj`` (missing → ``""``, booleans lower-case)."""
    if label == "source":
        source = obj.get("source") or {}
        return str(source.get("component", "")) if isinstance(source, Mapping) else ""
    if label == "status.successful":
        value: Any = (obj.get("status") or {}).get("succeeded", 0) or 0
        return str(value)
    if label == "spec.schedulerName" and "schedulerName" not in (obj.get("spec") or {}):
        return "default-scheduler"
    if label == "reportingComponent" and not obj.get("reportingComponent"):
        return str(obj.get("reportingController", ""))
    cur: Any = obj
    for part in label.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    if cur is None:
        return "false" if label in {"spec.hostNetwork", "spec.unschedulable"} else ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            cur.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _field_requirement(term: str) -> tuple[str, str, str]:
    for op in ("!=", "==", "="):
        idx = term.find(op)
        if idx > 0:
            return term[:idx].strip(), op, _unescape(term[idx + len(op) :].strip())
    raise SelectorError(f"invalid selector: '{term}'; can't understand '{term}'")


def parse_field_selector(text: str, kind: str) -> ObjectPredicate:
    """Parse a field selector (``=``, ``==``, ``!=``; comma = AND) for ``kind`` (Kind or plural).

    Unsupported labels raise ``SelectorError('field label not supported: <label>')``.
    """
    allowed = set(_COMMON) | set(FIELD_LABELS.get(_plural(kind), ()))
    reqs: list[tuple[str, bool, str]] = []
    for term in _split_unescaped(text or "", ","):
        if not term.strip():
            continue
        label, op, value = _field_requirement(term)
        if label not in allowed:
            raise SelectorError(f"field label not supported: {label}")
        reqs.append((label, op != "!=", value))

    def match(obj: Mapping[str, Any]) -> bool:
        for label, equal, value in reqs:
            if label.startswith("metadata."):
                have = str((obj.get("metadata") or {}).get(label[len("metadata.") :], "") or "")
            else:
                have = field_value(obj, label)
            if (have == value) != equal:
                return False
        return True

    return match
