"""RayJob controller benchmark: N K8sJobMode RayJobs on localkube's simulated kubelet, a stub dashboard.

localkube (API server, built-in Job controller, simulated kubelet) and the operator (both controllers) run
in this process; the operator's dashboard client talks real HTTP to a stub that reports every Ray job
SUCCEEDED at once, so what is measured is the operator's own path: RayCluster created and ready, submitter
Job created, Job done, RayJob Complete. Reports, per RayJob, the time from create to Running and to
Complete (median and max), and the operator's API requests and status writes per RayJob.

    python benchmarks/rayjob_startup.py --rayjobs 20 --concurrency 2
"""

from __future__ import annotations

import argparse
import json
import operator as _stdlib_operator  # noqa: F401  (imported before the repo root joins sys.path)
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

from localkube.testing import running  # noqa: E402
from ray_operator.cli import _client, install_crds  # noqa: E402
from ray_operator.raycluster.assembly import build_operator  # noqa: E402
from ray_operator.rayjob.dashboard import DashboardClient  # noqa: E402
from ray_operator.settings import load_settings  # noqa: E402
from rayside.objects import JSON, RAYJOBS  # noqa: E402


class _Succeeded(BaseHTTPRequestHandler):
    """Every `GET /api/jobs/<id>` answers SUCCEEDED."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        sid = self.path.rstrip("/").rsplit("/", 1)[-1]
        data = json.dumps({"submission_id": sid, "status": "SUCCEEDED", "message": ""}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def rayjob(name: str) -> JSON:
    template = {"spec": {"containers": [{"name": "ray", "image": "rayproject/ray:2.52.0"}]}}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "entrypoint": "python -c 'print(1)'",
            "rayClusterSpec": {"headGroupSpec": {"rayStartParams": {}, "template": template}},
        },
    }


def watch_times(
    lk: Any, count: int, created: dict[str, float], timeout: float
) -> dict[str, dict[str, float]]:
    """Poll the RayJobs until every one is Complete; the first time each was seen Running / Complete."""
    client = lk.kube_client()
    seen: dict[str, dict[str, float]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for obj in client.list(RAYJOBS.path("default"))["items"]:
            name = obj["metadata"]["name"]
            state = (obj.get("status") or {}).get("jobDeploymentStatus")
            if state in ("Running", "Complete"):
                seen.setdefault(name, {}).setdefault("Running", time.monotonic() - created[name])
            if state == "Complete":
                seen[name].setdefault("Complete", time.monotonic() - created[name])
        if sum("Complete" in times for times in seen.values()) == count:
            break
        time.sleep(0.1)
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rayjobs", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--job-run-seconds", type=float, default=1.0, help="simulated submitter Pod run time")
    args = parser.parse_args()
    stub = ThreadingHTTPServer(("127.0.0.1", 0), _Succeeded)
    stub.daemon_threads = True
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{stub.server_address[1]}"
    options = {"ready_delay": 0.2, "job_run_seconds": args.job_run_seconds}
    with running(kubelet="simulated", kubelet_options=options, controllers=True) as lk:
        install_crds(lk.kube_client())
        flags = ["--kubeconfig", str(lk.kubeconfig), "--reconcile-concurrency", str(args.concurrency)]
        settings = load_settings([*flags, "--rayjob-requeue-seconds", "1"], environ={})
        client = _client(str(lk.kubeconfig), None, qps=settings.kube_qps, burst=settings.kube_burst)
        operator = build_operator(client, settings, dashboard=DashboardClient(resolve=lambda _a: base))
        stop = threading.Event()
        thread = threading.Thread(target=operator.run, args=(stop,), daemon=True)
        thread.start()
        while not operator.manager.started.is_set():
            time.sleep(0.05)
        writer = lk.kube_client()
        created: dict[str, float] = {}
        for i in range(args.rayjobs):
            name = f"rj-{i:04d}"
            writer.create(RAYJOBS.path("default"), rayjob(name))
            created[name] = time.monotonic()
        seen = watch_times(lk, args.rayjobs, created, timeout=120 + args.rayjobs * 5)
        stop.set()
        thread.join(60)
    stub.shutdown()
    complete = [t["Complete"] for t in seen.values() if "Complete" in t]
    running_ = [t["Running"] for t in seen.values() if "Running" in t]
    requests = sum(client.stats.values())
    assert operator.rayjob is not None
    writes = operator.rayjob.reconciler.status_writes
    print(
        f"{args.rayjobs} K8sJobMode RayJobs, --reconcile-concurrency {args.concurrency}, "
        f"Job pod run {args.job_run_seconds}s"
    )
    print(f"complete: {len(complete)}/{args.rayjobs}")
    for label, values in (("create -> Running", running_), ("create -> Complete", complete)):
        if values:
            print(f"{label:20s} median {statistics.median(values):6.2f} s   max {max(values):6.2f} s")
    print(f"operator API requests per RayJob (both controllers): {requests / args.rayjobs:.1f}")
    print(f"RayJob status writes per RayJob: {writes / args.rayjobs:.1f}")
    return 0 if len(complete) == args.rayjobs else 1


if __name__ == "__main__":
    sys.exit(main())
