"""Run the kubelet as a child process of `LocalKube` (`Settings.kubelet_process`): the API server and the
kubelet then do not share one Python interpreter (GIL), as with a real node agent.

`kubelet_command` (pure) builds the command line; `KubeletProcess` starts it, waits for its readiness line
and stops it with SIGTERM (SIGKILL after a grace period) when the server stops.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
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
    """A `python -m localkube.kubelet` child; `start()` returns once it printed its readiness line."""

    def __init__(self, cmd: list[str], *, ready_timeout: float = 60.0, stop_timeout: float = 15.0) -> None:
        self.cmd = cmd
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[str] | None = None
        self._ready_seen = False

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, text=True)
        ready = threading.Event()
        assert self.proc.stdout is not None
        threading.Thread(
            target=self._read, args=(self.proc.stdout, ready), name="kubelet-child-out", daemon=True
        ).start()
        if not (ready.wait(self.ready_timeout) and self._ready_seen):
            timed_out = not ready.is_set()
            self.stop()
            code = self.proc.wait()
            why = f"did not become ready in {self.ready_timeout:.0f}s" if timed_out else f"exited ({code})"
            raise ChildError(f"the kubelet process {why}; see its message above")
        log.debug("kubelet process %d ready", self.proc.pid)

    def _read(self, stream: IO[str], ready: threading.Event) -> None:
        for line in stream:
            if line.startswith("kubelet ") and " ready (" in line:
                self._ready_seen = True
                ready.set()
            log.debug("kubelet process: %s", line.rstrip())
        ready.set()  # EOF: the process ended; start() checks poll()

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("kubelet process %d did not stop in %.0fs; killing it", proc.pid, self.stop_timeout)
            proc.kill()
            proc.wait()
