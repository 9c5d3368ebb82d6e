"""The RayCluster StatusWriter against localkube: status lands at once with a quiet budget; under load from
object writes it waits (at most max_defer) and several changes of one cluster cost one write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import install_crds
from ray_operator.runtime.cache import ClusterInformer as Informer
from ray_operator.runtime.status_writer import StatusWriter, merge_body
from rayside.kubeclient import KubeClient
from rayside.objects import RAYCLUSTERS
from tests.support.kube import wait_for

pytestmark = pytest.mark.api
NS = "default"
CLUSTERS = RAYCLUSTERS.path(NS)


def status_path(ns: str, name: str) -> str:
    return RAYCLUSTERS.path(ns, name, "status")


@pytest.fixture(scope="module")
def lk() -> Iterator[LocalKube]:
    with running() as server:
        install_crds(server.kube_client())
        yield server


def _cluster(name: str) -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "ray", "image": "rayproject/ray:2.52.0"}]}}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"headGroupSpec": {"rayStartParams": {}, "template": template}},
    }


def _setup(lk: LocalKube, name: str, qps: float) -> tuple[KubeClient, Informer, threading.Event]:
    kube = KubeClient.from_config(kubeconfig=str(lk.kubeconfig), qps=qps, burst=1)
    lk.kube_client().create(CLUSTERS, _cluster(name))
    informer = Informer(lk.kube_client(), CLUSTERS)
    stop = threading.Event()
    informer.start(stop)
    assert informer.synced.wait(30)
    wait_for(lambda: informer.get(NS, name), 30, "cluster in the cache")
    return kube, informer, stop


def _status(lk: LocalKube, name: str) -> dict[str, Any]:
    return dict(lk.kube_client().get(RAYCLUSTERS.path(NS, name)).get("status") or {})


def test_merge_body_nulls_what_went_away() -> None:
    assert merge_body({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {"a": None, "b": 3, "c": 4}


def test_status_is_written_at_once_when_the_budget_is_quiet(lk: LocalKube) -> None:
    kube, informer, stop = _setup(lk, "quiet", qps=100)
    writer = StatusWriter(kube, cache=informer, path=status_path, max_defer=30)
    writer.submit(NS, "quiet", {"state": "ready", "readyWorkerReplicas": 1})
    wait_for(lambda: _status(lk, "quiet").get("state") == "ready", 10, "status written")
    wait_for(writer.idle, 10, "nothing pending")
    writer.submit(NS, "quiet", {"state": "ready"})  # readyWorkerReplicas went away: written as null
    wait_for(lambda: "readyWorkerReplicas" not in _status(lk, "quiet"), 10, "field removed")
    assert writer.pending(NS, "quiet") is None and writer.writes == 2
    writer.close()
    stop.set()


def test_under_load_changes_coalesce_into_one_deferred_write(lk: LocalKube) -> None:
    kube, informer, stop = _setup(lk, "busy", qps=20)
    hog_stop = threading.Event()

    def object_writes() -> None:  # normal-lane requests keep the bucket busy, like Pod creates
        while not hog_stop.is_set():
            kube.get(RAYCLUSTERS.path(NS, "busy"))

    hogs = [threading.Thread(target=object_writes, daemon=True) for _ in range(3)]
    for hog in hogs:
        hog.start()
    writer = StatusWriter(kube, cache=informer, path=status_path, max_defer=1.5)
    try:
        gets = kube.stats.get("GET", 0)
        writer.submit(NS, "busy", {"state": "", "readyWorkerReplicas": 0})
        # ten object requests got tokens after the submit: a write in the normal lane would have had one
        wait_for(lambda: kube.stats.get("GET", 0) >= gets + 10, 20, "ten object requests sent")
        assert "readyWorkerReplicas" not in _status(lk, "busy")
        for ready in range(1, 5):
            writer.submit(NS, "busy", {"state": "", "readyWorkerReplicas": ready})
        assert writer.pending(NS, "busy") == {"state": "", "readyWorkerReplicas": 4}
        wait_for(lambda: _status(lk, "busy").get("readyWorkerReplicas") == 4, 20, "deferred write")
        wait_for(writer.idle, 10, "nothing pending")
        assert writer.writes == 1  # five changes, one write
    finally:
        hog_stop.set()
        writer.close()
        stop.set()


def test_a_deleted_cluster_drops_its_pending_status(lk: LocalKube) -> None:
    kube, informer, stop = _setup(lk, "gone", qps=100)
    lk.kube_client().delete(RAYCLUSTERS.path(NS, "gone"))
    wait_for(lambda: informer.get(NS, "gone") is None, 30, "cluster gone from the cache")
    writer = StatusWriter(kube, cache=informer, path=status_path, max_defer=0)
    writer.submit(NS, "gone", {"state": "ready"})
    wait_for(writer.idle, 10, "entry dropped")
    assert writer.writes == 0
    writer.close()
    stop.set()
