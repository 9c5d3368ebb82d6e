"""JSON Patch (RFC 6902 examples), JSON Merge Patch (RFC 7386 examples) and strategic merge patch."""

from __future__ import annotations

from typing import Any

import pytest

from localkube.patch import PatchError, json_patch, list_strategy, merge_patch, strategic_merge_patch

# --- RFC 6902 appendix A ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "ops", "expected"),
    [
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"foo": "bar", "baz": "qux"}),
        (
            {"foo": ["bar", "baz"]},
            [{"op": "add", "path": "/foo/1", "value": "qux"}],
            {"foo": ["bar", "qux", "baz"]},
        ),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
        (
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
        ),
        (
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        ),
        (
            {"foo": ["all", "grass", "cows", "eat"]},
            [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
            {"foo": ["all", "cows", "eat", "grass"]},
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
            {"foo": "bar", "child": {"grandchild": {}}},
        ),
        (
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
        ),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
        ({"a/b": 1}, [{"op": "copy", "from": "/a~1b", "path": "/c"}], {"a/b": 1, "c": 1}),
        (
            {"baz": "qux", "foo": ["a", 2, "c"]},
            [{"op": "test", "path": "/foo", "value": ["a", 2, "c"]}],
            {"baz": "qux", "foo": ["a", 2, "c"]},
        ),
    ],
)
def test_rfc6902_examples(doc: dict[str, Any], ops: list[Any], expected: dict[str, Any]) -> None:
    before = repr(doc)
    assert json_patch(doc, ops) == expected
    assert repr(doc) == before  # input untouched


@pytest.mark.parametrize(
    ("doc", "ops", "message"),
    [
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], "testing value /baz failed"),
        ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], "doc is missing path"),
        (
            {"foo": "bar"},
            [{"op": "replace", "path": "/nope", "value": 1}],
            "replace operation does not apply",
        ),
        ({"foo": "bar"}, [{"op": "remove", "path": "/nope"}], "remove operation does not apply"),
        ({"foo": [1]}, [{"op": "add", "path": "/foo/5", "value": 1}], "out of bounds"),
        ({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], "own child"),
        ({"a": 1}, [{"op": "test", "path": "/a", "value": True}], "test failed"),
    ],
)
def test_json_patch_failures_are_422(doc: dict[str, Any], ops: list[Any], message: str) -> None:
    with pytest.raises(PatchError, match=message) as err:
        json_patch(doc, ops)
    assert err.value.code == 422


@pytest.mark.parametrize(
    "ops",
    [
        {"op": "add"},
        [{"op": "bogus", "path": "/a"}],
        [{"op": "add", "path": "/a"}],
        [{"op": "add", "path": "a", "value": 1}],
        ["x"],
    ],
)
def test_malformed_json_patch_is_400(ops: Any) -> None:
    with pytest.raises(PatchError) as err:
        json_patch({"a": 1}, ops)
    assert err.value.code == 400


def test_json_patch_is_atomic() -> None:
    doc = {"a": 1}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 9}])
    assert doc == {"a": 1}


# --- RFC 7386 appendix A ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_rfc7386_examples(target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_rejects_array_body() -> None:
    with pytest.raises(PatchError) as err:
        merge_patch({"a": 1}, [{"op": "add"}])  # type: ignore[arg-type]
    assert err.value.code == 400


# --- strategic merge patch -----------------------------------------------------------------------------

POD: dict[str, Any] = {
    "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
    "spec": {
        "containers": [
            {
                "name": "c1",
                "image": "i:1",
                "env": [{"name": "A", "value": "1"}],
                "ports": [{"containerPort": 80}],
            },
            {"name": "c2", "image": "j:1"},
        ],
        "volumes": [{"name": "v1", "emptyDir": {}}],
        "tolerations": [{"key": "k1"}],
    },
}


def test_smp_merges_containers_by_name() -> None:
    out = strategic_merge_patch(
        POD, {"spec": {"containers": [{"name": "c2", "image": "j:2"}, {"name": "c3", "image": "k"}]}}, "Pod"
    )
    assert [c["name"] for c in out["spec"]["containers"]] == ["c1", "c2", "c3"]
    assert out["spec"]["containers"][1]["image"] == "j:2"
    assert out["spec"]["containers"][0]["image"] == "i:1"
    assert POD["spec"]["containers"][1]["image"] == "j:1"


