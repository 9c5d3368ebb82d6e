"""`rayside up` as a user runs it: a subprocess on the example RayJob (real Ray under the process kubelet),
a failing job, SIGTERM in the middle, and a bad file. One Ray cluster at a time (the machine is small)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.support import kube

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root for pod netns")]
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rayjob.yaml"


def up(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rayside.cli", "up", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def finish(proc: subprocess.Popen[str], timeout: float = 400) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def job_file(tmp_path: Path, entrypoint: str, name: str) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["entrypoint"] = entrypoint
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_example_rayjob_succeeds_with_the_drivers_output() -> None:
    code, out = finish(up(str(EXAMPLE)))
    assert code == 0, out
    assert "sum of squares: 285" in out and "job SUCCEEDED" in out, out


def test_failing_job_exits_1_with_the_drivers_message(tmp_path: Path) -> None:
    path = job_file(tmp_path, "python -c \"import sys; print('about to fail'); sys.exit(3)\"", "failing")
    code, out = finish(up(str(path)))
    assert code == 1, out
    assert "about to fail" in out and "job FAILED" in out, out


def test_sigterm_stops_everything_and_exits_143(tmp_path: Path) -> None:
    path = job_file(
        tmp_path, "python -c \"import time; print('sleeping', flush=True); time.sleep(600)\"", "sleepy"
    )
    proc = up(str(path))
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    kube.wait_for(lambda: any("sleeping" in line for line in lines), 300, "the driver's output", interval=0.5)
    descendants = psutil.Process(proc.pid).children(recursive=True)
    assert any("ray" in " ".join(p.cmdline()) for p in descendants if p.is_running()), descendants
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == 143, "".join(lines)
    deadline = time.monotonic() + 30
    alive = descendants
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.5)
    assert not alive, [(p.pid, p.cmdline()) for p in alive]


def test_bad_file_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: x}\nspec: {entrypoint: [1]}\n")
    code, out = finish(up(str(path)), timeout=60)
    assert code == 2
    assert out.strip().count("\n") == 0 and "bad.yaml#0: field spec.entrypoint" in out, out
