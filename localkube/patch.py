"""The three Kubernetes patch formats: JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386) and
strategic merge patch (built-in kinds only), as pure functions over JSON-like dicts.

Inputs are never mutated. Errors raise :class:`PatchError`; ``error.code`` is the HTTP status the server
should use (400 for a malformed patch, 422 for a well-formed patch that cannot be applied).
"""

from __future__ import annotations

import json
from typing import Any

from localkube.fastjson import clone as _copy  # deep copy of JSON data

__all__ = [
    "PatchError",
    "json_patch",
    "list_strategy",
    "merge_patch",
    "strategic_merge_patch",
]


class PatchError(ValueError):
    """A patch that is malformed (``code`` 400) or cannot be applied to the document (``code`` 422)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------------------
# RFC 6902 JSON Patch
# ---------------------------------------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"invalid JSON pointer: {path!r}", 400)
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer must be empty or start with a "/": {path!r}', 400)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r} in {path}")
    idx = int(token)
    limit = len(container) + (1 if allow_end else 0)
    if idx >= limit:
        raise PatchError(f"array index out of bounds: {idx} in {path}")
    return idx


def _parent(doc: Any, tokens: list[str], path: str, op: str) -> Any:
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict):
            if tok not in cur:
                raise PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, path, False)]
        else:
            raise PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")
    return cur


def _get(doc: Any, path: str, op: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"{op} operation does not apply: doc is missing key: {path}: missing value")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, False)]
    raise PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")


def _add(doc: Any, path: str, value: Any, op: str = "add") -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, True), value)
    else:
        raise PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError(f"{op} operation does not apply: cannot remove the whole document")
    parent = _parent(doc, tokens, path, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, path, False)]
    else:
        raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    return doc


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    path = op.get("path")
    if not isinstance(path, str):
        raise PatchError(f"operation {kind!r} is missing the 'path' field", 400)
    if kind in {"add", "replace", "test"} and "value" not in op:
        raise PatchError(f"operation {kind!r} at {path} is missing the 'value' field", 400)
    if kind == "add":
        return _add(doc, path, _copy(op["value"]))
    if kind == "remove":
        return _remove(doc, path)
    if kind == "replace":
        _get(doc, path, "replace")
        if path == "":
            return _copy(op["value"])
        return _add(_remove(doc, path, "replace"), path, _copy(op["value"]), "replace")
    if kind == "test":
        if _get(doc, path, "test") != op["value"] or not _same_types(_get(doc, path, "test"), op["value"]):
            raise PatchError(f"testing value {path} failed: test failed")
        return doc
    if kind in {"move", "copy"}:
        src = op.get("from")
        if not isinstance(src, str):
            raise PatchError(f"operation {kind!r} at {path} is missing the 'from' field", 400)
        if kind == "move" and (path + "/").startswith(src + "/") and path != src:
            raise PatchError(f"move operation does not apply: cannot move {src} into its own child {path}")
        value = _copy(_get(doc, src, kind))
        if kind == "move":
            doc = _remove(doc, src, "move")
        return _add(doc, path, value, kind)
    raise PatchError(f"Unexpected kind: {kind}", 400)


def _same_types(a: Any, b: Any) -> bool:
    return isinstance(a, bool) == isinstance(b, bool)


def json_patch(doc: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    """Apply an RFC 6902 operation list (add, remove, replace, move, copy, test) atomically."""
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400)
    result: Any = _copy(doc)
    for op in ops:
        if not isinstance(op, dict):
            raise PatchError(f"invalid JSON patch operation: {json.dumps(op)}", 400)
        result = _apply_op(result, op)
    if not isinstance(result, dict):
        raise PatchError("the patch replaced the object with a non-object value")
    return result


# ---------------------------------------------------------------------------------------------------------
# RFC 7386 JSON Merge Patch
# ---------------------------------------------------------------------------------------------------------


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return _copy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def merge_patch(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386: objects merge recursively, ``null`` deletes, everything else (arrays too) replaces.

    A non-object patch is rejected (Kubernetes refuses to replace an object with an array).
    """
    if not isinstance(patch, dict):
        raise PatchError("json: cannot unmarshal array into Go value of type map[string]interface {}", 400)
    return dict(_merge(_copy(doc), patch))


# ---------------------------------------------------------------------------------------------------------
# Strategic merge patch
# ---------------------------------------------------------------------------------------------------------

# List field name -> merge key, for built-in kinds (the patchMergeKey tags of the core API types).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "podIPs": "ip",
    "hostIPs": "ip",
    "addresses": "type",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "secrets": "name",
    "topologySpreadConstraints": "topologyKey",
}
_CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}
_SET_LISTS = {("metadata", "finalizers")}


def list_strategy(path: tuple[str, ...], kind: str) -> tuple[str, str | None]:
    """How a list at ``path`` (field names from the root, no indices) of a built-in ``kind`` merges.

    Returns ``("map", key)`` for lists merged by a key, ``("set", None)`` for primitive lists merged as
    sets, ``("atomic", None)`` for lists replaced wholesale. Shared with server-side apply.
    """
    if not path:
        return "atomic", None
    name = path[-1]
    if path[-2:] in _SET_LISTS:
        return "set", None
    if name == "ports":
        if len(path) >= 2 and path[-2] in _CONTAINER_LISTS:
            return "map", "containerPort"
        if kind.lower() in {"service", "services"} and path == ("spec", "ports"):
            return "map", "port"
        return "atomic", None
    if name == "secrets" and kind.lower() not in {"serviceaccount", "serviceaccounts"}:
        return "atomic", None
    key = _MERGE_KEYS.get(name)
    return ("map", key) if key else ("atomic", None)


