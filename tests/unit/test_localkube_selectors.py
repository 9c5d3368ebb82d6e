"""Label and field selector semantics."""

from __future__ import annotations

import pytest

from localkube.selectors import (
    SelectorError,
    label_selector_matcher,
    label_selector_to_string,
    parse_field_selector,
    parse_label_selector,
)

A = {"env": "a", "tier": "web"}
B = {"env": "b"}
NONE: dict[str, str] = {}
OBJECTS = {"a": A, "b": B, "none": NONE}


def matching(text: str) -> set[str]:
    pred = parse_label_selector(text)
    return {name for name, labels in OBJECTS.items() if pred(labels)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("env=a", {"a"}),
        ("env==a", {"a"}),
        ("env!=a", {"b", "none"}),
        ("env in (a,b)", {"a", "b"}),
        ("env in (a, b)", {"a", "b"}),
        ("env notin (a)", {"b", "none"}),
        ("env", {"a", "b"}),
        ("!env", {"none"}),
        ("env=a,tier=web", {"a"}),
        ("env,!tier", {"b"}),
        ("", {"a", "b", "none"}),
        ("env=", {"none"} - {"none"}),
    ],
)
def test_label_selector_semantics(text: str, expected: set[str]) -> None:
    assert matching(text) == expected


def test_empty_value_matches_empty_label() -> None:
    assert parse_label_selector("env=")({"env": ""})
    assert not parse_label_selector("env=")({})


def test_numeric_operators() -> None:
    assert parse_label_selector("n>3")({"n": "4"})
    assert not parse_label_selector("n<3")({"n": "4"})
    assert not parse_label_selector("n<3")({})


@pytest.mark.parametrize("text", ["env in (a", "env in a", "=a", "env=a,", "env==(a)", "a b", "bad key!=x"])
def test_label_selector_syntax_errors(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(text)


def test_label_selector_error_names_the_problem() -> None:
    with pytest.raises(SelectorError, match=r"found end of string, expected: ',', or '\)'"):
        parse_label_selector("env in (a")
    with pytest.raises(SelectorError, match='invalid label key "-bad"'):
        parse_label_selector("-bad=x")
    with pytest.raises(SelectorError, match="invalid label value"):
        parse_label_selector("k=" + "v" * 64)


def test_structured_selector() -> None:
    sel = {
        "matchLabels": {"app": "x"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["a", "b"]},
            {"key": "skip", "operator": "DoesNotExist"},
        ],
    }
    pred = label_selector_matcher(sel)
    assert pred({"app": "x", "env": "a"})
    assert not pred({"app": "x", "env": "c"})
    assert not pred({"app": "x", "env": "a", "skip": "1"})
    assert label_selector_matcher({})({"any": "thing"})
    assert label_selector_matcher({"matchExpressions": [{"key": "e", "operator": "NotIn", "values": ["a"]}]})(
        {}
    )
    assert label_selector_matcher({"matchExpressions": [{"key": "e", "operator": "Exists"}]})({"e": ""})


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ({"key": "e", "operator": "In", "values": []}, "values: Required value"),
        ({"key": "e", "operator": "Exists", "values": ["a"]}, "values: Forbidden"),
        ({"key": "e", "operator": "Bogus"}, 'Unsupported value: "Bogus"'),
    ],
)
def test_structured_selector_errors(expr: dict[str, object], message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        label_selector_matcher({"matchExpressions": [expr]})


def test_selector_to_string() -> None:
    sel = {"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [{"key": "c", "operator": "Exists"}]}
    text = label_selector_to_string(sel)
    assert text == "a=1,b=2,c"
    assert parse_label_selector(text)({"a": "1", "b": "2", "c": "x"})


POD = {
    "metadata": {"name": "p1", "namespace": "default"},
    "spec": {"nodeName": "node-1", "restartPolicy": "Never"},
    "status": {"phase": "Running", "podIP": "10.0.0.3"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status.phase=Running", True),
        ("status.phase!=Running", False),
        ("spec.nodeName=node-1", True),
        ("spec.nodeName==node-2", False),
        ("metadata.name=p1,metadata.namespace=default", True),
        ("metadata.name=p1,status.phase=Pending", False),
        ("spec.schedulerName=default-scheduler", True),
        ("spec.hostNetwork=false", True),
        ("status.nominatedNodeName=", True),
        ("", True),
    ],
)
def test_pod_field_selectors(text: str, expected: bool) -> None:
    assert parse_field_selector(text, "pods")(POD) is expected
    assert parse_field_selector(text, "Pod")(POD) is expected


def test_unsupported_field_label() -> None:
    with pytest.raises(SelectorError, match=r"^field label not supported: spec\.foo$"):
        parse_field_selector("spec.foo=x", "pods")
    with pytest.raises(SelectorError, match=r"field label not supported: status\.phase"):
        parse_field_selector("status.phase=Running", "configmaps")


def test_field_selector_syntax_error() -> None:
    with pytest.raises(SelectorError, match="invalid selector"):
        parse_field_selector("metadata.name", "pods")


def test_event_secret_job_field_selectors() -> None:
    event = {
        "metadata": {"name": "p.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "uid": "u1"},
        "reason": "Started",
        "type": "Normal",
        "source": {"component": "kubelet"},
    }
    assert parse_field_selector("involvedObject.name=p,involvedObject.kind=Pod,source=kubelet", "events")(
        event
    )
    assert not parse_field_selector("type=Warning", "events")(event)
    assert parse_field_selector("type=kubernetes.io/tls", "secrets")({"type": "kubernetes.io/tls"})
    assert parse_field_selector("status.successful=0", "jobs")({"status": {}})
    assert parse_field_selector("status.successful=2", "Job")({"status": {"succeeded": 2}})


def test_escaped_comma_in_value() -> None:
    pred = parse_field_selector(r"metadata.name=a\,b", "configmaps")
    assert pred({"metadata": {"name": "a,b"}})
