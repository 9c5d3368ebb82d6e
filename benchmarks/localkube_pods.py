"""localkube pod-pipeline benchmark: pods created at a fixed rate, bound and made Running by the simulated
kubelet in its own process; reports create->Running latency and the API server's CPU seconds per pod.

Usage: ``python benchmarks/localkube_pods.py [--rate 50] [--seconds 60] [--ready-delay 0.5]
[--baseline-src DIR] [--json out.json]``. Three kinds of processes, as in the operator benchmark:
``python -m localkube serve --http --no-controllers`` (no kubelet), ``python -m localkube.kubelet``
(simulated, binds and runs the pods), and client processes: one creator (fixed rate, 4 threads, a pod
shaped like a Ray worker), one watcher that records when each pod is first seen Running, and one
informer-like watcher of all pods (like the operator's), i.e. four pod watches on the server.
``--baseline-src DIR`` also runs the whole thing with the server from DIR (a checkout holding ``localkube/``
and ``rayside/``, e.g. ``git archive <commit> localkube rayside | tar -x -C DIR``) and prints both side by
side; with ``--baseline-kubelet-in-server`` that baseline runs its kubelet inside the server process (the
layout before ``python -m localkube.kubelet`` existed; "server CPU" then includes the kubelet's).
``--informers N`` adds watchers, ``--pyspy OUT`` records a py-spy profile of the server.
Exit code 0 on success, 2 on bad arguments, 1 when a process does not start.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests

from rayside.objects import PODS

ROOT = Path(__file__).resolve().parent.parent
NS = "default"
_spec = importlib.util.spec_from_file_location("lk_tp", Path(__file__).with_name("localkube_throughput.py"))
assert _spec is not None and _spec.loader is not None
tp: Any = importlib.util.module_from_spec(_spec)
sys.modules["lk_tp"] = tp
_spec.loader.exec_module(tp)


def worker_pod(name: str) -> dict[str, Any]:
    """A pod about the size of a RayCluster worker pod (labels, env, resources, probes, volumes)."""
    env: list[dict[str, Any]] = [{"name": f"RAY_VAR_{i}", "value": f"value-{i}"} for i in range(8)]
    env.append({"name": "RAY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    probe = {"exec": {"command": ["bash", "-c", "wget -T 2 -q -O- http://localhost:52365/api/healthz"]},
             "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 10}  # fmt: skip
    container = {
        "name": "ray-worker", "image": "rayproject/ray:2.60.0",
        "command": ["/bin/bash", "-lc", "--"], "args": ["ray start --address=head-svc:6379 --block"],
        "env": env, "ports": [{"containerPort": 8080, "name": "metrics", "protocol": "TCP"}],
        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "1", "memory": "2Gi"}},
        "readinessProbe": probe, "livenessProbe": probe,
        "volumeMounts": [{"name": "shared-mem", "mountPath": "/dev/shm"}],
    }  # fmt: skip
    labels = {"ray.io/cluster": "bench", "ray.io/node-type": "worker", "ray.io/group": "workers",
              "ray.io/is-ray-node": "yes", "app.kubernetes.io/created-by": "bench"}  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": {"ray.io/ft-enabled": "false"}},
        "spec": {"containers": [container], "restartPolicy": "Never",
                 "volumes": [{"name": "shared-mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}]},
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# client processes (module-level so multiprocessing can run them)
# ---------------------------------------------------------------------------------------------------------


def _creator(url: str, rate: float, count: int, out: Any) -> None:
    """Create ``count`` pods at ``rate``/s from 4 threads; put {name: send time} on ``out``."""
    sent: dict[str, float] = {}
    lock = threading.Lock()
    next_index = [0]
    start = time.time() + 0.2

    def run() -> None:
        session = requests.Session()
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= count:
                return
            delay = start + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
            name = f"pod-{i:05d}"
            t = time.time()
            resp = session.post(f"{url}{PODS.path(NS)}", json=worker_pod(name), timeout=60)
            if resp.status_code == 201:
                with lock:
                    sent[name] = t

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(sent)


def _watch_lines(url: str, path: str, stop_after: float) -> Iterator[dict[str, Any]]:
    rv = requests.get(f"{url}{path}", timeout=60).json()["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": str(int(stop_after))}
    with requests.get(f"{url}{path}", params=params, stream=True, timeout=stop_after + 30) as resp:
        for line in resp.iter_lines():
            if line:
                yield json.loads(line)


def _running_watcher(url: str, count: int, seconds: float, ready: Any, out: Any) -> None:
    """Record when each pod is first seen Running; put {name: time} on ``out``."""
    seen: dict[str, float] = {}
    ready.set()
    with contextlib.suppress(requests.RequestException):
        for event in _watch_lines(url, PODS.path(NS), seconds):
            obj = event.get("object") or {}
            if (obj.get("status") or {}).get("phase") == "Running":
                name = obj["metadata"]["name"]
                seen.setdefault(name, time.time())
                if len(seen) >= count:
                    break
    out.put(seen)


def _informer(url: str, seconds: float, ready: Any) -> None:
    """An informer-like watch of all pods that decodes every event (the operator's cost on the server)."""
    ready.set()
    with contextlib.suppress(requests.RequestException):
        for _ in _watch_lines(url, PODS.path(), seconds):
            pass


# ---------------------------------------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Procs:
    url: str
    server: subprocess.Popen[str]
    kubelet: subprocess.Popen[str] | None


def _await_line(proc: subprocess.Popen[str], prefix: str, what: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()
            return line.strip()
    raise RuntimeError(f"{what} exited with code {proc.wait()} before it was ready")


@contextlib.contextmanager
def cluster(server_src: Path, ready_delay: float, in_server: bool = False) -> Iterator[Procs]:
    """Server and kubelet processes; ``in_server``: the kubelet inside the server process (the layout
    before the kubelet had its own process; the server's default ready delay of 0.5 s then applies)."""
    work = Path(tempfile.mkdtemp(prefix="lk-pods-"))
    server_env = {**os.environ, "PYTHONPATH": str(server_src)}
    serve = [sys.executable, "-m", "localkube", "serve", "--port", "0", "--http", "--no-controllers",
             "--state-dir", str(work / "state"), "--kubeconfig", str(work / "kubeconfig")]  # fmt: skip
    if in_server:
        serve += ["--kubelet", "simulated"]
        if (server_src / "localkube" / "kubelet" / "child.py").exists():
            serve += ["--no-kubelet-process"]
    procs: list[subprocess.Popen[str]] = []
    try:
        server = subprocess.Popen(serve, stdout=subprocess.PIPE, text=True, cwd=server_src, env=server_env)
        procs.append(server)
        url = _await_line(server, "localkube listening on ", "localkube serve").split()[-1]
        if in_server:
            yield Procs(url, server, None)
            return
        kubelet_cmd = [sys.executable, "-m", "localkube.kubelet", "--kubeconfig", str(work / "kubeconfig"),
                       "--ready-delay", str(ready_delay), "--state-dir", str(work / "kubelet")]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        kubelet = subprocess.Popen(kubelet_cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        procs.append(kubelet)
        _await_line(kubelet, "kubelet ", "the kubelet")
        yield Procs(url, server, kubelet)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def _cpu(proc: subprocess.Popen[str] | None) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    if proc is None:
        return 0.0, 0.0
    times = psutil.Process(proc.pid).cpu_times()
    return float(times.user), float(times.system)


def _profile(pid: int, args: argparse.Namespace, src: Path) -> subprocess.Popen[bytes] | None:
    """py-spy (collapsed stacks) of the server over the creating phase, if --pyspy was given."""
    if args.pyspy is None:
        return None
    out = args.pyspy.with_name(f"{args.pyspy.stem}-{src.name}{args.pyspy.suffix}")
    cmd = ["py-spy", "record", "--pid", str(pid), "--duration", str(int(args.seconds)), "--format", "raw",
           "-o", str(out), "--gil"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_one(server_src: Path, args: argparse.Namespace, in_server: bool = False) -> dict[str, float]:
    count = int(args.rate * args.seconds)
    budget = args.seconds + 120.0
    ctx = mp.get_context("spawn")
    with cluster(server_src, args.ready_delay, in_server) as c:
        sent_q, seen_q = ctx.Queue(), ctx.Queue()
        ready = [ctx.Event() for _ in range(1 + args.informers)]
        watcher = ctx.Process(target=_running_watcher, args=(c.url, count, budget, ready[0], seen_q))
        informers = [ctx.Process(target=_informer, args=(c.url, budget, ev), daemon=True) for ev in ready[1:]]
        for p in (watcher, *informers):
            p.start()
        for ev in ready:
            ev.wait(60)
        time.sleep(1.0)  # both watches open
        cpu0, kcpu0 = _cpu(c.server), _cpu(c.kubelet)
        creator = ctx.Process(target=_creator, args=(c.url, args.rate, count, sent_q))
        creator.start()
        spy = _profile(c.server.pid, args, server_src)
        sent: dict[str, float] = sent_q.get(timeout=budget)
        seen: dict[str, float] = seen_q.get(timeout=budget)
        cpu1, kcpu1 = _cpu(c.server), _cpu(c.kubelet)
        if spy is not None:
            spy.wait()
        for p in (creator, watcher, *informers):
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    lat = [seen[n] - t for n, t in sent.items() if n in seen]
    return {
        "pods created": float(len(sent)),
        "pods Running": float(len(lat)),
        "create->Running p50 (ms)": 1000 * tp.percentile(lat, 50),
        "create->Running p99 (ms)": 1000 * tp.percentile(lat, 99),
        "create->Running max (ms)": 1000 * max(lat, default=0.0),
        "server CPU per pod (ms)": (sum(cpu1) - sum(cpu0)) * 1000 / max(1, len(sent)),
        "  of which system (ms)": (cpu1[1] - cpu0[1]) * 1000 / max(1, len(sent)),
        "kubelet CPU per pod (ms)": (sum(kcpu1) - sum(kcpu0)) * 1000 / max(1, len(sent)),
    }


METRICS = [
    ("pods created", False),
    ("pods Running", True),
    ("create->Running p50 (ms)", False),
    ("create->Running p99 (ms)", False),
    ("create->Running max (ms)", False),
    ("server CPU per pod (ms)", False),
    ("  of which system (ms)", False),
    ("kubelet CPU per pod (ms)", False),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rate", type=float, default=50.0, help="pod creates per second (default 50)")
    p.add_argument("--seconds", type=float, default=60.0, help="how long to create pods (default 60)")
    p.add_argument("--ready-delay", type=float, default=0.5, help="kubelet ready delay (default 0.5)")
    p.add_argument("--baseline-src", type=Path, default=None, help="also run the server from this checkout")
    p.add_argument(
        "--baseline-kubelet-in-server",
        action="store_true",
        help="run the baseline with its kubelet inside the server process (the old layout)",
    )
    p.add_argument("--informers", type=int, default=1, help="informer-like watchers of all pods (default 1)")
    p.add_argument("--pyspy", type=Path, default=None, help="record a py-spy profile of the server here")
    p.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    args = p.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.ready_delay < 0 or args.informers < 0:
        p.error("--rate and --seconds must be > 0, --ready-delay and --informers >= 0")
    if args.baseline_src is not None and not (args.baseline_src / "localkube").is_dir():
        p.error(f"--baseline-src {args.baseline_src}: no localkube/ package there")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = [("before", args.baseline_src)] if args.baseline_src is not None else []
    runs.append(("after" if runs else "current", ROOT))
    results: dict[str, dict[str, float]] = {}
    for label, src in runs:
        print(f"{label}: {args.rate:g} pods/s for {args.seconds:g} s (server from {src})", flush=True)
        try:
            in_server = label == "before" and args.baseline_kubelet_in_server
            results[label] = run_one(src, args, in_server)
        except RuntimeError as exc:
            print(f"localkube_pods: {exc}", file=sys.stderr)
            return 1
    metrics = [tp.Metric(name, "", better) for name, better in METRICS]
    for m in metrics:
        m.values = {label: results[label][m.name] for label in results}
    print(tp.format_table(metrics, list(results)))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
