"""Lists, pagination, selectors and watches."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from tests.api.conftest import Kubectl, wait_for

pytestmark = pytest.mark.api


def cm(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": name}}


def test_pagination_snapshot(api: Any) -> None:
    core = client.CoreV1Api(api)
    for i in range(5):
        core.create_namespaced_config_map("default", cm(f"c{i}"))
    page = core.list_namespaced_config_map("default", limit=2)
    names = [i.metadata.name for i in page.items]
    rv = page.metadata.resource_version
    assert len(names) == 2 and page.metadata._continue
    core.create_namespaced_config_map("default", cm("c9"))
    token = page.metadata._continue
    while token:
        page = core.list_namespaced_config_map("default", limit=2, _continue=token)
        assert page.metadata.resource_version == rv
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
    assert names == [f"c{i}" for i in range(5)]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("default", limit=2, _continue="garbage!")
    assert err.value.status in (400, 410)


def test_label_selectors(api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", cm("a", {"env": "a"}))
    core.create_namespaced_config_map("default", cm("b", {"env": "b"}))
    core.create_namespaced_config_map("default", cm("n"))

    def names(sel: str) -> set[str]:
        return {i.metadata.name for i in core.list_namespaced_config_map("default", label_selector=sel).items}

    assert names("env=a") == {"a"}
    assert names("env!=a") == {"b", "n"}
    assert names("env in (a,b)") == {"a", "b"}
    assert names("env notin (a)") == {"b", "n"}
    assert names("env") == {"a", "b"}
    assert names("!env") == {"n"}
    with pytest.raises(ApiException) as err:
        names("env in (a")
    assert err.value.status == 400


def test_field_selectors(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    for name, node in (("p1", "node-1"), ("p2", "node-2")):
        core.create_namespaced_pod(
            "default",
            {
                "metadata": {"name": name},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox:1"}]},
            },
        )
    core.patch_namespaced_pod_status("p1", "default", {"status": {"phase": "Running"}})

    def names(sel: str) -> set[str]:
        return {i.metadata.name for i in core.list_namespaced_pod("default", field_selector=sel).items}

    assert names("status.phase=Running") == {"p1"}
    assert names("spec.nodeName=node-2") == {"p2"}
    assert names("metadata.name=p1") == {"p1"}
    with pytest.raises(ApiException) as err:
        names("spec.foo=x")
    assert err.value.status == 400 and "field label not supported" in json.loads(err.value.body)["message"]


def test_watch_from_list_rv(api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", cm("old"))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", cm("x"))
    core.patch_namespaced_config_map("x", "default", {"data": {"k": "2"}})
    core.delete_namespaced_config_map("x", "default")
    events = [
        (e["type"], e["object"].metadata.name, int(e["object"].metadata.resource_version))
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1
        )
    ]
    assert [(t, n) for t, n, _ in events] == [("ADDED", "x"), ("MODIFIED", "x"), ("DELETED", "x")]
    assert events[2][2] > events[1][2]


def test_watch_without_rv_sends_initial_state(api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", cm("a"))
    core.create_namespaced_config_map("default", cm("b"))
    w = watch.Watch()
    seen: list[tuple[str, str]] = []
    for ev in w.stream(core.list_namespaced_config_map, "default", timeout_seconds=10):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 2:
            core.create_namespaced_config_map("default", cm("c"))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]


def test_watch_expired_after_compaction(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", cm("a"))
    lk.compact()
    resp = requests.get(
        f"{lk.url}/api/v1/namespaces/default/configmaps",
        params={"watch": "1", "resourceVersion": "1"},
        timeout=10,
    )
    assert resp.status_code == 200
    lines = resp.text.splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert (
        event["type"] == "ERROR" and event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    )
    with pytest.raises(ApiException) as err:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map, "default", resource_version="1", timeout_seconds=5
            )
        )
    assert err.value.status == 410


def test_watch_selector_transitions(api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", cm("o", {"app": "y"}))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.patch_namespaced_config_map("o", "default", {"metadata": {"labels": {"app": "x"}}})
    core.patch_namespaced_config_map("o", "default", {"metadata": {"labels": {"app": "y"}}})
    events = [
        e["type"]
        for e in watch.Watch().stream(
            core.list_namespaced_config_map,
            "default",
            label_selector="app=x",
            resource_version=rv,
            timeout_seconds=1,
        )
    ]
    assert events == ["ADDED", "DELETED"]


def test_watch_timeout_and_bookmarks(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    start = time.monotonic()
    events = list(watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=2))
    assert events == [] and time.monotonic() - start >= 1.5
    url = f"{lk.url}/api/v1/namespaces/default/configmaps"
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    with_marks = requests.get(
        url,
        params={"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "3"},
        timeout=30,
    )
    marks = [json.loads(line) for line in with_marks.text.splitlines()]
    assert marks and all(m["type"] == "BOOKMARK" for m in marks)
    assert set(marks[0]["object"]["metadata"]) == {"resourceVersion"}
    without = requests.get(
        url, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "2"}, timeout=30
    )
    assert without.text == ""


def test_kubectl_get_watch_and_wait_delete(kubectl: Kubectl, lk_tls: LocalKube) -> None:
    core = client.CoreV1Api(lk_tls.api_client())
    core.create_namespaced_config_map("default", cm("x"))
    proc = kubectl.popen("get", "cm", "-w", "--no-headers", "--request-timeout=60s")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(lambda: any(line.startswith("x") for line in lines), what="initial row")
        core.create_namespaced_config_map("default", cm("y"))
        wait_for(lambda: any(line.startswith("y") for line in lines), what="row for y")
        waiter = kubectl.popen("wait", "--for=delete", "cm/x", "--timeout=30s")
        time.sleep(
            0.5
        )  # give kubectl wait time to start watching (it also handles an already-deleted object)
        core.delete_namespaced_config_map("x", "default")
        assert waiter.wait(timeout=60) == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_send_initial_events_and_future_rv(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", cm("a"))
    url = f"{lk.url}/api/v1/namespaces/default/configmaps"
    bad = requests.get(url, params={"watch": "1", "sendInitialEvents": "true"}, timeout=10)
    assert bad.status_code == 422
    resp = requests.get(
        url,
        params={
            "watch": "1",
            "sendInitialEvents": "true",
            "allowWatchBookmarks": "true",
            "resourceVersionMatch": "NotOlderThan",
            "resourceVersion": "",
            "timeoutSeconds": "1",
        },
        timeout=30,
    )
    events = [json.loads(line) for line in resp.text.splitlines()]
    assert [e["type"] for e in events[:2]] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    future = requests.get(url, params={"resourceVersion": "999999"}, timeout=30)
    assert future.status_code == 504 and future.headers["Retry-After"] == "1"


def test_many_concurrent_watchers_see_every_event(lk: LocalKube, api: Any) -> None:
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    url = f"{lk.url}/api/v1/namespaces/default/configmaps"
    results: list[list[str]] = []

    def watcher() -> None:
        resp = requests.get(
            url, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "4"}, timeout=60
        )
        results.append([json.loads(line)["object"]["metadata"]["name"] for line in resp.text.splitlines()])

    threads = [threading.Thread(target=watcher) for _ in range(20)]
    for t in threads:
        t.start()
    for i in range(30):
        core.create_namespaced_config_map("default", cm(f"m{i}"))
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 20
    assert all(names == [f"m{i}" for i in range(30)] for names in results)
