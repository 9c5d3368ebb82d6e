"""rayside.kubeclient against a real localkube server over HTTP(S): auth, errors, retries, watch, paging."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from localkube.cluster import LocalKube
from rayside.kubeclient import (
    AlreadyExists,
    Conflict,
    Gone,
    KubeClient,
    NotFound,
    ServerError,
    TooManyRequests,
)
from rayside.objects import CONFIGMAPS

pytestmark = pytest.mark.api

CM = CONFIGMAPS.path("default")


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


class SleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_tls_token_auth_and_status_exceptions(lk_tls: LocalKube) -> None:
    kc = lk_tls.kube_client()
    created = kc.create(CM, cm("a", k="1"))
    assert created["metadata"]["resourceVersion"]
    assert kc.get(f"{CM}/a")["data"] == {"k": "1"}
    with pytest.raises(AlreadyExists):
        kc.create(CM, cm("a"))
    stale = dict(created, data={"k": "2"})
    kc.replace(f"{CM}/a", dict(created, data={"k": "3"}))
    with pytest.raises(Conflict) as conflict:
        kc.replace(f"{CM}/a", stale)
    assert conflict.value.status == 409 and not isinstance(conflict.value, AlreadyExists)
    patched = kc.patch(f"{CM}/a", {"data": {"x": "y"}})
    assert patched["data"] == {"k": "3", "x": "y"}
    kc.delete(f"{CM}/a")
    with pytest.raises(NotFound):
        kc.get(f"{CM}/a")


def test_wrong_token_is_unauthorized(lk_tls: LocalKube) -> None:
    kc = lk_tls.kube_client()
    bad = KubeClient(kc.host, session=kc.session, auth_header=lambda: "Bearer wrong", retries=1)
    with pytest.raises(Exception) as err:
        bad.list(CM)
    assert getattr(err.value, "status", None) == 401


def test_reads_retry_through_injected_server_errors(lk: LocalKube) -> None:
    sleep = SleepRecorder()
    kc = lk.kube_client(sleep=sleep, retries=8)
    kc.create(CM, cm("r"))
    lk.faults.set(error_rates={"get": {500: 0.5}}, seed=7)
    for _ in range(20):
        assert kc.get(f"{CM}/r")["metadata"]["name"] == "r"
    assert kc.stats["GET"] > 20  # some attempts failed and were retried
    assert sleep.calls, "retries back off through the injected sleep"


def test_post_is_not_retried_on_500_but_is_on_429(lk: LocalKube) -> None:
    sleep = SleepRecorder()
    kc = lk.kube_client(sleep=sleep, retries=3)
    lk.faults.set(error_rates={"create": {500: 1.0}})
    with pytest.raises(ServerError):
        kc.create(CM, cm("p"))
    assert kc.stats["POST"] == 1
    lk.faults.set(error_rates={"create": {429: 1.0}})
    with pytest.raises(TooManyRequests):
        kc.create(CM, cm("p"))
    assert kc.stats["POST"] == 1 + 3
    assert min(sleep.calls) >= 1.0  # the server's Retry-After (1 s) bounds the backoff from below
    lk.faults.clear()
    assert kc.create(CM, cm("p"))["metadata"]["name"] == "p"


def test_list_all_follows_continue_tokens(lk: LocalKube) -> None:
    kc = lk.kube_client()
    for i in range(25):
        kc.create(CM, cm(f"c{i:02d}"))
    before = kc.stats.get("GET", 0)
    items, rv = kc.list_all(CM, {"limit": 10})
    assert sorted(i["metadata"]["name"] for i in items) == [f"c{i:02d}" for i in range(25)]
    assert rv and kc.stats["GET"] - before == 3


def test_watch_streams_events_and_raises_gone_when_history_is_compacted(lk: LocalKube) -> None:
    kc = lk.kube_client()
    _items, rv = kc.list_all(CM)
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        for ev in kc.watch(CM, resource_version=rv, timeout_seconds=5):
            if ev.type != "BOOKMARK":
                seen.append((ev.type, ev.object["metadata"]["name"]))
            if len(seen) == 3:
                return

    t = threading.Thread(target=consume)
    t.start()
    kc.create(CM, cm("w"))
    kc.patch(f"{CM}/w", {"data": {"a": "b"}})
    kc.delete(f"{CM}/w")
    t.join(30)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    lk.compact()
    with pytest.raises(Gone):
        for _ev in kc.watch(CM, resource_version=rv, timeout_seconds=5):
            pass


def test_rate_limit_paces_requests(lk: LocalKube) -> None:
    sleep = SleepRecorder()
    now = [0.0]

    def fake_sleep(seconds: float) -> None:
        sleep(seconds)
        now[0] += seconds

    kc = lk.kube_client(qps=5.0, burst=1, sleep=fake_sleep, clock=lambda: now[0])
    for _ in range(6):
        kc.list(CM)
    # one banked token, then 5 more requests at 5 QPS: one second of (injected) waiting in total
    assert sum(sleep.calls) == pytest.approx(1.0)
    assert len(sleep.calls) == 5


def test_many_threads_reuse_pooled_connections(lk_tls: LocalKube, caplog: pytest.LogCaptureFixture) -> None:
    """32 threads at once stay within the client's connection pool (requests' default keeps 10 and logs
    "Connection pool is full, discarding connection" for every extra one)."""
    client = KubeClient.from_config(kubeconfig=str(lk_tls.kubeconfig), qps=0)
    barrier = threading.Barrier(32)

    def work() -> None:
        barrier.wait()
        for _ in range(5):
            client.get("/api/v1/namespaces/default")

    with caplog.at_level("WARNING", logger="urllib3.connectionpool"):
        threads = [threading.Thread(target=work) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert client.stats.get("GET") == 160
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
