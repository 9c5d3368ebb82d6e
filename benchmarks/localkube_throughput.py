"""localkube throughput benchmark: creates/s, updates/s, watch event latency (10 watchers), time to list
N pods and server RSS with N simulated pods — run side by side against two servers (baseline: persistence
off; candidate: persistence on, SQLite, where every write is answered only once it is committed) and printed
as a table with the candidate/baseline ratio.

Usage: ``python benchmarks/localkube_throughput.py [--pods 10000] [--writes 3000] [--json out.json]``.
``--baseline-src DIR [--persistence on|off]`` compares this tree against another checkout's localkube
instead (e.g. ``git worktree add /tmp/base <older commit>``): same mode, baseline first, ratio this/baseline.
Each server is a separate ``python -m localkube serve`` process (``--kubelet simulated``, no controllers),
so client and server do not share a GIL; writers are separate processes too. Exit code 0 on success,
2 on bad arguments, 1 when a server does not start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from rayside.objects import CONFIGMAPS, PODS

NS = "bench"


# ---------------------------------------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100.0 * len(ordered))))
    return ordered[rank - 1]


def split(total: int, parts: int) -> list[int]:
    """``total`` items over ``parts`` workers as evenly as possible."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts) if base or i < extra]


@dataclass
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    values: dict[str, float] = field(default_factory=dict)


def format_table(metrics: list[Metric], runs: list[str]) -> str:
    """A fixed-width table: metric, one column per run, and the ratio of the last run to the first."""
    head = ["metric", *runs, f"{runs[-1]}/{runs[0]}"]
    rows = [head]
    for m in metrics:
        cells = [m.name if not m.unit else f"{m.name} [{m.unit}]"]
        cells += [f"{m.values[r]:,.1f}" if r in m.values else "-" for r in runs]
        base, cand = m.values.get(runs[0]), m.values.get(runs[-1])
        cells.append(f"{cand / base:.2f}x" if base and cand is not None else "-")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for row in rows:
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# server process
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[str]
    workdir: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mib(self) -> float:
        return float(psutil.Process(self.pid).memory_info().rss) / 2**20

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


@contextlib.contextmanager
def start_server(persist: bool, kubelet: bool = True, src: Path | None = None) -> Iterator[Server]:
    """A ``localkube serve`` process; ``src`` runs the code of another checkout (a baseline) instead."""
    workdir = Path(tempfile.mkdtemp(prefix="lk-bench-"))
    cmd = [sys.executable, "-m", "localkube", "serve", "--port", "0", "--no-controllers", "--http",
           "--kubeconfig", str(workdir / "kubeconfig"), "--state-dir", str(workdir / "state")]  # fmt: skip
    if kubelet:
        cmd += ["--kubelet", "simulated"]
    if persist:
        cmd += ["--data-dir", str(workdir / "data")]
    env = {**os.environ, "PYTHONPATH": str(src)} if src is not None else None
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=src
    )
    try:
        url = _await_url(proc)
        yield Server(url, proc, workdir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _await_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError(f"localkube exited with code {proc.returncode} before listening")
        if line.startswith("localkube listening on "):
            url = line.split()[-1]
            threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()
            return url
    raise RuntimeError("localkube did not start within 60 s")


# ---------------------------------------------------------------------------------------------------------
# load generators (module-level so worker processes can run them)
# ---------------------------------------------------------------------------------------------------------


def _configmap(name: str, payload: int = 256) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"bench": "1"}},
            "data": {"payload": "x" * payload}}  # fmt: skip


def _pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}  # fmt: skip


def _create_batch(args: tuple[str, str, str, int, int]) -> int:
    url, kind, prefix, start, count = args
    session = requests.Session()
    resource = PODS if kind == "pod" else CONFIGMAPS
    build = _pod if kind == "pod" else _configmap
    ok = 0
    for i in range(start, start + count):
        resp = session.post(f"{url}{resource.path(NS)}", json=build(f"{prefix}-{i}"))
        ok += resp.status_code == 201
    return ok


def _update_batch(args: tuple[str, str, int, int]) -> int:
    url, prefix, start, count = args
    session = requests.Session()
    ok = 0
    for i in range(start, start + count):
        body = {"data": {"payload": "y" * 256, "n": str(i)}}
        resp = session.patch(f"{url}{CONFIGMAPS.path(NS, f'{prefix}-{i}')}", json=body,
                             headers={"Content-Type": "application/merge-patch+json"})  # fmt: skip
        ok += resp.status_code == 200
    return ok


def timed_parallel(pool: Any, fn: Callable[[Any], int], jobs: list[Any]) -> tuple[float, int]:
    """(seconds, successful requests) for running ``jobs`` on the pool."""
    start = time.perf_counter()
    done = sum(pool.map(fn, jobs))
    return time.perf_counter() - start, done


