"""Server-side apply: merge an applied configuration into the live object and maintain
``metadata.managedFields`` (FieldsV1 ``f:``/``k:``/``v:`` sets) per field manager.

Pure functions. List semantics come from the built-in merge-key table shared with strategic merge patch
(:func:`localkube.patch.list_strategy`) or, for custom resources, from the CRD schema
(``x-kubernetes-list-type`` / ``x-kubernetes-list-map-keys``) when ``schema`` is passed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from localkube import fastjson
from localkube.meta import rfc3339
from localkube.patch import list_strategy

__all__ = [
    "ApplyConflict",
    "field_paths",
    "field_values",
    "fields_v1",
    "parse_fields_v1",
    "server_side_apply",
    "update_managed_fields",
]

Path = tuple[str, ...]
Strategy = Callable[[tuple[str, ...], Path], tuple[str, list[str]]]
_MISSING = object()
_IGNORED_TOP = {"apiVersion", "kind"}
_IGNORED_META = {
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds", "managedFields", "selfLink",
}  # fmt: skip


class ApplyConflict(ValueError):
    """Fields owned by other managers would change; ``conflicts`` holds one line per field."""

    def __init__(self, conflicts: list[str], causes: list[dict[str, str]]) -> None:
        count = len(conflicts)
        noun = "conflict" if count == 1 else "conflicts"
        super().__init__(f"Apply failed with {count} {noun}: " + "; ".join(conflicts))
        self.conflicts = conflicts
        self.causes = causes


# ---------------------------------------------------------------------------------------------------------
# list semantics
# ---------------------------------------------------------------------------------------------------------


def _schema_at(schema: dict[str, Any] | None, names: tuple[str, ...]) -> dict[str, Any] | None:
    cur = schema
    for name in names:
        if cur is None:
            return None
        if name == "[]":
            cur = cur.get("items") if isinstance(cur.get("items"), dict) else None
            continue
        props = cur.get("properties") or {}
        sub = props.get(name)
        if sub is None and isinstance(cur.get("additionalProperties"), dict):
            sub = cur["additionalProperties"]
        cur = sub if isinstance(sub, dict) else None
    return cur


def _strategy(kind: str, schema: dict[str, Any] | None) -> Strategy:
    def decide(names: tuple[str, ...], _path: Path) -> tuple[str, list[str]]:
        plain = tuple(n for n in names if n != "[]")
        if schema is None:
            how, key = list_strategy(plain, kind)
            return how, [key] if key else []
        node = _schema_at(schema, names) or {}
        how = str(node.get("x-kubernetes-list-type") or "atomic")
        if plain == ("metadata", "finalizers"):
            how = "set"
        return how, list(node.get("x-kubernetes-list-map-keys") or [])

    return decide


def _key_of(item: Any, keys: list[str]) -> str | None:
    if not isinstance(item, dict) or not keys or any(k not in item for k in keys):
        return None
    if len(keys) == 1:
        value = item[keys[0]]
        if type(value) is str and _plain_json(value) and _plain_json(keys[0]):
            return f'k:{{"{keys[0]}":"{value}"}}'
        if type(value) is int:
            return f'k:{{"{keys[0]}":{value}}}' if _plain_json(keys[0]) else _json_key(keys, item)
    return _json_key(keys, item)


def _json_key(keys: list[str], item: dict[str, Any]) -> str:
    return "k:" + json.dumps({k: item[k] for k in keys}, sort_keys=True, separators=(",", ":"))


def _plain_json(text: str) -> bool:
    """True when json.dumps(text) is just the text in quotes (printable ASCII without quote or backslash)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _vkey(item: Any) -> str:
    return "v:" + json.dumps(item, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------------------
# field sets
# ---------------------------------------------------------------------------------------------------------


def field_paths(obj: dict[str, Any], kind: str, schema: dict[str, Any] | None = None) -> set[Path]:
    """The FieldsV1 member paths of ``obj`` (leaves and list elements), ignoring server-owned metadata."""
    return set(field_values(obj, kind, schema))


def field_values(obj: dict[str, Any], kind: str, schema: dict[str, Any] | None = None) -> dict[Path, Any]:
    """Like :func:`field_paths`, mapping each member path to its value (list elements to the element)."""
    out: dict[Path, Any] = {}
    decide = _strategy(kind, schema)
    for key, value in obj.items():
        _top_values(key, value, decide, out)
    return out


def _top_values(key: str, value: Any, decide: Strategy, out: dict[Path, Any]) -> None:
    """Add the member paths of one top-level field of an object to ``out``."""
    if key in _IGNORED_TOP:
        return
    if key == "metadata" and isinstance(value, dict):
        _walk(_tracked_meta(value), ("f:metadata",), decide, out)
    else:
        _walk_value(value, (f"f:{key}",), decide, out)


def _tracked_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in _IGNORED_META}


