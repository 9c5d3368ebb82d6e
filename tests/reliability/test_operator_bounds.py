"""A typo in `replicas` must not take the operator down: Pods are created in bounded chunks, the cluster's
current spec is re-read between chunks, other clusters keep reconciling, memory does not grow with
`replicas`, and SIGTERM ends the process within seconds.

The operator runs as a real `rayside operator` process (its RSS and its reaction to SIGTERM are what is
checked), with ONE reconcile worker (so fairness between clusters comes from the requeue, not from a spare
worker), against localkube with the simulated kubelet; the test acts and observes only through the API.
"Within one chunk" is measured exactly with resourceVersions: localkube's are one global counter, so the
Pods ADDED after a patch are those whose resourceVersion is greater than the patch's.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from kubernetes import client, watch

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import install_crds
from tests.support.kube import wait_for

NS = "default"
CHUNK = 100
BIG = 100000
TEMPLATE = {"spec": {"containers": [{"name": "ray", "image": "rayproject/ray:2.52.0"}]}}


def worker_group(replicas: int) -> dict[str, Any]:
    return {
        "groupName": "wg",
        "replicas": replicas,
        "minReplicas": 0,
        "maxReplicas": BIG,
        "rayStartParams": {},
        "template": TEMPLATE,
    }


def cluster(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "rayVersion": "2.52.0",
            "headGroupSpec": {"rayStartParams": {}, "template": TEMPLATE},
            "workerGroupSpecs": [worker_group(replicas)],
        },
    }


class PodCounter:
    """Records (cluster, resourceVersion) of every ADDED Pod from one watch."""

    def __init__(self, core: client.CoreV1Api) -> None:
        self._added: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(core,), daemon=True)
        self._thread.start()

    def _run(self, core: client.CoreV1Api) -> None:
        rv = core.list_namespaced_pod(NS).metadata.resource_version
        stream = functools.partial(self._watch.stream, core.list_namespaced_pod, NS, timeout_seconds=30)
        while not self._stop.is_set():
            try:
                for ev in stream(resource_version=rv):
                    meta = ev["object"].metadata
                    rv = meta.resource_version
                    if ev["type"] == "ADDED":
                        with self._lock:
                            self._added.append(((meta.labels or {}).get("ray.io/cluster", ""), int(rv)))
            except Exception:
                if not self._stop.is_set():
                    raise
                return  # the server went away at the end of the test

    def count(self, owner: str, after_rv: int = 0) -> int:
        with self._lock:
            return sum(1 for o, rv in self._added if o == owner and rv > after_rv)

    def stop(self) -> None:
        self._stop.set()
        self._watch.stop()


class PeakRss:
    """Samples a process's RSS every 0.2 s; `peak` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.peak = max(self.peak, self._proc.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running(kubelet="simulated", kubelet_options={"ready_delay": 0.05}) as server:
        install_crds(server.kube_client())
        yield server


def start_operator(lk: LocalKube, tmp: Path) -> subprocess.Popen[bytes]:
    log = (tmp / "operator.log").open("wb")
    cmd = [
        sys.executable, "-m", "rayside.cli", "operator", "--kubeconfig", str(lk.kubeconfig),
        "--kube-qps", "1000", "--kube-burst", "1000", "--reconcile-concurrency", "1",
        "--max-creates-per-pass", str(CHUNK), "--metrics-bind-address", "0",
        "--health-probe-bind-address", "0",
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())


def running_pods(core: client.CoreV1Api, name: str, want: int) -> bool:
    pods = core.list_namespaced_pod(NS, label_selector=f"ray.io/cluster={name}").items
    live = [p for p in pods if not p.metadata.deletion_timestamp]
    return len(live) == want and all(p.status.phase == "Running" for p in live)


def test_replicas_typo_is_bounded_and_stoppable(lk: LocalKube, tmp_path: Path) -> None:
    core = client.CoreV1Api(lk.api_client())
    crs = client.CustomObjectsApi(lk.api_client())
    counter = PodCounter(core)
    proc = start_operator(lk, tmp_path)
    rss = PeakRss(proc.pid)
    figures: dict[str, float] = {}

    def patch_replicas(name: str, replicas: int) -> int:
        body = {"spec": {"workerGroupSpecs": [worker_group(replicas)]}}
        obj = crs.patch_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", name, body)
        return int(obj["metadata"]["resourceVersion"])

    try:
        crs.create_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", cluster("big", BIG))
        wait_for(lambda: counter.count("big") >= 2 * CHUNK, 120, "big's first chunks of Pods")

        # fairness: with one worker busy with 100000 replicas, a small cluster still comes up
        started = time.monotonic()
        crs.create_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", cluster("small", 2))
        wait_for(lambda: running_pods(core, "small", 3), 120, "small's 3 Pods Running while big grows")
        figures["small_running_s"] = time.monotonic() - started

        # scale-down: at most the chunk in flight is still created after the patch
        started = time.monotonic()
        scaled_rv = patch_replicas("big", 1)
        wait_for(lambda: running_pods(core, "big", 2), 120, "big scaled down to head + 1 worker")
        figures["scale_down_s"] = time.monotonic() - started
        added = counter.count("big", scaled_rv)
        figures["added_after_scale_down"] = added
        assert added <= CHUNK, f"{added} Pods created after the scale-down (chunk {CHUNK})"

        # deletion: grow again, delete; one worker, so once a later pass of `small` is done, no pass of
        # `big` that began before the deletion is still running
        grow_rv = patch_replicas("big", BIG)
        wait_for(lambda: counter.count("big", grow_rv) > 2 * CHUNK, 120, "big growing again")
        before_delete = int(core.list_namespaced_pod(NS, limit=1).metadata.resource_version)
        started = time.monotonic()
        crs.delete_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", "big")
        patch_replicas("small", 3)
        wait_for(lambda: running_pods(core, "small", 4), 120, "small scaled to 3 after big's deletion")
        figures["delete_s"] = time.monotonic() - started
        added = counter.count("big", before_delete)
        figures["added_after_delete"] = added
        assert added <= CHUNK, f"{added} Pods created for big after its deletion (chunk {CHUNK})"

        # SIGTERM in the middle of a big pass
        crs.create_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", cluster("big2", BIG))
        wait_for(lambda: counter.count("big2") >= 2 * CHUNK, 120, "big2 being created")
        rss.stop()
        figures["peak_rss_mb"] = rss.peak / 2**20
        figures["pods_in_store"] = len(core.list_namespaced_pod(NS).items)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        figures["sigterm_exit_s"] = time.monotonic() - started
        print("operator bounds:", {k: round(v, 2) for k, v in figures.items()})
        assert code == 0, (tmp_path / "operator.log").read_text()[-2000:]
        assert figures["sigterm_exit_s"] < 5, f"exit took {figures['sigterm_exit_s']:.1f}s after SIGTERM"
        assert rss.peak < 400 * 2**20, f"operator peak RSS {rss.peak / 2**20:.0f} MB with replicas: {BIG}"
    finally:
        rss.stop()
        counter.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