def write_throughput(server: Server, pool: Any, workers: int, writes: int) -> dict[str, float]:
    """Creates/s and updates/s of ConfigMaps with ``workers`` client processes, plus the server CPU time
    per write (independent of how busy the machine is) and the writes/s one server core could sustain."""
    counts = split(writes, workers)
    spans = list(zip([sum(counts[:i]) for i in range(len(counts))], counts, strict=True))
    out: dict[str, float] = {}
    cpu = server.cpu_seconds()
    secs, ok = timed_parallel(pool, _create_batch, [(server.url, "cm", "cm", s, c) for s, c in spans])
    if ok != writes:
        print(f"warning: {writes - ok} creates failed", file=sys.stderr)
    out["creates/s"] = ok / secs
    out["server CPU per create (ms)"] = (server.cpu_seconds() - cpu) * 1000 / max(ok, 1)
    cpu = server.cpu_seconds()
    secs, ok = timed_parallel(pool, _update_batch, [(server.url, "cm", s, c) for s, c in spans])
    out["updates/s"] = ok / secs
    out["server CPU per update (ms)"] = (server.cpu_seconds() - cpu) * 1000 / max(ok, 1)
    out["writes/s per server core (est.)"] = 2000 / (
        out["server CPU per create (ms)"] + out["server CPU per update (ms)"]
    )
    return out


# ---------------------------------------------------------------------------------------------------------
# watch latency
# ---------------------------------------------------------------------------------------------------------


def _watcher(
    url: str, rv: str, want: int, sent: dict[str, float], out: list[float], ready: threading.Event
) -> None:
    params = {"watch": "true", "resourceVersion": rv, "labelSelector": "lat=1", "timeoutSeconds": "120"}
    with requests.get(f"{url}{CONFIGMAPS.path(NS)}", params=params, stream=True, timeout=130) as resp:
        ready.set()
        seen = 0
        for line in resp.iter_lines():
            now = time.perf_counter()
            if not line:
                continue
            name = json.loads(line)["object"]["metadata"]["name"]
            if name in sent:
                out.append((now - sent[name]) * 1000.0)
            seen += 1
            if seen >= want:
                return


def watch_latency(server: Server, watchers: int, events: int, rate: float) -> tuple[float, float]:
    """(p50 ms, p99 ms) from sending a create to each of ``watchers`` receiving its ADDED event."""
    session = requests.Session()
    rv = session.get(f"{server.url}{CONFIGMAPS.path(NS)}", params={"limit": "1"}).json()[
        "metadata"]["resourceVersion"]  # fmt: skip
    sent: dict[str, float] = {}
    results: list[list[float]] = [[] for _ in range(watchers)]
    readies = [threading.Event() for _ in range(watchers)]
    threads = [threading.Thread(target=_watcher, args=(server.url, rv, events, sent, results[i], readies[i]),
                                daemon=True) for i in range(watchers)]  # fmt: skip
    for t in threads:
        t.start()
    for r in readies:
        r.wait(10)
    interval = 1.0 / rate
    next_at = time.perf_counter()
    for i in range(events):
        body = _configmap(f"lat-{i}", 64)
        body["metadata"]["labels"]["lat"] = "1"
        sent[body["metadata"]["name"]] = time.perf_counter()
        session.post(f"{server.url}{CONFIGMAPS.path(NS)}", json=body)
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    for t in threads:
        t.join(timeout=30)
    samples = [v for r in results for v in r]
    return percentile(samples, 50), percentile(samples, 99)


# ---------------------------------------------------------------------------------------------------------
# pods: create N, wait until the simulated kubelet runs them, list them, measure RSS
# ---------------------------------------------------------------------------------------------------------


def running_count(url: str) -> int:
    resp = requests.get(f"{url}{PODS.path(NS)}", params={"fieldSelector": "status.phase=Running"})
    return len(resp.json()["items"])


def pods_phase(server: Server, pool: Any, workers: int, pods: int, settle_timeout: float) -> dict[str, float]:
    counts = split(pods, workers)
    starts = [sum(counts[:i]) for i in range(len(counts))]
    jobs = [(server.url, "pod", "p", s, c) for s, c in zip(starts, counts, strict=True)]
    secs, ok = timed_parallel(pool, _create_batch, jobs)
    out = {"pod creates/s": ok / secs}
    start = time.perf_counter()
    while running_count(server.url) < ok and time.perf_counter() - start < settle_timeout:
        time.sleep(1.0)
    out["pods running after (s)"] = time.perf_counter() - start + secs
    session = requests.Session()
    t0 = time.perf_counter()
    items = session.get(f"{server.url}/api/v1/pods").json()["items"]
    out["list all pods (ms)"] = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    total, cont = 0, ""
    while True:
        params = {"limit": "500", **({"continue": cont} if cont else {})}
        page = session.get(f"{server.url}/api/v1/pods", params=params).json()
        total += len(page["items"])
        cont = page["metadata"].get("continue", "")
        if not cont:
            break
    out["list pods, pages of 500 (ms)"] = (time.perf_counter() - t0) * 1000
    if len(items) < pods or total < pods:
        print(f"warning: listed {len(items)}/{total} of {pods} pods", file=sys.stderr)
    out["server RSS (MiB)"] = server.rss_mib()
    return out