_DIRECTIVE = "$patch"
_RETAIN = "$retainKeys"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_ORDER = "$setElementOrder/"


class _Smp:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def merge_map(self, original: Any, patch: dict[str, Any], path: tuple[str, ...]) -> Any:
        directive = patch.get(_DIRECTIVE)
        if directive == "replace":
            return self.merge_map({}, {k: v for k, v in patch.items() if k != _DIRECTIVE}, path)
        if directive == "delete":
            return None
        if directive not in (None, "merge"):
            raise PatchError(f"Unknown patch type: {directive} in map: {json.dumps(patch)}", 400)
        result: dict[str, Any] = dict(original) if isinstance(original, dict) else {}
        orders: dict[str, list[Any]] = {}
        for key, value in patch.items():
            if key in {_DIRECTIVE, _RETAIN}:
                continue
            if key.startswith(_ORDER):
                orders[key[len(_ORDER) :]] = list(value or [])
            elif key.startswith(_DELETE_PRIMITIVE):
                field = key[len(_DELETE_PRIMITIVE) :]
                drop = list(value or [])
                if isinstance(result.get(field), list):
                    result[field] = [v for v in result[field] if v not in drop]
            elif value is None:
                result.pop(key, None)
            else:
                merged = self.merge_value(result.get(key), value, (*path, key))
                if merged is None:
                    result.pop(key, None)
                else:
                    result[key] = merged
        for field, order in orders.items():
            if isinstance(result.get(field), list):
                result[field] = self.reorder(result[field], order, (*path, field))
        if _RETAIN in patch:
            keep = set(patch[_RETAIN] or [])
            result = {k: v for k, v in result.items() if k in keep}
        return result

    def merge_value(self, original: Any, value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            return self.merge_map(original, value, path)
        if isinstance(value, list):
            return self.merge_list(original if isinstance(original, list) else [], value, path)
        return _copy(value)

    def merge_list(self, original: list[Any], patch: list[Any], path: tuple[str, ...]) -> list[Any]:
        strategy, key = list_strategy(path, self.kind)
        if any(isinstance(p, dict) and p.get(_DIRECTIVE) == "replace" and len(p) == 1 for p in patch):
            original = []
            patch = [p for p in patch if not (isinstance(p, dict) and p.get(_DIRECTIVE) == "replace")]
            if strategy != "map":
                return [self.merge_value(None, p, path) for p in patch]
        if strategy == "set":
            result = list(original)
            result.extend(v for v in patch if v not in result)
            return result
        if strategy == "atomic" or key is None:
            return [self.clean(p, path) for p in patch]
        return self.merge_keyed(original, patch, key, path)

    def merge_keyed(
        self, original: list[Any], patch: list[Any], key: str, path: tuple[str, ...]
    ) -> list[Any]:
        result = list(original)
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                raise PatchError(f"map: {json.dumps(item)} does not contain declared merge key: {key}", 400)
            pos = next(
                (i for i, o in enumerate(result) if isinstance(o, dict) and o.get(key) == item[key]), None
            )
            if item.get(_DIRECTIVE) == "delete":
                result = [o for o in result if not (isinstance(o, dict) and o.get(key) == item[key])]
                continue
            merged = self.merge_map(result[pos] if pos is not None else {}, item, path)
            if pos is None:
                result.append(merged)
            else:
                result[pos] = merged
        return result

    def clean(self, value: Any, path: tuple[str, ...]) -> Any:
        return self.merge_map({}, value, path) if isinstance(value, dict) else _copy(value)

    def reorder(self, items: list[Any], order: list[Any], path: tuple[str, ...]) -> list[Any]:
        strategy, key = list_strategy(path, self.kind)

        def ident(item: Any) -> Any:
            if strategy == "map" and key and isinstance(item, dict):
                return json.dumps(item.get(key), sort_keys=True)
            return json.dumps(item, sort_keys=True)

        wanted = [ident(o) for o in order]
        rank = {w: i for i, w in enumerate(wanted)}
        ranked = sorted((i for i in items if ident(i) in rank), key=lambda i: rank[ident(i)])
        rest = [i for i in items if ident(i) not in rank]
        return ranked + rest


def strategic_merge_patch(doc: dict[str, Any], patch: dict[str, Any], kind: str) -> dict[str, Any]:
    """Kubernetes strategic merge patch for a built-in ``kind`` (e.g. ``"Pod"``).

    Lists with a merge key merge element-wise, ``metadata.finalizers`` merges as a set, other lists replace,
    maps merge, ``null`` deletes; directives ``$patch`` (replace/delete/merge), ``$retainKeys``,
    ``$deleteFromPrimitiveList/<f>`` and ``$setElementOrder/<f>`` are honoured. Elements of the live list
    that are absent from ``$setElementOrder`` are placed after the ordered ones (simplification).
    """
    if not isinstance(patch, dict):
        raise PatchError("json: cannot unmarshal array into Go value of type map[string]interface {}", 400)
    result = _Smp(kind).merge_map(_copy(doc), patch, ())
    if not isinstance(result, dict):
        raise PatchError("the patch deleted the whole object")
    return result
