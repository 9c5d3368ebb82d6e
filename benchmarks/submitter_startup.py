"""Startup cost of the rayside submitter vs `ray job submit --no-wait`, against one real token-auth head.

Alternating runs of both submit the same trivial job (`echo hi`) with a fresh submission id each. For each
run: time from process start to the "submitted successfully" line, time to process exit, and the process's
peak RSS (from `wait4`). Prints medians and ratios (ray / rayside) as a table.

    python benchmarks/submitter_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.rayhead import RayHead, running_head  # noqa: E402


@dataclass
class Sample:
    submitted: float  # seconds from start to the "submitted successfully" line
    exited: float  # seconds from start to process exit
    peak_rss_mb: float


def measure(cmd: list[str], env: dict[str, str]) -> Sample:
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: list[float] = []
    output: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "submitted successfully" in line and not seen:
                seen.append(time.perf_counter() - start)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    exited = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(10)
    if proc.returncode != 0 or not seen:
        raise RuntimeError(f"{cmd[:4]} failed (rc={proc.returncode}):\n{''.join(output)}")
    return Sample(seen[0], exited, usage.ru_maxrss / 1024)  # ru_maxrss is KiB on Linux


def ray_bin() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else "ray"


NO_WAIT_ECHO = ("--no-wait", "--", "echo", "hi")


def commands(head: RayHead, sid: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    base = head.client_env()
    ours = dict(
        base, RAY_DASHBOARD_ADDRESS=head.address, RAY_JOB_SUBMISSION_ID=sid, RAY_AUTH_TOKEN=head.token
    )
    theirs = dict(base, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=head.token)
    return {
        "rayside": ([sys.executable, "-m", "submitter", "--no-wait", "--", "echo", "hi"], ours),
        "ray CLI": (
            [
                ray_bin(),
                "job",
                "submit",
                "--address",
                head.url,
                "--submission-id",
                f"{sid}-ray",
                *NO_WAIT_ECHO,
            ],
            theirs,
        ),
    }


def table(results: dict[str, list[Sample]]) -> str:
    def med(name: str, attr: str) -> float:
        return float(statistics.median(float(getattr(s, attr)) for s in results[name]))

    rows = [("metric", "rayside", "ray CLI", "ray / rayside")]
    for label, attr, unit in (
        ("start -> submitted (median)", "submitted", "s"),
        ("start -> exit (median)", "exited", "s"),
        ("peak RSS (median)", "peak_rss_mb", "MB"),
    ):
        ours, theirs = med("rayside", attr), med("ray CLI", attr)
        rows.append((label, f"{ours:.2f} {unit}", f"{theirs:.2f} {unit}", f"{theirs / ours:.1f}x"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each submitter (alternating)")
    args = parser.parse_args()
    results: dict[str, list[Sample]] = {"rayside": [], "ray CLI": []}
    with running_head() as head:
        warm = commands(head, f"bench-warmup-{uuid.uuid4().hex[:6]}")
        for cmd, env in warm.values():  # first submissions pay for Ray's job agent start-up; not measured
            measure(cmd, env)
        for i in range(args.runs):
            sid = f"bench-{uuid.uuid4().hex[:10]}"
            order = list(commands(head, sid).items())
            for name, (cmd, env) in order if i % 2 == 0 else reversed(order):
                results[name].append(measure(cmd, env))
                print(f"run {i + 1}/{args.runs} {name}: {results[name][-1]}", file=sys.stderr)
    print(f"{args.runs} alternating runs each, one token-auth Ray 2.60 head, job `echo hi`, --no-wait\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
