"""Container probes (exec, httpGet, tcpSocket) and their success/failure thresholds."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rayside.objects import JSON

ExecRunner = Callable[[list[str], float], int]  # (command, timeout) -> exit code (-1 on timeout)


def resolve_port(port: Any, container: JSON) -> int:
    """A probe port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"probe port {port!r} is not a named port of container {container.get('name')!r}")


def http_probe(spec: JSON, default_host: str, container: JSON, timeout: float) -> bool:
    host = str(spec.get("host") or default_host)
    port = resolve_port(spec.get("port"), container)
    conn: http.client.HTTPConnection
    if str(spec.get("scheme", "HTTP")).upper() == "HTTPS":
        ctx = ssl._create_unverified_context()
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {h["name"]: h["value"] for h in spec.get("httpHeaders") or []}
    headers.setdefault("User-Agent", "kube-probe/1.32")
    try:
        conn.request("GET", str(spec.get("path") or "/"), headers=headers)
        return 200 <= conn.getresponse().status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def tcp_probe(spec: JSON, default_host: str, container: JSON, timeout: float) -> bool:
    host = str(spec.get("host") or default_host)
    try:
        with socket.create_connection((host, resolve_port(spec.get("port"), container)), timeout=timeout):
            return True
    except OSError:
        return False


def run_probe(probe: JSON, pod_ip: str, container: JSON, run_exec: ExecRunner) -> bool:
    """One probe attempt. gRPC probes are not emulated and count as success (documented)."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "exec" in probe:
            return run_exec([str(a) for a in probe["exec"].get("command") or []], timeout) == 0
        if "httpGet" in probe:
            return http_probe(probe["httpGet"], pod_ip, container, timeout)
        if "tcpSocket" in probe:
            return tcp_probe(probe["tcpSocket"], pod_ip, container, timeout)
    except ValueError:
        return False
    return True


def exec_with_timeout(argv: list[str], env: dict[str, str], timeout: float) -> int:
    """Run `argv`, killing its process group after `timeout`; -1 on timeout or if it cannot start."""
    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return -1
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return -1


@dataclass
class ProbeTracker:
    """Schedule and thresholds of one probe during one container run."""

    probe: JSON
    next_at: float
    successes: int = 0
    failures: int = 0

    @staticmethod
    def create(probe: JSON | None, started: float, floor: float) -> ProbeTracker | None:
        if not probe:
            return None
        return ProbeTracker(probe, started + float(probe.get("initialDelaySeconds") or 0))

    def period(self, floor: float) -> float:
        return max(floor, float(self.probe.get("periodSeconds") or 10))

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def record(self, ok: bool, now: float, floor: float) -> str:
        """Returns "success" or "failure" when a threshold is crossed, else ""."""
        self.next_at = now + self.period(floor)
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            return "success" if self.successes >= int(self.probe.get("successThreshold") or 1) else ""
        self.successes, self.failures = 0, self.failures + 1
        return "failure" if self.failures >= int(self.probe.get("failureThreshold") or 3) else ""


def monotonic() -> float:
    return time.monotonic()
