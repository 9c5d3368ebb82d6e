"""The object layer: paths from the resource table, lookups by apiVersion/kind, accessors on odd objects."""

from __future__ import annotations

import pytest

from rayside import objects as o


def test_paths_of_core_group_and_cluster_scoped_resources() -> None:
    assert o.PODS.path() == "/api/v1/pods"
    assert o.PODS.path("ns") == "/api/v1/namespaces/ns/pods"
    assert o.PODS.path("ns", "p", "status") == "/api/v1/namespaces/ns/pods/p/status"
    assert o.RAYCLUSTERS.path("a b", "c/d") == "/apis/ray.io/v1/namespaces/a%20b/rayclusters/c%2Fd"
    assert o.NODES.path("ignored", "n1") == "/api/v1/nodes/n1"
    assert o.PODS.path("ns", None, "status") == "/api/v1/namespaces/ns/pods"


def test_group_version_paths_for_discovery() -> None:
    assert o.group_version_path("", "v1") == "/api/v1"
    assert o.group_version_path("ray.io", "v1") == "/apis/ray.io/v1"


def test_resource_for_known_and_unknown_kinds() -> None:
    assert o.resource_for("scheduling.volcano.sh/v1beta1", "PodGroup") is o.VOLCANO_PODGROUPS
    assert o.resource_for("scheduling.x-k8s.io/v1alpha1", "PodGroup") is o.COSCHEDULING_PODGROUPS
    with pytest.raises(LookupError, match="'v9', kind 'Widget'"):
        o.resource_for("v9", "Widget")
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": "n", "name": "s"}}
    assert o.path_of(obj) == "/api/v1/namespaces/n/secrets/s"


def test_accessors_tolerate_missing_and_null_metadata() -> None:
    for obj in ({}, {"metadata": None}, {"metadata": {"labels": None, "ownerReferences": None}}):
        assert o.name_of(obj) == "" and o.namespace_of(obj) == "" and o.uid_of(obj) == ""
        assert o.labels_of(obj) == {} and o.annotations_of(obj) == {}
        assert o.owner_references_of(obj) == [] and o.controller_of(obj) is None
        assert o.rv_number(obj) == -1 and o.generation_of(obj) == 0 and not o.is_deleting(obj)


def test_keys_and_owner_references() -> None:
    meta = {"name": "c", "namespace": "n", "uid": "u"}
    owner = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": meta}
    assert o.key_of(owner) == "n/c" and o.split_key("n/c") == ("n", "c")
    assert o.key_of({"metadata": {"name": "node"}}) == "node" and o.split_key("node") == ("", "node")
    ref = o.owner_reference(owner)
    child = {"metadata": {"ownerReferences": [{"kind": "X", "name": "x"}, ref], "resourceVersion": "12"}}
    assert o.controller_of(child) == ref and ref["uid"] == "u"
    assert o.rv_number(child) == 12