def test_smp_nested_env_and_ports() -> None:
    patch = {
        "spec": {
            "containers": [
                {"name": "c1", "env": [{"name": "B", "value": "2"}], "ports": [{"containerPort": 81}]}
            ]
        }
    }
    c1 = strategic_merge_patch(POD, patch, "Pod")["spec"]["containers"][0]
    assert c1["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert c1["ports"] == [{"containerPort": 80}, {"containerPort": 81}]


def test_smp_delete_directive_and_null() -> None:
    patch = {
        "metadata": {"labels": {"a": None}},
        "spec": {"containers": [{"name": "c1", "$patch": "delete"}]},
    }
    out = strategic_merge_patch(POD, patch, "Pod")
    assert out["metadata"]["labels"] == {}
    assert [c["name"] for c in out["spec"]["containers"]] == ["c2"]


def test_smp_replace_directive() -> None:
    out = strategic_merge_patch(
        POD, {"spec": {"containers": [{"name": "n", "image": "z"}, {"$patch": "replace"}]}}, "Pod"
    )
    assert out["spec"]["containers"] == [{"name": "n", "image": "z"}]
    out = strategic_merge_patch(POD, {"spec": {"$patch": "replace", "containers": []}}, "Pod")
    assert out["spec"] == {"containers": []}


def test_smp_atomic_lists_replace_and_finalizers_merge_as_set() -> None:
    out = strategic_merge_patch(
        POD, {"spec": {"tolerations": [{"key": "k2"}]}, "metadata": {"finalizers": ["y", "x"]}}, "Pod"
    )
    assert out["spec"]["tolerations"] == [{"key": "k2"}]
    assert out["metadata"]["finalizers"] == ["x", "y"]


def test_smp_delete_from_primitive_list() -> None:
    out = strategic_merge_patch(POD, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}, "Pod")
    assert out["metadata"]["finalizers"] == []


def test_smp_retain_keys() -> None:
    patch = {
        "spec": {"volumes": [{"name": "v1", "hostPath": {"path": "/x"}, "$retainKeys": ["hostPath", "name"]}]}
    }
    assert strategic_merge_patch(POD, patch, "Pod")["spec"]["volumes"] == [
        {"name": "v1", "hostPath": {"path": "/x"}}
    ]


def test_smp_set_element_order_for_status_conditions() -> None:
    live = {
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]
        }
    }
    patch = {
        "status": {
            "$setElementOrder/conditions": [
                {"type": "Initialized"},
                {"type": "Ready"},
                {"type": "PodScheduled"},
            ],
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
        }
    }
    out = strategic_merge_patch(live, patch, "Pod")["status"]["conditions"]
    assert out == [
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": "True"},
        {"type": "PodScheduled", "status": "True"},
    ]


def test_smp_service_ports_by_port_and_owner_refs_by_uid() -> None:
    svc = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    out = strategic_merge_patch(svc, {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}, "Service")
    assert out["spec"]["ports"][1] == {"port": 443, "name": "https", "targetPort": 8443}
    obj = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    out = strategic_merge_patch(
        obj, {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}, "ConfigMap"
    )
    assert [o["uid"] for o in out["metadata"]["ownerReferences"]] == ["1", "2"]


def test_smp_template_containers_in_workloads() -> None:
    job = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}}}
    out = strategic_merge_patch(
        job, {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}}}, "Job"
    )
    assert len(out["spec"]["template"]["spec"]["containers"]) == 2


def test_smp_errors() -> None:
    with pytest.raises(PatchError, match="does not contain declared merge key: name"):
        strategic_merge_patch(POD, {"spec": {"containers": [{"image": "x"}]}}, "Pod")
    with pytest.raises(PatchError) as err:
        strategic_merge_patch(POD, [], "Pod")  # type: ignore[arg-type]
    assert err.value.code == 400


def test_list_strategy_table() -> None:
    assert list_strategy(("spec", "containers"), "Pod") == ("map", "name")
    assert list_strategy(("spec", "containers", "volumeMounts"), "Pod") == ("map", "mountPath")
    assert list_strategy(("spec", "ports"), "Service") == ("map", "port")
    assert list_strategy(("spec", "tolerations"), "Pod") == ("atomic", None)
    assert list_strategy(("metadata", "finalizers"), "Pod") == ("set", None)
    assert list_strategy(("spec", "containers", "args"), "Pod") == ("atomic", None)
