"""Measure (and optionally profile) the server CPU cost of localkube's HTTP write path.

Usage: ``python benchmarks/localkube_profile.py [--writes 2000] [--workers 4] [--rounds 1] [--persist]
[--pyspy OUT.txt] [--watchers N]``. Starts ``python -m localkube serve --http --no-controllers`` (no
kubelet), optionally opens ``--watchers`` watches on the ConfigMaps, creates
``--writes`` ConfigMaps and merge-patches each once from ``--workers`` client processes (the same load as
``localkube_throughput.py``), and prints the server's CPU milliseconds per create/update (psutil
``cpu_times`` delta, independent of how busy the machine is), the wall-clock rates and the load average.
``--pyspy`` records a py-spy profile of the server (collapsed stacks, ``--idle`` off) over both phases.
Exit code 0 on success, 1 when the server does not start.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import requests

from rayside.objects import CONFIGMAPS

_spec = importlib.util.spec_from_file_location("lk_tp", Path(__file__).with_name("localkube_throughput.py"))
assert _spec is not None and _spec.loader is not None
tp: Any = importlib.util.module_from_spec(_spec)
sys.modules["lk_tp"] = tp
_spec.loader.exec_module(tp)


def one_round(server: Any, pool: Any, workers: int, writes: int, prefix: str) -> dict[str, float]:
    counts = tp.split(writes, workers)
    spans = list(zip([sum(counts[:i]) for i in range(len(counts))], counts, strict=True))
    out: dict[str, float] = {}
    cpu = server.cpu_seconds()
    secs, ok = tp.timed_parallel(pool, tp._create_batch, [(server.url, "cm", prefix, s, c) for s, c in spans])
    out["create_cpu_ms"] = (server.cpu_seconds() - cpu) * 1000 / max(ok, 1)
    out["creates_per_s"] = ok / secs
    cpu = server.cpu_seconds()
    secs, ok = tp.timed_parallel(pool, tp._update_batch, [(server.url, prefix, s, c) for s, c in spans])
    out["update_cpu_ms"] = (server.cpu_seconds() - cpu) * 1000 / max(ok, 1)
    out["updates_per_s"] = ok / secs
    out["load1"] = os.getloadavg()[0]
    return out


def _watch(url: str, stop: threading.Event) -> None:
    path = f"{url}{CONFIGMAPS.path(tp.NS)}?watch=1"
    with requests.get(path, stream=True, timeout=600) as resp:
        for _ in resp.iter_lines():
            if stop.is_set():
                return


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writes", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--persist", action="store_true")
    ap.add_argument("--pyspy", type=Path, default=None)
    ap.add_argument("--watchers", type=int, default=0, help="open watches on the ConfigMaps during the load")
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    with tp.start_server(args.persist, kubelet=False) as server, ctx.Pool(args.workers) as pool:
        ns = {"metadata": {"name": tp.NS}}
        requests.post(f"{server.url}/api/v1/namespaces", json=ns, timeout=30).raise_for_status()
        stop = threading.Event()
        for _ in range(args.watchers):
            threading.Thread(target=_watch, args=(server.url, stop), daemon=True).start()
        spy = None
        if args.pyspy is not None:
            cmd = ["py-spy", "record", "-p", str(server.pid), "-f", "raw", "-o", str(args.pyspy), "-r", "200"]
            spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for r in range(args.rounds):
            res = one_round(server, pool, args.workers, args.writes, f"cm{r}")
            print(" ".join(f"{k}={v:.2f}" for k, v in res.items()), flush=True)
        stop.set()
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
