"""rayside.events.event_body: the one Event shape used by localkube's controllers and the operator."""

from __future__ import annotations

from rayside.events import event_body


def test_event_body_describes_the_object() -> None:
    obj = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "rc", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
    }
    body = event_body(obj, type_="Warning", reason="Bad", message="x" * 5000, component="c", now=0.0)
    assert body["metadata"]["name"].startswith("rc.") and body["metadata"]["namespace"] == "ns"
    assert body["involvedObject"] == {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "name": "rc",
        "namespace": "ns",
        "uid": "u1",
        "resourceVersion": "7",
    }
    assert (body["type"], body["reason"], len(body["message"])) == ("Warning", "Bad", 1024)
    assert body["firstTimestamp"] == body["lastTimestamp"] == "1970-01-01T00:00:00Z"
    assert body["source"] == {"component": "c"} and body["count"] == 1


def test_event_names_are_unique_and_cluster_scoped_objects_get_default() -> None:
    obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    names = {
        event_body(obj, type_="Normal", reason="R", message="", component="c")["metadata"]["name"]
        for _ in range(50)
    }
    assert len(names) == 50
    assert (
        event_body(obj, type_="Normal", reason="R", message="", component="c")["metadata"]["namespace"]
        == "default"
    )
