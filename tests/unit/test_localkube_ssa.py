"""Server-side apply: managedFields bookkeeping, re-apply, field removal and conflicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from localkube.ssa import (
    ApplyConflict,
    field_paths,
    fields_v1,
    parse_fields_v1,
    server_side_apply,
    update_managed_fields,
)

T1 = "2024-05-01T12:00:00Z"
T2 = "2024-05-01T13:00:00Z"


def deployment(
    replicas: int = 1, labels: dict[str, str] | None = None, image: str = "nginx:1"
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "d", "namespace": "default"}
    if labels is not None:
        meta["labels"] = labels
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
    }


def manager_entry(obj: dict[str, Any], name: str) -> dict[str, Any]:
    entries = [e for e in obj["metadata"]["managedFields"] if e["manager"] == name]
    assert len(entries) == 1, obj["metadata"]["managedFields"]
    return entries[0]


def test_fields_v1_format() -> None:
    paths = field_paths(deployment(labels={"app": "x"}), "Deployment")
    tree = fields_v1(paths)
    assert tree == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:template": {
                "f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {}, "f:name": {}}}}
            },
        },
    }
    assert parse_fields_v1(tree) == paths


def test_create_records_apply_entry() -> None:
    out = server_side_apply(None, deployment(), "kubectl", False, "Deployment", now=T1)
    entry = manager_entry(out, "kubectl")
    assert entry["operation"] == "Apply"
    assert entry["apiVersion"] == "apps/v1"
    assert entry["time"] == T1
    assert entry["fieldsType"] == "FieldsV1"
    assert "f:replicas" in entry["fieldsV1"]["f:spec"]
    assert out["spec"]["replicas"] == 1


def test_reapply_same_config_is_a_noop() -> None:
    live = server_side_apply(None, deployment(), "kubectl", False, "Deployment", now=T1)
    again = server_side_apply(live, deployment(), "kubectl", False, "Deployment", now=T2)
    assert again == live


def test_reapply_changes_value_and_removes_omitted_fields() -> None:
    live = server_side_apply(
        None, deployment(labels={"a": "1", "b": "2"}), "kubectl", False, "Deployment", now=T1
    )
    out = server_side_apply(
        live, deployment(replicas=3, labels={"a": "1"}), "kubectl", False, "Deployment", now=T2
    )
    assert out["spec"]["replicas"] == 3
    assert out["metadata"]["labels"] == {"a": "1"}
    assert manager_entry(out, "kubectl")["time"] == T2


def test_removed_field_kept_when_another_manager_owns_it() -> None:
    live = server_side_apply(None, deployment(labels={"a": "1"}), "m1", False, "Deployment", now=T1)
    live = server_side_apply(live, deployment(labels={"a": "1"}), "m2", False, "Deployment", now=T1)
    out = server_side_apply(live, deployment(labels={}), "m1", False, "Deployment", now=T2)
    assert out["metadata"]["labels"] == {"a": "1"}


def test_conflict_with_other_manager() -> None:
    live = server_side_apply(None, deployment(replicas=1), "kubectl", False, "Deployment", now=T1)
    with pytest.raises(ApplyConflict) as err:
        server_side_apply(live, deployment(replicas=5), "other", False, "Deployment", now=T2)
    assert err.value.conflicts == ['conflict with "kubectl" using apps/v1: .spec.replicas']
    assert (
        str(err.value)
        == 'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'
    )
    assert err.value.causes == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl" using apps/v1',
            "field": ".spec.replicas",
        }
    ]


def test_same_value_is_shared_not_a_conflict() -> None:
    live = server_side_apply(None, deployment(replicas=1), "kubectl", False, "Deployment", now=T1)
    out = server_side_apply(live, deployment(replicas=1), "other", False, "Deployment", now=T2)
    assert {e["manager"] for e in out["metadata"]["managedFields"]} == {"kubectl", "other"}


def test_force_takes_ownership() -> None:
    live = server_side_apply(None, deployment(replicas=1, image="a"), "kubectl", False, "Deployment", now=T1)
    out = server_side_apply(live, deployment(replicas=5, image="a"), "hpa", True, "Deployment", now=T2)
    assert out["spec"]["replicas"] == 5
    assert "f:replicas" not in manager_entry(out, "kubectl")["fieldsV1"]["f:spec"]
    assert "f:replicas" in manager_entry(out, "hpa")["fieldsV1"]["f:spec"]
    # kubectl no longer owns replicas, so re-applying without force is a conflict the other way round
    with pytest.raises(ApplyConflict, match='conflict with "hpa"'):
        server_side_apply(out, deployment(replicas=1, image="a"), "kubectl", False, "Deployment", now=T2)


def test_containers_merge_by_name() -> None:
    live = server_side_apply(None, deployment(), "a", False, "Deployment", now=T1)
    extra = deployment()
    extra["spec"]["template"]["spec"]["containers"] = [{"name": "side", "image": "busybox"}]
    del extra["spec"]["replicas"]
    out = server_side_apply(live, extra, "b", False, "Deployment", now=T2)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["side", "c"]


def test_update_operation_conflicts_with_apply() -> None:
    live = server_side_apply(None, deployment(replicas=1), "kubectl", False, "Deployment", now=T1)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 4
    scaled = update_managed_fields(live, scaled, "kubectl-scale", "Deployment", now=T2)
    upd = manager_entry(scaled, "kubectl-scale")
    assert upd["operation"] == "Update"
    assert upd["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in manager_entry(scaled, "kubectl")["fieldsV1"]["f:spec"]
    with pytest.raises(ApplyConflict, match=r'"kubectl-scale" using apps/v1: \.spec\.replicas'):
        server_side_apply(scaled, deployment(replicas=1), "kubectl", False, "Deployment", now=T2)


def test_custom_resource_list_types_from_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "groups": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["groupName"],
                        "items": {
                            "type": "object",
                            "properties": {"groupName": {"type": "string"}, "n": {"type": "integer"}},
                        },
                    },
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                },
            }
        },
    }
    cr = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "r"},
        "spec": {"groups": [{"groupName": "g1", "n": 1}], "tags": ["a"]},
    }
    live = server_side_apply(None, cr, "a", False, "RayCluster", schema=schema, now=T1)
    second = copy.deepcopy(cr)
    second["spec"] = {"groups": [{"groupName": "g2", "n": 2}], "tags": ["b"]}
    out = server_side_apply(live, second, "b", False, "RayCluster", schema=schema, now=T2)
    assert [g["groupName"] for g in out["spec"]["groups"]] == ["g2", "g1"]
    assert sorted(out["spec"]["tags"]) == ["a", "b"]
    fields = manager_entry(out, "b")["fieldsV1"]["f:spec"]
    assert 'k:{"groupName":"g2"}' in fields["f:groups"]
    assert 'v:"b"' in fields["f:tags"]
