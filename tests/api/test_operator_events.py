"""The operator's background EventRecorder against localkube: Events arrive, a full queue drops the oldest
ones (counted), and `close()` sends what is queued."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.runtime.events import EventRecorder
from rayside.kubeclient import KubeClient
from tests.support.kube import wait_for

pytestmark = pytest.mark.api
NS = "default"


@pytest.fixture(scope="module")
def lk() -> Iterator[LocalKube]:
    with running() as server:
        yield server


def _owner(name: str) -> dict[str, Any]:
    return {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": name, "namespace": NS}}


def _messages(lk: LocalKube, name: str) -> list[str]:
    core = client.CoreV1Api(lk.api_client())
    items = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items
    return sorted(e.message for e in items)


def test_events_are_sent_in_the_background(lk: LocalKube) -> None:
    kube = KubeClient.from_config(kubeconfig=str(lk.kubeconfig), qps=100, burst=100)
    recorder = EventRecorder(kube)
    for i in range(3):
        recorder.record(_owner("bg"), type_="Normal", reason="Test", message=f"event {i}")
    wait_for(lambda: len(_messages(lk, "bg")) == 3, 30, "three events")
    assert _messages(lk, "bg") == ["event 0", "event 1", "event 2"]
    assert kube.stats.get("POST") == 3  # the deferrable view shares the client's statistics
    recorder.close()
    recorder.record(_owner("bg"), type_="Normal", reason="Test", message="after close")
    assert recorder.pending() == 0 and recorder.dropped == 0


def test_a_full_queue_drops_the_oldest_and_close_sends_the_rest(lk: LocalKube) -> None:
    # 1 request per 2 s with nothing banked after the first: the sender is slower than the producer
    kube = KubeClient.from_config(kubeconfig=str(lk.kubeconfig), qps=0.5, burst=1)
    recorder = EventRecorder(kube, max_queue=2, max_defer=0.0)
    for i in range(6):
        recorder.record(_owner("full"), type_="Normal", reason="Test", message=f"event {i}")
    recorder.close(timeout=20)
    sent = _messages(lk, "full")
    assert "event 5" in sent and "event 4" in sent  # the newest are kept
    assert recorder.dropped == 6 - len(sent) >= 3


def _events(lk: LocalKube, name: str) -> list[Any]:
    core = client.CoreV1Api(lk.api_client())
    return list(core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items)


def test_the_same_failure_30_times_is_one_event_with_count_30(lk: LocalKube) -> None:
    kube = KubeClient.from_config(kubeconfig=str(lk.kubeconfig), qps=100, burst=100)
    recorder = EventRecorder(kube)
    message = "Failed to create worker Pod ns/rc-worker: pods is forbidden: exceeded quota"
    try:
        for _ in range(30):
            recorder.record(
                _owner("repeat"), type_="Warning", reason="FailedToCreateWorkerPod", message=message
            )
        wait_for(lambda: [e.count for e in _events(lk, "repeat")] == [30], 30, "one event with count 30")
    finally:
        recorder.close()
    (event,) = _events(lk, "repeat")
    assert (event.reason, event.type, event.message) == ("FailedToCreateWorkerPod", "Warning", message)
    assert event.last_timestamp >= event.first_timestamp
    assert kube.stats.get("POST") == 1 and kube.stats.get("PATCH") == 29


def test_a_repeat_of_a_deleted_event_creates_it_again(lk: LocalKube) -> None:
    kube = KubeClient.from_config(kubeconfig=str(lk.kubeconfig), qps=100, burst=100)
    recorder = EventRecorder(kube)
    core = client.CoreV1Api(lk.api_client())
    try:
        recorder.record(_owner("gone"), type_="Warning", reason="Failed", message="m")
        wait_for(lambda: len(_events(lk, "gone")) == 1, 30, "the first event")
        core.delete_namespaced_event(_events(lk, "gone")[0].metadata.name, NS)
        recorder.record(_owner("gone"), type_="Warning", reason="Failed", message="m")
        wait_for(lambda: [e.count for e in _events(lk, "gone")] == [2], 30, "the event again, count 2")
    finally:
        recorder.close()