def _changed_paths(
    old: dict[str, Any], new: dict[str, Any], new_vals: dict[Path, Any], decide: Strategy
) -> set[Path]:
    """Member paths of ``new`` whose value differs from (or is absent in) ``old``. Only top-level fields
    that differ are walked in ``old`` (a status write leaves spec and metadata equal)."""
    changed: set[Path] = set()
    for key in new.keys() | old.keys():
        if key in _IGNORED_TOP:
            continue
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if key == "metadata" and isinstance(a, dict) and isinstance(b, dict):
            if _tracked_meta(a) == _tracked_meta(b):
                continue
        elif a == b:
            continue
        old_vals: dict[Path, Any] = {}
        if a is not _MISSING:
            _top_values(key, a, decide, old_vals)
        top = f"f:{key}"
        changed.update(
            p for p, v in new_vals.items() if p[0] == top and (p not in old_vals or old_vals[p] != v)
        )
    return changed


def _walk(value: dict[str, Any], path: Path, decide: Strategy, out: dict[Path, Any]) -> None:
    for key, sub in value.items():
        sub_path = (*path, f"f:{key}")
        if isinstance(sub, dict) and sub:
            _walk(sub, sub_path, decide, out)
        elif isinstance(sub, list) and sub:
            _walk_list(sub, sub_path, decide, out)
        else:
            out[sub_path] = sub  # a leaf (the common case: no call)


