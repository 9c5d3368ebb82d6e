"""Start and stop a real, isolated Ray head with token auth, for tests and benchmarks.

Each head gets free ports, its own `--temp-dir` and its own `HOME` (so no `~/.ray/auth_token` leaks in or
out) and is stopped by PID: every process whose command line or environment carries the head's unique temp
dir is terminated. `ray stop --force` is never used; it would kill every Ray process on the machine.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests


class HeadStartError(RuntimeError):
    """The head exited or never became ready during start-up."""


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ray_bin() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else (shutil.which("ray") or "ray")


@dataclass
class RayHead:
    """A running Ray head. `address` is `127.0.0.1:<dashboard port>` (no scheme), as KubeRay passes it."""

    token: str
    dashboard_port: int
    gcs_port: int
    temp_dir: Path
    home: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    extra_pids: list[int] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.dashboard_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get_job(self, submission_id: str) -> requests.Response:
        return requests.get(f"{self.url}/api/jobs/{submission_id}", headers=self.headers(), timeout=10)

    def list_jobs(self) -> list[dict[str, object]]:
        r = requests.get(f"{self.url}/api/jobs/", headers=self.headers(), timeout=10)
        r.raise_for_status()
        jobs: list[dict[str, object]] = r.json()
        return jobs

    def wait_job_terminal(self, submission_id: str, timeout: float = 120) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.get_job(submission_id)
            if r.status_code == 200 and r.json()["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
                job: dict[str, object] = r.json()
                return job
            time.sleep(0.5)
        raise TimeoutError(f"job {submission_id} not terminal after {timeout}s")

    def client_env(self) -> dict[str, str]:
        """Environment for a client process: isolated HOME, no Ray token unless the caller adds one."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env["HOME"] = str(self.home)
        return env

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self, num_cpus: int = 1, timeout: float = 120, attempts: int = 3) -> None:
        """Start the head; on a loaded machine Ray gives its raylet only 30 s (hard-coded) to register and
        then exits, so a head that dies during start-up is stopped and retried on fresh ports."""
        for attempt in range(1, attempts + 1):
            self._launch(num_cpus)
            try:
                self.wait_ready(timeout)
                return
            except HeadStartError:
                self.stop()
                if attempt == attempts:
                    raise
                self.dashboard_port, self.gcs_port = free_port(), free_port()

    def _launch(self, num_cpus: int) -> None:
        env = self.client_env()
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token, RAY_USAGE_STATS_ENABLED="0")
        # Worker ports come from a block below the kernel's ephemeral range (where free_port() picks the
        # others), so they never collide with this head's own ports.
        low = random.randrange(100, 320) * 100
        cmd = [
            _ray_bin(), "start", "--head", "--block", f"--num-cpus={num_cpus}",
            "--dashboard-host=127.0.0.1", "--node-ip-address=127.0.0.1",
            f"--port={self.gcs_port}", f"--dashboard-port={self.dashboard_port}",
            f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}",
            f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--min-worker-port={low}", f"--max-worker-port={low + 99}",
            f"--temp-dir={self.temp_dir}", "--disable-usage-stats",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until `ray start --block` says it is blocking (printed after the runtime started, so after the
        raylet registered) and the dashboard answers with the token."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise HeadStartError(f"ray head exited during start-up; log:\n{self._log_tail()}")
            if "will now block forever" in self.log_path.read_text(errors="replace"):
                with contextlib.suppress(requests.RequestException):
                    r = requests.get(f"{self.url}/api/version", headers=self.headers(), timeout=2)
                    if r.status_code == 200:
                        return
            time.sleep(0.3)
        raise HeadStartError(f"ray head not ready after {timeout}s; log:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def own_processes(self) -> list[psutil.Process]:
        """Every live process that belongs to this head (found by its unique temp dir or session)."""
        marker = str(self.temp_dir)
        found: list[psutil.Process] = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                cmd = " ".join(p.info["cmdline"] or [])
                if marker in cmd or (self.proc is not None and os.getpgid(p.pid) == self.proc.pid):
                    found.append(p)
            except (psutil.Error, ProcessLookupError, PermissionError):
                continue
        return found

    def stop(self, grace: float = 5) -> None:
        """Stop this head's processes by PID: SIGTERM all of them, wait `grace`, then SIGKILL the rest."""
        procs = self.own_processes()
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                procs.append(psutil.Process(self.proc.pid))
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _gone, alive = psutil.wait_procs(procs, timeout=grace)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(alive, timeout=5)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)


def new_head(base: Path | None = None) -> RayHead:
    root = Path(tempfile.mkdtemp(prefix="rh", dir=base or "/tmp"))
    home = root / "home"
    home.mkdir()
    return RayHead(
        token=secrets.token_hex(32),
        dashboard_port=free_port(),
        gcs_port=free_port(),
        temp_dir=root / "ray",
        home=home,
        log_path=root / "head.log",
    )


@contextlib.contextmanager
def running_head(num_cpus: int = 1) -> Iterator[RayHead]:
    head = new_head()
    try:
        head.start(num_cpus=num_cpus)
        yield head
    finally:
        head.stop()
        shutil.rmtree(head.temp_dir.parent, ignore_errors=True)