# ---------------------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------------------

METRICS = [
    Metric("creates/s", "ConfigMaps", True),
    Metric("updates/s", "merge-patch", True),
    Metric("server CPU per create (ms)", "", False),
    Metric("server CPU per update (ms)", "", False),
    Metric("writes/s per server core (est.)", "", True),
    Metric("watch p50 (ms)", "10 watchers", False),
    Metric("watch p99 (ms)", "10 watchers", False),
    Metric("pod creates/s", "", True),
    Metric("pods running after (s)", "", False),
    Metric("list all pods (ms)", "one request", False),
    Metric("list pods, pages of 500 (ms)", "kubectl-like", False),
    Metric("idle RSS (MiB)", "", False),
    Metric("server RSS (MiB)", "with the pods", False),
]


def run_one(
    label: str, persist: bool, args: argparse.Namespace, pool: Any, src: Path | None = None
) -> dict[str, float]:
    with start_server(persist, src=src) as server:
        requests.post(f"{server.url}/api/v1/namespaces", json={"metadata": {"name": NS}}).raise_for_status()
        out: dict[str, float] = {"idle RSS (MiB)": server.rss_mib()}
        profiler = _start_profiler(server, args, label)
        out.update(write_throughput(server, pool, args.workers, args.writes))
        if profiler is not None:
            profiler.wait()
        out["watch p50 (ms)"], out["watch p99 (ms)"] = watch_latency(
            server, args.watchers, args.events, args.rate
        )
        out.update(pods_phase(server, pool, args.workers, args.pods, args.settle_timeout))
        print(f"{label}: " + ", ".join(f"{k}={v:,.1f}" for k, v in out.items()), file=sys.stderr)
        return out


def _start_profiler(server: Server, args: argparse.Namespace, label: str) -> subprocess.Popen[bytes] | None:
    if not args.profile:
        return None
    out = Path(args.profile) / f"localkube-{label}.speedscope.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "py-spy",
        "record",
        "-p",
        str(server.pid),
        "-d",
        "5",
        "-f",
        "speedscope",
        "-o",
        str(out),
        "--nonblocking",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--writes", type=int, default=3000, help="ConfigMaps to create and then update")
    p.add_argument("--workers", type=int, default=4, help="client processes for writes")
    p.add_argument("--watchers", type=int, default=10)
    p.add_argument("--events", type=int, default=300, help="creates observed by the watchers")
    p.add_argument("--rate", type=float, default=100.0, help="creates/s while measuring watch latency")
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--settle-timeout", type=float, default=300.0)
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    p.add_argument("--profile", type=Path, default=None, help="py-spy the server during creates into DIR")
    p.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        metavar="DIR",
        help="compare against the localkube of another checkout (e.g. a git worktree of an older commit) "
        "instead of persistence off vs on; both runs use --persistence",
    )
    p.add_argument("--persistence", choices=("on", "off"), default="on", help="with --baseline-src")
    args = p.parse_args(argv)
    for name in ("writes", "workers", "watchers", "events", "pods"):
        if getattr(args, name) < 1:
            p.error(f"--{name}: {getattr(args, name)} is not allowed (must be >= 1)")
    if args.baseline_src is not None and not (args.baseline_src / "localkube" / "__init__.py").is_file():
        p.error(f"--baseline-src: {str(args.baseline_src)!r} is not a checkout with a localkube/ package")
    return args


def planned_runs(args: argparse.Namespace) -> dict[str, tuple[bool, Path | None]]:
    """Label -> (persistence, source tree) of each run, baseline first (the ratio is last/first)."""
    if args.baseline_src is None:
        return {"persistence off": (False, None), "persistence on": (True, None)}
    persist = args.persistence == "on"
    return {"baseline": (persist, args.baseline_src.resolve()), "this tree": (persist, None)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = planned_runs(args)
    metrics = [Metric(m.name, m.unit, m.higher_is_better) for m in METRICS]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        for label, (persist, src) in runs.items():
            try:
                result = run_one(label, persist, args, pool, src)
            except RuntimeError as exc:
                print(f"localkube_throughput: {exc}", file=sys.stderr)
                return 1
            for m in metrics:
                if m.name in result:
                    m.values[label] = result[m.name]
    print(format_table(metrics, list(runs)))
    if args.json:
        args.json.write_text(json.dumps({m.name: m.values for m in metrics}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