def _walk_value(value: Any, path: Path, decide: Strategy, out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and value:
        _walk(value, path, decide, out)
    elif isinstance(value, list) and value:
        _walk_list(value, path, decide, out)
    else:
        out[path] = value


def _names(path: Path) -> tuple[str, ...]:
    """The field names along a member path (list elements as ``[]``), as the list strategy wants them."""
    return tuple(part[2:] if part.startswith("f:") else "[]" for part in path)


def _walk_list(value: list[Any], path: Path, decide: Strategy, out: dict[Path, Any]) -> None:
    how, keys = decide(_names(path), path)
    if how == "set":
        out.update(((*path, _vkey(item)), item) for item in value)
        return
    ids = [_key_of(item, keys) for item in value] if how == "map" else []
    if ids and all(ids):
        for item, ident in zip(value, ids, strict=True):
            elem = (*path, str(ident))
            out[elem] = item
            _walk(item, elem, decide, out)
        return
    out[path] = value


def fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """Render member paths as a FieldsV1 tree (``.`` marks a member that also has children)."""
    tree: dict[str, Any] = {}
    member_nodes: list[dict[str, Any]] = []
    for path in sorted(set(paths)):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        member_nodes.append(node)
    for node in member_nodes:  # "." goes after the children, which sorting inserted already
        if node and "." not in node:
            node["."] = {}
    return tree


def parse_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    """Inverse of :func:`fields_v1`."""
    out: set[Path] = set()
    for key, sub in (tree or {}).items():
        if key == ".":
            out.add(prefix)
            continue
        path = (*prefix, key)
        if not sub:
            out.add(path)
        else:
            out.update(parse_fields_v1(sub, path))
    return out


# ---------------------------------------------------------------------------------------------------------
# navigation
# ---------------------------------------------------------------------------------------------------------


def _find_elem(items: list[Any], part: str) -> int | None:
    if part.startswith("k:"):
        want = json.loads(part[2:])
        for i, item in enumerate(items):
            if isinstance(item, dict) and all(item.get(k) == v for k, v in want.items()):
                return i
    elif part.startswith("v:"):
        want = json.loads(part[2:])
        for i, item in enumerate(items):
            if item == want:
                return i
    return None


def _get(obj: Any, path: Path) -> Any:
    cur = obj
    for part in path:
        if part.startswith("f:") and isinstance(cur, dict):
            cur = cur.get(part[2:], _MISSING)
        elif isinstance(cur, list):
            idx = _find_elem(cur, part)
            cur = _MISSING if idx is None else cur[idx]
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def _delete(obj: Any, path: Path) -> None:
    parent = _get(obj, path[:-1]) if len(path) > 1 else obj
    last = path[-1]
    if isinstance(parent, dict) and last.startswith("f:"):
        parent.pop(last[2:], None)
    elif isinstance(parent, list):
        idx = _find_elem(parent, last)
        if idx is not None:
            del parent[idx]


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        if part.startswith("f:"):
            out += "." + part[2:]
        elif part.startswith("k:"):
            want = json.loads(part[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in want.items()) + "]"
        else:
            out += f"[={part[2:]}]"
    return out


# ---------------------------------------------------------------------------------------------------------
# merge
# ---------------------------------------------------------------------------------------------------------


def _merge(live: Any, applied: Any, names: tuple[str, ...], decide: Strategy) -> Any:
    if isinstance(applied, dict) and isinstance(live, dict):
        out = dict(live)
        for key, value in applied.items():
            out[key] = _merge(live.get(key, _MISSING), value, (*names, key), decide)
        return out
    if isinstance(applied, list) and isinstance(live, list):
        how, keys = decide(names, ())
        if how == "set":
            return list(live) + [v for v in applied if v not in live]
        if how == "map" and all(_key_of(i, keys) for i in applied) and all(_key_of(i, keys) for i in live):
            by_key = {_key_of(i, keys): i for i in live}
            merged = [
                _merge(by_key.get(_key_of(i, keys), _MISSING), i, (*names, "[]"), decide) for i in applied
            ]
            applied_keys = {_key_of(i, keys) for i in applied}
            return merged + [i for i in live if _key_of(i, keys) not in applied_keys]
    return _copy(applied)


def _managers(live: dict[str, Any] | None) -> list[dict[str, Any]]:
    # entries are never mutated (changed ones are rebuilt), so a shallow copy of the list is enough
    return list(((live or {}).get("metadata") or {}).get("managedFields") or [])


def _copy(value: Any) -> Any:
    """Deep copy of JSON data (a JSON round trip beats copy.deepcopy several times over)."""
    if isinstance(value, dict | list):
        return fastjson.clone(value)
    return value


def _now() -> str:
    return rfc3339(time.time())


def _entry(manager: str, operation: str, api_version: str, paths: set[Path], now: str,
           subresource: str | None) -> dict[str, Any]:  # fmt: skip
    entry: dict[str, Any] = {
        "manager": manager, "operation": operation, "apiVersion": api_version, "time": now,
        "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths),
    }  # fmt: skip
    if subresource:
        entry["subresource"] = subresource
    return entry


def _overlaps(a: Path, b: Path) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _conflicts(live: dict[str, Any], applied: dict[str, Any], new_set: set[Path],
               others: list[tuple[dict[str, Any], set[Path]]]) -> dict[int, set[Path]]:  # fmt: skip
    found: dict[int, set[Path]] = {}
    leaves = [p for p in new_set if not p[-1].startswith(("k:", "v:"))]
    for idx, (_, owned) in enumerate(others):
        for path in leaves:
            hit = {q for q in owned if path[: len(q)] == q and not q[-1].startswith(("k:", "v:"))}
            if hit and _get(live, path) != _get(applied, path):
                found.setdefault(idx, set()).update(hit)
    return found


def _raise_conflicts(found: dict[int, set[Path]], others: list[tuple[dict[str, Any], set[Path]]]) -> None:
    lines: list[str] = []
    causes: list[dict[str, str]] = []
    for idx, paths in sorted(found.items()):
        entry = others[idx][0]
        who = f'conflict with "{entry.get("manager", "")}" using {entry.get("apiVersion", "")}'
        for path in sorted(paths):
            lines.append(f"{who}: {_dotted(path)}")
            causes.append({"reason": "FieldManagerConflict", "message": who, "field": _dotted(path)})
    raise ApplyConflict(lines, causes)


def _prune_removed(result: dict[str, Any], removed: set[Path], others_union: set[Path]) -> None:
    for path in sorted(removed, key=len, reverse=True):
        if any(_overlaps(path, q) and len(q) >= len(path) for q in others_union):
            continue
        _delete(result, path)
        for depth in range(len(path) - 1, 1, -1):
            parent = path[:depth]
            value = _get(result, parent)
            if value in ({}, []) and parent not in others_union:
                _delete(result, parent)
            else:
                break


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    force: bool,
    kind: str,
    *,
    schema: dict[str, Any] | None = None,
    now: str | None = None,
    subresource: str | None = None,
) -> dict[str, Any]:
    """Apply ``applied`` for ``manager``; returns the new object with updated ``managedFields``.

    Raises :class:`ApplyConflict` (HTTP 409) when another manager owns a field whose value would change and
    ``force`` is false; with ``force`` ownership moves to ``manager``. Fields this manager applied before and
    now omits are removed unless another manager also owns them. Re-applying the same configuration returns
    the live object unchanged (including managedFields timestamps), so the server can treat it as a no-op.
    """
    decide = _strategy(kind, schema)
    api_version = str(applied.get("apiVersion", (live or {}).get("apiVersion", "")))
    new_set = field_paths(applied, kind, schema)
    entries = _managers(live)
    mine = [e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"
            and e.get("subresource") == subresource]  # fmt: skip
    others = [(e, parse_fields_v1(e.get("fieldsV1") or {})) for e in entries if e not in mine]
    prev = set().union(*(parse_fields_v1(e.get("fieldsV1") or {}) for e in mine)) if mine else set()
    base = _copy(live) if live is not None else {}
    found = _conflicts(base, applied, new_set, others) if live is not None else {}
    if found and not force:
        _raise_conflicts(found, others)
    for idx, paths in found.items():
        entry, owned = others[idx]
        others[idx] = (entry, {q for q in owned if not any(_overlaps(q, p) for p in paths)})
    body = {k: v for k, v in applied.items() if k != "metadata"}
    body["metadata"] = {k: v for k, v in (applied.get("metadata") or {}).items() if k not in _IGNORED_META}
    result = _merge(base, body, (), decide)
    others_union: set[Path] = set().union(*(o for _e, o in others)) if others else set()
    _prune_removed(result, prev - new_set, others_union)
    if live is not None and prev == new_set and not found and _strip_mf(result) == _strip_mf(live):
        return dict(_copy(live))
    stamp = now or _now()
    kept = [
        {**entry, "fieldsV1": fields_v1(owned)} if idx in found else entry
        for idx, (entry, owned) in enumerate(others)
        if owned
    ]
    kept.append(_entry(manager, "Apply", api_version, new_set, stamp, subresource))
    result.setdefault("metadata", {})["managedFields"] = kept
    return dict(result)


def _strip_mf(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return out


def update_managed_fields(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    kind: str,
    *,
    schema: dict[str, Any] | None = None,
    now: str | None = None,
    subresource: str | None = None,
) -> dict[str, Any]:
    """Record a non-apply write (create/update/patch) by ``manager`` (operation ``Update``) in ``new``.

    Fields whose values changed (or appeared) move to ``manager``; fields that disappeared leave every set.
    Returns a shallow copy of ``new`` (a new top-level dict and ``metadata``) with ``managedFields`` set.
    """
    api_version = str(new.get("apiVersion", ""))
    new_vals = field_values(new, kind, schema)
    decide = _strategy(kind, schema)
    changed = set(new_vals) if old is None else _changed_paths(old, new, new_vals, decide)
    out: list[dict[str, Any]] = []
    mine: set[Path] = set()
    for e in ((old or {}).get("metadata") or {}).get("managedFields") or []:
        parsed = parse_fields_v1(e.get("fieldsV1") or {})
        owned = {p for p in parsed if p in new_vals}
        if (
            e.get("manager") == manager
            and e.get("operation") == "Update"
            and e.get("subresource") == subresource
        ):
            mine |= owned
            continue
        owned -= changed
        if owned == parsed:
            out.append(e)
        elif owned:
            out.append({**e, "fieldsV1": fields_v1(owned)})
    mine |= changed
    if mine:
        out.append(_entry(manager, "Update", api_version, mine, now or _now(), subresource))
    return {**new, "metadata": {**(new.get("metadata") or {}), "managedFields": out}}
