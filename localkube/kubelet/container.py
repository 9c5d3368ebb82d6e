"""One container of a process-mode pod: start its command as a local process group, capture its log,
run its probes, apply the restart policy with back-off, and stop it gracefully (SIGTERM, grace, SIGKILL)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from localkube.kubelet.logs import copy_lines
from localkube.kubelet.podenv import EnvError
from localkube.kubelet.probes import ProbeTracker, exec_with_timeout, run_probe
from localkube.kubelet.settings import KubeletSettings
from localkube.kubelet.status import ContainerState, container_id, now_iso, should_restart, terminal_reason
from rayside.objects import JSON

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launch:
    """How to start one process of a container: full argv (with namespace wrappers), env and cwd."""

    argv: list[str]
    env: dict[str, str]
    cwd: str


class PodContext(Protocol):
    """What a container needs from its pod."""

    uid: str
    key: str
    pod_ip: str
    restart_policy: str
    grace: float
    settings: KubeletSettings

    def launch(self, spec: JSON, command: list[str] | None = None) -> Launch: ...

    def log_path(self, container: str, index: int) -> Path: ...

    def publish(self) -> None: ...

    def kill_leftovers(self, container: str, session: int) -> None: ...


def all_pids() -> list[int]:
    """Every process id on the machine except this process."""
    me = os.getpid()
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != me]


def has_marker(pid: int, marker: bytes) -> bool:
    """Whether `marker` (NAME=value) is in the environment /proc shows for `pid`."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:
        return False


