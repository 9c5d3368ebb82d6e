"""Operator scale benchmark: N RayClusters x M workers on localkube's simulated kubelet.

localkube (API server + simulated kubelet) runs in this process; the operator runs as a separate process
(`rayside operator`) with the given QPS/burst/concurrency, so its memory is measured alone. Reports the
time from the first RayCluster create until every Pod is Running, against the client-side rate bound
(pods / QPS: the fastest any operator can create them), the time until every Pod exists (the operator's
own share; the rest is the simulated kubelet catching up), the operator's API writes per Pod (from its
KubeClient.stats, logged at shutdown) and its peak RSS.

    python benchmarks/operator_scale.py --clusters 100 --workers 100 --qps 50 --burst 50 --concurrency 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import operator as _stdlib_operator  # noqa: F401  (imported before the repo root joins sys.path)
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

from rayside.kubeclient import KubeClient  # noqa: E402
from rayside.objects import JSON, PODS, RAYCLUSTERS  # noqa: E402
from rayside.runtime.informer import Informer  # noqa: E402

WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")
_LAUNCH = (
    "import operator, sys; sys.path.insert(1, {root!r}); from ray_operator.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


def raycluster(name: str, workers: int) -> JSON:
    template = {"spec": {"containers": [{"name": "ray", "image": "rayproject/ray:2.52.0"}]}}
    group = {
        "groupName": "wg",
        "replicas": workers,
        "minReplicas": 0,
        "maxReplicas": workers,
        "template": template,
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"headGroupSpec": {"rayStartParams": {}, "template": template}, "workerGroupSpecs": [group]},
    }


def _phase_only(pod: JSON) -> JSON:
    """What the counter keeps of a Pod: its key, resourceVersion and phase."""
    meta = pod.get("metadata") or {}
    keep = {k: meta.get(k) for k in ("name", "namespace", "resourceVersion")}
    return {"metadata": keep, "status": {"phase": (pod.get("status") or {}).get("phase", "")}}


def _running(pod: JSON | None) -> bool:
    return pod is not None and pod["status"]["phase"] == "Running"


class RunningCounter:
    """Counts Running Pods from a Pod informer (a list every poll would load the API server)."""

    def __init__(self, client: KubeClient) -> None:
        self._informer = Informer(client, PODS.path(), transform=_phase_only, on_change=self._changed)
        self._running = 0
        self._lock = threading.Lock()

    def running(self) -> int:
        with self._lock:
            return self._running

    def existing(self) -> int:
        return len(self._informer)

    def _changed(self, old: JSON | None, new: JSON | None) -> None:
        with self._lock:
            self._running += _running(new) - _running(old)

    def run(self, stop: threading.Event) -> None:
        self._informer.run(stop)


def _server_create_span(client: KubeClient) -> int | None:
    """Seconds from the first RayCluster to the last Pod by the API server's creationTimestamps (1 s
    resolution, but free of any watch lag on this side)."""
    clusters, _ = client.list_all(RAYCLUSTERS.path())
    pods, _ = client.list_all(PODS.path())
    if not clusters or not pods:
        return None

    def stamp(obj: JSON) -> datetime:
        return datetime.fromisoformat(obj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))

    return int((max(map(stamp, pods)) - min(map(stamp, clusters))).total_seconds())


def _peak_rss(pid: int, stop: threading.Event, out: list[int]) -> None:
    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            out[0] = max(out[0], proc.memory_info().rss)
        except psutil.Error:
            return
        time.sleep(0.2)


@contextlib.contextmanager
def localkube_process(flags: list[str]) -> Iterator[Path]:
    """`rayside localkube serve` with a simulated kubelet in a child process; yields its kubeconfig."""
    with tempfile.TemporaryDirectory(prefix="operator-bench-lk-") as tmp:
        argv = [
            sys.executable,
            "-m",
            "localkube",
            "--port",
            "0",
            "--state-dir",
            tmp,
            "--kubelet",
            "simulated",
        ]
        proc = subprocess.Popen([*argv, *flags], stdout=subprocess.PIPE, text=True, cwd=tmp)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("kubeconfig: "):
                    yield Path(line.split(": ", 1)[1].strip())
                    break
            else:
                raise RuntimeError(f"localkube exited with {proc.wait()} before it was ready")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def run(
    clusters: int,
    workers: int,
    qps: float,
    burst: int,
    concurrency: int,
    timeout: float,
    progress: bool = False,
    serve_flags: list[str] | None = None,
) -> dict[str, Any]:
    pods = clusters * (workers + 1)
    with localkube_process(serve_flags or []) as kubeconfig:
        admin = KubeClient.from_config(kubeconfig=str(kubeconfig), qps=1000, burst=1000)
        flags = ["--kubeconfig", str(kubeconfig), "--install-crds", "--log-level", "INFO"]
        flags += ["--metrics-bind-address", "0", "--health-probe-bind-address", "0"]
        flags += [
            "--kube-qps",
            str(qps),
            "--kube-burst",
            str(burst),
            "--reconcile-concurrency",
            str(concurrency),
        ]
        log_file = Path(tempfile.mkstemp(prefix="operator-bench-", suffix=".log")[1])
        with log_file.open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCH.format(root=str(ROOT)), *flags],
                stderr=log,
                cwd=tempfile.gettempdir(),
            )
        stop = threading.Event()
        peak = [0]
        threading.Thread(target=_peak_rss, args=(proc.pid, stop, peak), daemon=True).start()
        counter = RunningCounter(admin)
        threading.Thread(target=counter.run, args=(stop,), daemon=True).start()
        deadline = time.monotonic() + 60
        while "operator started" not in log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        t0 = time.monotonic()
        for i in range(clusters):
            admin.create(RAYCLUSTERS.path("default"), raycluster(f"rc-{i:03d}", workers))
        done_at = created_at = None
        next_report = 5.0
        while time.monotonic() - t0 < timeout:
            if progress and time.monotonic() - t0 >= next_report:
                print(
                    f"{next_report:5.0f}s pods {counter.existing():6d} running {counter.running():6d}",
                    file=sys.stderr,
                    flush=True,
                )
                next_report += 5.0
            if created_at is None and counter.existing() >= pods:
                created_at = time.monotonic() - t0
            if counter.running() >= pods:
                done_at = time.monotonic() - t0
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        stop.set()
        create_span = _server_create_span(admin)
        text = log_file.read_text()
        match = re.search(r"kube requests: (\{.*\})", text)
        stats: dict[str, int] = json.loads(match.group(1)) if match else {}
        writes = sum(stats.get(v, 0) for v in WRITE_VERBS)
        bound = pods / qps
        return {
            "clusters": clusters,
            "workers": workers,
            "pods": pods,
            "qps": qps,
            "burst": burst,
            "concurrency": concurrency,
            "seconds_to_all_running": None if done_at is None else round(done_at, 1),
            "seconds_to_all_created": None if created_at is None else round(created_at, 1),
            "server_seconds_first_cluster_to_last_pod": create_span,
            "rate_bound_seconds": round(bound, 1),
            "ratio_to_bound": None if done_at is None else round(done_at / bound, 3),
            "running": counter.running(),
            "operator_requests": stats,
            "writes_per_pod": round(writes / pods, 3),
            "operator_peak_rss_mb": round(peak[0] / 2**20, 1),
        }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=100)
    p.add_argument("--workers", type=int, default=100)
    p.add_argument("--qps", type=float, default=50.0)
    p.add_argument("--burst", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--progress", action="store_true", help="print pods existing/running every 5 s")
    args = p.parse_args()
    result = run(
        args.clusters, args.workers, args.qps, args.burst, args.concurrency, args.timeout, args.progress
    )
    print(json.dumps(result, indent=2))
    return 0 if result["seconds_to_all_running"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
