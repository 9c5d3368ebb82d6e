"""Process-mode kubelet isolation that Ray relies on (the worker crash-loop of the operator e2e test):

- every pod sees the same temp dir path with its own directory behind it, as /tmp in a real container (a
  Ray worker node uses the head's temp dir path, so with per-pod paths the workers shared the head's
  session directory and raced for the same Unix socket names);
- when a container's main process ends, the processes it started end with it before the restart, even
  those whose /proc environ no longer shows the kubelet's markers (Ray's agents overwrite it when they set
  their process title); a survivor keeps the pod's fixed ports.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from kubernetes import client

from localkube.testing import running
from tests.support import kube

pytestmark = [pytest.mark.api, pytest.mark.skipif(os.geteuid() != 0, reason="process mode tests run as root")]
PY = sys.executable
PORT = 47123
# A listener on PORT that prints its pid; `env -i` starts it with an empty environment (no marker).
LISTEN = (
    f"{PY} -c \"import os,socket,time; s=socket.socket(); s.bind(('0.0.0.0',{PORT})); s.listen(); "
    "print('listening', os.getpid(), flush=True); time.sleep(600)\""
)
# First run: a marker-less child takes the port, then the main process fails. Second run: takes the
# port itself, which only works if the child of the first run was killed before the restart.
SCRIPT = f"""
if [ -e "$HOME/first-run-done" ]; then exec {LISTEN}; fi
touch "$HOME/first-run-done"
env -i {LISTEN} &
sleep 1
exit 3
"""


@pytest.fixture
def core() -> Iterator[client.CoreV1Api]:
    with running(kubelet="process", kubelet_options={"restart_backoff": 0.2}) as lk:
        yield client.CoreV1Api(lk.api_client())


def _pod(host_network: bool) -> dict[str, object]:
    container = {"name": "c", "image": "python:3.11", "command": ["bash", "-c", SCRIPT]}
    spec = {"restartPolicy": "Always", "containers": [container], "hostNetwork": host_network}
    return {"metadata": {"name": "leftover"}, "spec": spec}


def test_pods_see_one_temp_path_with_private_contents(core: client.CoreV1Api) -> None:
    script = (
        'echo "$POD" > "$TMPDIR/owner"; sleep 1; '
        'echo "tmp=$TMPDIR ray=$RAY_TMPDIR owner=$(cat "$TMPDIR/owner")"'
    )
    for name in ("tmp-a", "tmp-b"):
        container: dict[str, Any] = {"name": "c", "image": "busybox", "command": ["sh", "-c", script]}
        container["env"] = [{"name": "POD", "value": name}]
        core.create_namespaced_pod(
            "default",
            {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [container]}},
        )

    def done(name: str) -> str | None:
        phase = core.read_namespaced_pod(name, "default").status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    lines: dict[str, dict[str, str]] = {}
    for name in ("tmp-a", "tmp-b"):
        assert (
            kube.wait_for(functools.partial(done, name), 60, f"{name} finished", interval=0.1) == "Succeeded"
        )
        lines[name] = dict(w.split("=", 1) for w in core.read_namespaced_pod_log(name, "default").split())
    assert lines["tmp-a"]["tmp"] == lines["tmp-b"]["tmp"] == lines["tmp-a"]["ray"] == lines["tmp-b"]["ray"]
    assert lines["tmp-a"]["owner"] == "tmp-a" and lines["tmp-b"]["owner"] == "tmp-b", lines
    for name in ("tmp-a", "tmp-b"):
        core.delete_namespaced_pod(name, "default", grace_period_seconds=0)
    kube.wait_for(lambda: not core.list_namespaced_pod("default").items, 30, "pods gone", interval=0.1)


def _listener_pid(log: str) -> int:
    return int(next(line.split()[1] for line in log.splitlines() if line.startswith("listening")))


@pytest.mark.parametrize("host_network", [False, True], ids=["pod-netns", "host-network"])
def test_restart_kills_children_without_env_marker(core: client.CoreV1Api, host_network: bool) -> None:
    core.create_namespaced_pod("default", _pod(host_network))

    def running_again() -> object:
        status = core.read_namespaced_pod("leftover", "default").status
        states = status.container_statuses or []
        return states and states[0].restart_count == 1 and states[0].state.running and states[0]

    state = kube.wait_for(running_again, 60, "second run of the container", interval=0.1)
    previous = core.read_namespaced_pod_log("leftover", "default", container="c", previous=True)
    child = _listener_pid(previous)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    current = kube.wait_for(
        lambda: "listening" in (log := core.read_namespaced_pod_log("leftover", "default")) and log,
        30,
        "the second run listening on the port the first run's child held",
        interval=0.1,
    )
    assert _listener_pid(current) != child
    final = core.read_namespaced_pod("leftover", "default").status.container_statuses[0]
    assert final.restart_count == 1 and final.state.running, final
    assert state.last_state.terminated.exit_code == 3
    core.delete_namespaced_pod("leftover", "default", grace_period_seconds=1)
    kube.wait_for(lambda: not core.list_namespaced_pod("default").items, 30, "pod gone", interval=0.1)