def session_of(pid: int) -> int | None:
    """The session id of `pid` (from /proc/PID/stat), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return session_in_stat(f.read())
    except OSError:
        return None


def session_in_stat(stat: bytes) -> int | None:
    """The session field of a /proc/PID/stat line ("pid (comm) state ppid pgrp session ..."); the command
    name may itself contain spaces and parentheses. None if the line is cut short."""
    end = stat.rfind(b")")
    fields = stat[end + 2 :].split() if end >= 0 else []
    return int(fields[3]) if len(fields) > 3 else None


def exit_code_of(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class ContainerRunner:
    """Runs one container (init or main) of a pod."""

    def __init__(self, pod: PodContext, spec: JSON, *, init: bool) -> None:
        self.pod = pod
        self.spec = spec
        self.name = str(spec.get("name", ""))
        self.init = init
        self.state = ContainerState(name=self.name, image=str(spec.get("image", "")))
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.run_index = -1

    # -- one run --------------------------------------------------------------------------------------------
    def _start(self) -> subprocess.Popen[bytes]:
        launch = self.pod.launch(self.spec)
        index = self.state.restart_count
        path = self.pod.log_path(self.name, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        proc = subprocess.Popen(
            launch.argv,
            env=launch.env,
            cwd=launch.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        threading.Thread(target=copy_lines, args=(proc.stdout, path), daemon=True).start()
        with self.lock:
            self.proc, self.run_index = proc, index
            started = now_iso()
            self.state.kind, self.state.reason, self.state.message = "running", "", ""
            self.state.started_at, self.state.cid = started, container_id(self.pod.uid, self.name, index)
            self.state.will_restart = False
            self.state.started = not self.init and not self.spec.get("startupProbe")
            self.state.ready = self.state.started and not self.spec.get("readinessProbe")
        log.debug("pod %s: container %s started (pid %d)", self.pod.key, self.name, proc.pid)
        self.pod.publish()
        return proc

    def _finished(self, proc: subprocess.Popen[bytes]) -> int:
        code = exit_code_of(proc.wait())
        self.pod.kill_leftovers(self.name, proc.pid)
        with self.lock:
            s = self.state
            s.kind, s.exit_code, s.reason = "terminated", code, terminal_reason(code)
            s.finished_at, s.ready = now_iso(), False
            s.started = False
        log.debug("pod %s: container %s exited with %d", self.pod.key, self.name, code)
        return code

    def _config_error(self, exc: EnvError) -> None:
        with self.lock:
            s = self.state
            s.kind, s.reason, s.message = "waiting", "CreateContainerConfigError", str(exc)
        self.pod.publish()
        self.stopping.wait(2.0)

    def run_to_exit(self) -> int | None:
        """Run once (init containers); None if stopped before it could start."""
        while not self.stopping.is_set():
            try:
                proc = self._start()
            except EnvError as exc:
                self._config_error(exc)
                continue
            proc.wait()
            return self._finished(proc)
        return None

    # -- main containers ---------------------------------------------------------------------------------
    def supervise(self) -> None:
        """Run, probe and restart per restartPolicy until stopped or finished for good."""
        backoff = self.pod.settings.restart_backoff
        while not self.stopping.is_set():
            try:
                proc = self._start()
            except (EnvError, OSError) as exc:
                self._config_error(exc if isinstance(exc, EnvError) else EnvError(str(exc)))
                continue
            began = time.monotonic()
            self._probe_until_exit(proc)
            code = self._finished(proc)
            if self.stopping.is_set() or not should_restart(self.pod.restart_policy, code):
                self.pod.publish()
                return
            if time.monotonic() - began > 60:
                backoff = self.pod.settings.restart_backoff
            self._await_restart(backoff)
            backoff = min(max(backoff, 0.1) * 2, self.pod.settings.restart_backoff_max)

    def _await_restart(self, backoff: float) -> None:
        with self.lock:
            s = self.state
            s.will_restart = True
            s.last_terminated = s.terminated_json()
            s.restart_count += 1
            s.kind, s.reason, s.message = "waiting", "CrashLoopBackOff", f"back-off {backoff:.1f}s restarting"
        self.pod.publish()
        self.stopping.wait(backoff)

    def _probe_until_exit(self, proc: subprocess.Popen[bytes]) -> None:
        floor = self.pod.settings.probe_floor
        now = time.monotonic()
        startup = ProbeTracker.create(self.spec.get("startupProbe"), now, floor)
        readiness = ProbeTracker.create(self.spec.get("readinessProbe"), now, floor)
        liveness = ProbeTracker.create(self.spec.get("livenessProbe"), now, floor)
        while proc.poll() is None and not self.stopping.is_set():
            now = time.monotonic()
            if startup is not None and not self.state.started:
                if startup.due(now) and self._probe_step(startup, proc, "startup"):
                    self._set(started=True, ready=readiness is None)
                    if readiness is not None:
                        readiness.next_at = now
                    if liveness is not None:
                        liveness.next_at = now + float(liveness.probe.get("initialDelaySeconds") or 0)
            else:
                if readiness is not None and readiness.due(now):
                    self._probe_step(readiness, proc, "readiness")
                if liveness is not None and liveness.due(now):
                    self._probe_step(liveness, proc, "liveness")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(min(0.2, floor))

    def _probe_step(self, tracker: ProbeTracker, proc: subprocess.Popen[bytes], kind: str) -> bool:
        ok = run_probe(tracker.probe, self.pod.pod_ip, self.spec, self._exec)
        verdict = tracker.record(ok, time.monotonic(), self.pod.settings.probe_floor)
        if kind == "readiness" and verdict:
            self._set(ready=verdict == "success")
        elif verdict == "failure" and kind in ("liveness", "startup"):
            log.debug("pod %s: container %s failed its %s probe; killing", self.pod.key, self.name, kind)
            self._signal_and_wait(proc, self.pod.grace)
        return verdict == "success"

    def _set(self, **fields: bool) -> None:
        with self.lock:
            changed = any(getattr(self.state, k) != v for k, v in fields.items())
            for k, v in fields.items():
                setattr(self.state, k, v)
        if changed:
            self.pod.publish()

    def _exec(self, command: list[str], timeout: float) -> int:
        try:
            launch = self.pod.launch(self.spec, command)
        except EnvError:
            return -1
        return exec_with_timeout(launch.argv, launch.env, timeout)

    # -- stopping ----------------------------------------------------------------------------------------
    def terminate(self, deadline: float) -> None:
        """Graceful stop: preStop exec hook, SIGTERM to the process group, SIGKILL at `deadline`."""
        self.stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        pre_stop = ((self.spec.get("lifecycle") or {}).get("preStop") or {}).get("exec")
        if pre_stop:
            self._exec([str(a) for a in pre_stop.get("command") or []], max(0.0, deadline - time.monotonic()))
        self._signal_and_wait(proc, max(0.0, deadline - time.monotonic()))

    def _signal_and_wait(self, proc: subprocess.Popen[bytes], grace: float) -> None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def kill_now(self) -> None:
        self.stopping.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
