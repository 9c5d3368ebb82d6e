"""update_managed_fields walks only the top-level fields that differ; the result must equal that of comparing
every field of the old and the new object (the reference below), for random writes to a pod."""

from __future__ import annotations

import copy
import random
from typing import Any

from localkube import ssa

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "labels": {"a": "1"}, "annotations": {"x/y": "z"}},
    "spec": {
        "containers": [
            {
                "name": "c",
                "image": "i",
                "env": [{"name": "E_1", "value": "v"}, {"name": "E-2", "value": "w"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
            }
        ],
        "volumes": [{"name": "v", "emptyDir": {}}],
    },
    "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]},
}


def reference(
    old: dict[str, Any] | None, new: dict[str, Any], manager: str, sub: str | None
) -> dict[str, Any]:
    """The plain definition: a path changed if it is new or its value differs (every field compared)."""
    new_vals = ssa.field_values(new, "Pod")
    old_vals = ssa.field_values(old, "Pod") if old is not None else {}
    changed = {p for p, v in new_vals.items() if old is None or p not in old_vals or old_vals[p] != v}
    out: list[dict[str, Any]] = []
    mine: set[tuple[str, ...]] = set()
    for e in ((old or {}).get("metadata") or {}).get("managedFields") or []:
        parsed = ssa.parse_fields_v1(e.get("fieldsV1") or {})
        owned = {p for p in parsed if p in new_vals}
        if e.get("manager") == manager and e.get("operation") == "Update" and e.get("subresource") == sub:
            mine |= owned
            continue
        owned -= changed
        if owned == parsed:
            out.append(e)
        elif owned:
            out.append({**e, "fieldsV1": ssa.fields_v1(owned)})
    mine |= changed
    if mine:
        out.append(ssa._entry(manager, "Update", "v1", mine, "T", sub))
    return {**new, "metadata": {**(new.get("metadata") or {}), "managedFields": out}}


def mutate(obj: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    o = copy.deepcopy(obj)
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        if r < 0.2:
            o["metadata"].setdefault("labels", {})[rng.choice("abc")] = rng.choice(["x", 'q"', "é"])
        elif r < 0.3:
            o["metadata"]["resourceVersion"] = str(rng.randint(1, 99))  # ignored by managedFields
        elif r < 0.5:
            o.setdefault("status", {})["phase"] = rng.choice(["Running", "Failed"])
        elif r < 0.6:
            o.setdefault("status", {})["podIP"] = rng.choice(["10.0.0.1", "10.0.0.2"])
        elif r < 0.7:
            o["spec"]["containers"][0]["env"].append({"name": f"N{rng.randint(0, 3)}", "value": "v"})
        elif r < 0.8:
            o["spec"]["containers"][0]["ports"] = [{"containerPort": rng.randint(1, 3)}]
        elif r < 0.9:
            o["metadata"]["finalizers"] = rng.sample(["f/a", "f/b", "f/c"], 2)
        else:
            o.pop("status", None)
    return o


def test_update_managed_fields_equals_the_full_comparison() -> None:
    rng = random.Random(7)
    current: dict[str, Any] | None = None
    for i in range(300):
        new = mutate(current or POD, rng)
        manager, sub = rng.choice(["m1", "m2", "kubelet"]), rng.choice([None, "status"])
        got = ssa.update_managed_fields(current, new, manager, "Pod", now="T", subresource=sub)
        assert got == reference(current, new, manager, sub), f"write {i}"
        current = got
