"""The kubelet as its own process (`python -m localkube.kubelet`) against a localkube server over HTTPS with a
token, and `localkube serve` running it as a child: pods become Running (official client), the Node is
registered, SIGTERM stops cleanly with exit code 0, bad flags exit 2 with one line, the token stays secret."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import psutil
import pytest
from kubernetes import client

from localkube.testing import running
from tests.support.kube import wait_for

pytestmark = pytest.mark.api
REPO = Path(__file__).resolve().parents[2]
TOKEN = "kubelet-cli-secret-token"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _lines(stream: IO[str], keep: list[str] | None = None) -> queue.Queue[str]:
    """Every line of `stream` on a queue (read by a thread, so waiting for a line can time out); also
    appended to `keep` if given."""
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            out.put(line)
            if keep is not None:
                keep.append(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


def _await(lines: queue.Queue[str], prefix: str, timeout: float = 60.0) -> str:
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line starting with {prefix!r} (saw {seen!r})") from None
        seen.append(line)
        if line.startswith(prefix):
            return line.strip()


def _pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}


def _kubelet(kubeconfig: Path, *flags: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "localkube.kubelet", "--kubeconfig", str(kubeconfig), *flags]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO
    )


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kubelet_process_runs_pods_and_stops_on_sigterm(tmp_path: Path) -> None:
    with running(https=True, token=TOKEN, state_dir=tmp_path / "server") as lk:
        proc = _kubelet(lk.kubeconfig, "--node-name", "cli-node", "--ready-delay", "0.1", "-v")
        try:
            assert proc.stdout is not None and proc.stderr is not None
            logged: list[str] = []
            out = _lines(proc.stdout)
            _lines(proc.stderr, logged)
            assert _await(out, "kubelet ") == "kubelet cli-node ready (simulated)"
            assert TOKEN not in " ".join(psutil.Process(proc.pid).cmdline())
            core = client.CoreV1Api(lk.api_client())
            node = core.read_node("cli-node")
            assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
            core.create_namespaced_pod("default", _pod("p1"))
            pod = wait_for(
                lambda: (p := core.read_namespaced_pod("p1", "default")).status.phase == "Running" and p,
                timeout=60,
                what="pod p1 Running",
            )
            assert pod.spec.node_name == "cli-node"
            assert pod.status.pod_ip and pod.status.container_statuses[0].ready
            assert _stop(proc) == 0
            assert _await(out, "kubelet cli-node stopped")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wait_for(lambda: any("bound pod default/p1" in line for line in logged), what="debug log (-v)")
    assert not [line for line in logged if TOKEN in line]  # logs at debug level, never the token


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (["--mode", "bogus"], "--mode"),
        (["--ready-delay", "-1"], "--ready-delay"),
        (["--qps", "zero"], "--qps"),
        (["--burst", "0"], "--burst"),
        (["--node-name", "Bad_Name"], "--node-name"),
        (["--no-such-flag"], "--no-such-flag"),
        (["--kubeconfig", "/nonexistent/kubeconfig"], "--kubeconfig"),
    ],
)
def test_kubelet_bad_flag_exits_2_with_one_line(flags: list[str], names: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "localkube.kubelet", *flags],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kubelet: ") and names in lines[0], proc.stderr


def test_kubelet_exits_1_when_the_server_is_unreachable(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "rayside.cli", "localkube", "kubelet", "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "cannot register node localkube" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_runs_the_kubelet_as_a_child_process(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "localkube", "serve", "--port", "0", "--http", "--no-controllers"]
    cmd += ["--state-dir", str(tmp_path), "--kubelet", "simulated", "--kubelet-ready-delay", "0.1"]
    cmd += ["--watch-history", "500"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=_env(), cwd=REPO)
    try:
        assert proc.stdout is not None
        out = _lines(proc.stdout)
        _await(out, "localkube listening on ")
        kubeconfig = _await(out, "kubeconfig: ").split(": ", 1)[1]
        children = psutil.Process(proc.pid).children()
        assert [c for c in children if "localkube.kubelet" in " ".join(c.cmdline())]
        from kubernetes import config

        core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
        core.create_namespaced_pod("default", _pod("p1"))
        wait_for(
            lambda: core.read_namespaced_pod("p1", "default").status.phase == "Running",
            timeout=60,
            what="pod p1 Running",
        )
        assert _stop(proc) == 0
        for child in children:
            assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_rejects_bad_new_flags() -> None:
    for flags in (["--watch-history", "0"], ["--kubelet-ready-delay", "-2"]):
        proc = subprocess.run(
            [sys.executable, "-m", "localkube", "serve", "--port", "0", "--http", *flags],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=REPO,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2 and flags[0] in proc.stderr and "Traceback" not in proc.stderr
