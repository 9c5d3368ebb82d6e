"""Table output and the JSONPath subset used by CRD printer columns."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from localkube.jsonpath import JsonPathError, find
from localkube.table import human_duration, table_for

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
CREATED = "2024-05-01T11:55:00Z"  # 5 minutes before NOW

DOC = {
    "metadata": {"name": "x", "labels": {"a.b/c": "1"}},
    "spec": {"items": [{"n": 1, "tags": ["a"]}, {"n": 2, "tags": ["b", "c"]}]},
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}],
        "count": 3,
    },
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (".metadata.name", ["x"]),
        ("{.metadata.name}", ["x"]),
        ("$.status.count", [3]),
        (".spec.items[0].n", [1]),
        (".spec.items[-1].n", [2]),
        (".spec.items[*].n", [1, 2]),
        (".spec.items[*].tags[*]", ["a", "b", "c"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type!='Ready')].type", ["Synced"]),
        (".spec.items[?(@.n>1)].n", [2]),
        (".spec.items[?(@.tags)].n", [1, 2]),
        (".metadata.labels['a.b/c']", ["1"]),
        ("..n", [1, 2]),
        (".missing.field", []),
        (".spec.items[5]", []),
    ],
)
def test_jsonpath_subset(expr: str, expected: list[Any]) -> None:
    assert find(DOC, expr) == expected


@pytest.mark.parametrize("expr", ["spec", ".spec[", ".spec[?(@.a ~ 1)]", ".a b"])
def test_jsonpath_errors(expr: str) -> None:
    with pytest.raises(JsonPathError):
        find(DOC, expr)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (45, "45s"),
        (119, "119s"),
        (125, "2m5s"),
        (300, "5m"),
        (900, "15m"),
        (3 * 3600 + 1200, "3h20m"),
        (5 * 3600, "5h"),
        (10 * 3600, "10h"),
        (51 * 3600, "2d3h"),
        (3 * 86400, "3d"),
        (30 * 86400, "30d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(dt.timedelta(seconds=seconds)) == text


def col_names(table: dict[str, Any], priority: int = 0) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"] if c["priority"] <= priority]


def running_pod() -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": CREATED},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "node-1"},
        "status": {
            "phase": "Running",
            "podIP": "10.244.0.5",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
                {
                    "name": "b",
                    "ready": False,
                    "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:00Z"}},
                },
            ],
        },
    }


def test_pod_table() -> None:
    table = table_for([running_pod()], "Pod", None, {"resourceVersion": "7"}, now=NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "7"}
    assert col_names(table) == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert col_names(table, 1)[5:] == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    row = table["rows"][0]
    assert row["cells"][:5] == ["p", "1/2", "CrashLoopBackOff", "2 (60s ago)", "5m"]
    assert row["cells"][5:7] == ["10.244.0.5", "node-1"]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": running_pod()["metadata"],
    }
    assert table["columnDefinitions"][0]["format"] == "name"


@pytest.mark.parametrize(
    ("status", "meta", "expected"),
    [
        ({"phase": "Pending"}, {}, "Pending"),
        (
            {"phase": "Running", "containerStatuses": [{"ready": True, "state": {"running": {}}}]},
            {},
            "Running",
        ),
        (
            {
                "phase": "Succeeded",
                "containerStatuses": [{"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
            },
            {},
            "Completed",
        ),
        (
            {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]},
            {},
            "ExitCode:3",
        ),
        ({"phase": "Pending", "initContainerStatuses": [{"state": {"running": {}}}]}, {}, "Init:0/1"),
        (
            {
                "phase": "Pending",
                "initContainerStatuses": [{"state": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
            },
            {},
            "Init:Error",
        ),
        ({"phase": "Running"}, {"deletionTimestamp": CREATED}, "Terminating"),
        ({"phase": "Failed", "reason": "Evicted"}, {}, "Evicted"),
    ],
)
def test_pod_status_column(status: dict[str, Any], meta: dict[str, Any], expected: str) -> None:
    pod = {
        "metadata": {"name": "p", "creationTimestamp": CREATED, **meta},
        "spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]},
        "status": status,
    }
    assert table_for([pod], "Pod", None, {}, now=NOW)["rows"][0]["cells"][2] == expected


def test_service_table() -> None:
    svc = {
        "metadata": {"name": "s", "creationTimestamp": CREATED},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.10",
            "selector": {"app": "x"},
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
        },
    }
    table = table_for([svc], "Service", None, {}, now=NOW)
    assert col_names(table) == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]
    assert table["rows"][0]["cells"][:6] == [
        "s",
        "NodePort",
        "10.96.0.10",
        "<none>",
        "80:30080/TCP,53/UDP",
        "5m",
    ]
    lb = {"metadata": {"name": "l"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.11"}}
    assert table_for([lb], "Service", None, {}, now=NOW)["rows"][0]["cells"][3] == "<pending>"


def test_job_table() -> None:
    job = {
        "metadata": {"name": "j", "creationTimestamp": CREATED},
        "spec": {"completions": 2, "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
        "status": {
            "succeeded": 2,
            "startTime": "2024-05-01T11:55:00Z",
            "completionTime": "2024-05-01T11:55:12Z",
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"},
            ],
        },
    }
    table = table_for([job], "Job", None, {}, now=NOW)
    assert col_names(table) == ["Name", "Status", "Completions", "Duration", "Age"]
    assert table["rows"][0]["cells"][:5] == ["j", "Complete", "2/2", "12s", "5m"]
    running = {"metadata": {"name": "r"}, "spec": {"parallelism": 3}, "status": {"startTime": CREATED}}
    assert table_for([running], "Job", None, {}, now=NOW)["rows"][0]["cells"][1:4] == [
        "Running",
        "0/1 of 3",
        "5m",
    ]


def test_configmap_and_unknown_kind_tables() -> None:
    cm = {"metadata": {"name": "c", "creationTimestamp": CREATED}, "data": {"a": "1", "b": "2"}}
    table = table_for([cm], "ConfigMap", None, {"continue": "tok", "resourceVersion": "9"}, now=NOW)
    assert table["rows"][0]["cells"] == ["c", 2, "5m"]
    assert table["metadata"] == {"continue": "tok", "resourceVersion": "9"}
    other = table_for([cm], "PriorityClass", None, {}, now=NOW)
    assert col_names(other) == ["Name", "Created At"]
    assert other["rows"][0]["cells"] == ["c", CREATED]


def test_crd_printer_columns() -> None:
    cols = [
        {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Wrong", "type": "integer", "jsonPath": ".spec.color"},
        {"name": "Started", "type": "date", "jsonPath": ".status.startTime"},
        {"name": "Debug", "type": "string", "jsonPath": ".spec.debug", "priority": 1},
    ]
    widget = {
        "metadata": {"name": "w1", "creationTimestamp": CREATED},
        "spec": {"color": "red", "replicas": 2},
        "status": {"startTime": "2024-05-01T10:00:00Z", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    table = table_for([widget], "Widget", cols, {}, now=NOW)
    assert col_names(table, 1) == ["Name", "Color", "Replicas", "Ready", "Wrong", "Started", "Debug"]
    assert table["columnDefinitions"][6]["priority"] == 1
    assert table["rows"][0]["cells"] == ["w1", "red", 2, "True", None, "120m", None]


def test_crd_without_printer_columns_has_age() -> None:
    table = table_for([{"metadata": {"name": "w", "creationTimestamp": CREATED}}], "Widget", [], {}, now=NOW)
    assert col_names(table) == ["Name", "Age"]
    assert table["rows"][0]["cells"] == ["w", "5m"]


def test_include_object() -> None:
    obj = {"metadata": {"name": "c"}, "data": {}}
    assert (
        table_for([obj], "ConfigMap", None, {}, now=NOW, include_object="Object")["rows"][0]["object"] == obj
    )
    assert "object" not in table_for([obj], "ConfigMap", None, {}, now=NOW, include_object="None")["rows"][0]
