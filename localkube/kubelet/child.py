"""Run the kubelet as a child process of `LocalKube` (`Settings.kubelet_process`): the API server and the
kubelet then do not share one Python interpreter (GIL), as with a real node agent.

`kubelet_command` (pure) builds the command line; `KubeletProcess` starts it, waits for its readiness line,
restarts it when it dies (with back-off, bounded per minute) and stops it with SIGTERM (SIGKILL after a
grace period) when the server stops.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)
# kubelet options that the kubelet CLI accepts as flags (option name -> flag)
CHILD_FLAGS = {"node_name": "--node-name", "ready_delay": "--ready-delay", "qps": "--qps", "burst": "--burst"}


class ChildError(RuntimeError):
    """The kubelet process could not be started or did not become ready."""


def kubelet_command(kubeconfig: Path, mode: str, state_dir: Path, options: dict[str, Any]) -> list[str]:
    """The argv of a kubelet child process; options the CLI has no flag for raise `ChildError`."""
    unknown = sorted(set(options) - set(CHILD_FLAGS))
    if unknown:
        raise ChildError(
            f"kubelet option(s) {', '.join(unknown)} cannot be passed to a kubelet process "
            f"(allowed: {', '.join(sorted(CHILD_FLAGS))}); run the kubelet in-process instead"
        )
    cmd = [sys.executable, "-m", "localkube.kubelet", "--kubeconfig", str(kubeconfig), "--mode", mode]
    cmd += ["--state-dir", str(state_dir), "--exit-with-parent"]
    for key in sorted(options):
        cmd += [CHILD_FLAGS[key], str(options[key])]
    return cmd


class KubeletProcess:
    """A `python -m localkube.kubelet` child; `start()` returns once it printed its readiness line.

    A supervisor thread notices when the child dies while the server runs (SIGKILLed, crashed): it logs one
    WARNING line and starts a new child after a back-off (`restart_backoff` doubling to `restart_backoff_max`,
    reset once a child ran for a minute), at most `max_restarts_per_minute` times in any 60 s.
    """

    def __init__(
        self,
        cmd: list[str],
        *,
        ready_timeout: float = 60.0,
        stop_timeout: float = 15.0,
        restart_backoff: float = 1.0,
        restart_backoff_max: float = 30.0,
        max_restarts_per_minute: int = 5,
        clock: Callable[[], float] = time.monotonic,
        env: dict[str, str] | None = None,
    ) -> None:
        self.cmd = cmd
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.restart_backoff = restart_backoff
        self.restart_backoff_max = restart_backoff_max
        self.max_restarts_per_minute = max_restarts_per_minute
        self.clock = clock
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.restarts = 0
        self._ready_seen = False
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        self._launch()
        self._supervisor = threading.Thread(
            target=self._supervise, name="kubelet-child-supervisor", daemon=True
        )
        self._supervisor.start()

    def _launch(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self._ready_seen = False
            self.proc = proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, text=True, env=self.env)
        ready = threading.Event()
        assert proc.stdout is not None
        threading.Thread(
            target=self._read, args=(proc.stdout, ready), name="kubelet-child-out", daemon=True
        ).start()
        if not (ready.wait(self.ready_timeout) and self._ready_seen):
            timed_out = not ready.is_set()
            self._end(proc)
            code = proc.wait()
            why = f"did not become ready in {self.ready_timeout:.0f}s" if timed_out else f"exited ({code})"
            raise ChildError(f"the kubelet process {why}; see its message above")
        log.debug("kubelet process %d ready", proc.pid)

    def _read(self, stream: IO[str], ready: threading.Event) -> None:
        for line in stream:
            if line.startswith("kubelet ") and " ready (" in line:
                self._ready_seen = True
                ready.set()
            log.debug("kubelet process: %s", line.rstrip())
        ready.set()  # EOF: the process ended; start() checks poll()

    def _supervise(self) -> None:
        started = self.clock()
        restarts: list[float] = []  # when each restart happened (the last minute's)
        delay = self.restart_backoff
        while not self._stopping.is_set():
            proc = self.proc
            if proc is None:
                return
            code = proc.wait()
            if self._stopping.is_set():
                return
            now = self.clock()
            if now - started >= 60.0:
                delay = self.restart_backoff  # it ran well for a while: not a crash loop
            restarts = [t for t in restarts if now - t < 60.0]
            wait = restart_delay(delay, restarts, now, self.max_restarts_per_minute)
            log.warning(
                "kubelet process %d ended (%s); restarting it in %.1fs", proc.pid, exit_text(code), wait
            )
            if self._stopping.wait(wait):
                return
            restarts.append(self.clock())
            delay = min(delay * 2, self.restart_backoff_max)
            started = self.clock()
            try:
                self._launch()
                self.restarts += 1
            except (ChildError, OSError) as exc:
                log.debug("kubelet restart failed: %s", exc)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            proc = self.proc
        if proc is not None:
            self._end(proc)
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)

    def _end(self, proc: subprocess.Popen[str]) -> None:
        if proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("kubelet process %d did not stop in %.0fs; killing it", proc.pid, self.stop_timeout)
            proc.kill()
            proc.wait()


def restart_delay(backoff: float, recent: list[float], now: float, per_minute: int) -> float:
    """Seconds to wait before the next restart: the back-off, or longer when `per_minute` restarts already
    happened in the last 60 s (`recent`: their times)."""
    if len(recent) < per_minute:
        return backoff
    oldest = sorted(recent)[-per_minute]
    return max(backoff, oldest + 60.0 - now)


def exit_text(code: int) -> str:
    """`exit code 1` or `killed by signal 9` (Popen reports a signal as a negative code)."""
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"
