"""localkube under hostile input and failures: bad objects get kube-apiserver's exact errors (through the
official client and kubectl), oversized/deep/over-headered requests are refused with 413/400/431,
`kubectl get --sort-by` works, a SIGKILLed kubelet child is restarted, a Node whose Lease lapses goes
Ready=Unknown, the kubelet's log endpoint answers only the API server, and bad serve flags exit 2.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException

from localkube.cluster import LocalKube
from localkube.controllers.nodelifecycle import UNKNOWN_MESSAGE, UNKNOWN_REASON
from localkube.kubelet.network import netns_supported, owner_alias, process_start
from localkube.kubelet.node import micro_time
from localkube.testing import running
from tests.api.conftest import Kubectl
from tests.support.kube import wait_for

TOKEN = "reliability-token-1"
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalKube]:
    with running(https=True, token=TOKEN) as lk:
        yield lk


@pytest.fixture(scope="module")
def core(server: LocalKube) -> client.CoreV1Api:
    return client.CoreV1Api(server.api_client())


def _session(lk: LocalKube) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # a CA bundle from the environment would override the server's own CA
    s.verify = str(lk.state_dir / "pki" / "ca.crt")
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    return s


def _refusal(call: Any) -> tuple[int, str]:
    with pytest.raises(ApiException) as info:
        call()
    body = json.loads(info.value.body)
    assert body["kind"] == "Status" and body["code"] == info.value.status
    return int(info.value.status), str(body["message"])


def _pod(pod_name: str, **container: Any) -> dict[str, Any]:
    ctr = {"name": "c", "image": "busybox", **container}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name}, "spec": {"containers": [ctr]}}


def _svc(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"port": 80}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def _cm(name: str, data: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


LONG = "a" * 300
CASES: list[tuple[str, str, Any, int, str]] = [
    (
        "service type",
        "service",
        _svc("x", type="Foo"),
        422,
        'Service "x" is invalid: spec.type: Unsupported value: "Foo": supported values: "ClusterIP", '
        '"ExternalName", "LoadBalancer", "NodePort"',
    ),
    (
        "container name",
        "pod",
        _pod("p1", name="Bad_Name"),
        422,
        f'Pod "p1" is invalid: spec.containers[0].name: Invalid value: "Bad_Name": {LABEL}',
    ),
    (
        "command as a string",
        "pod",
        _pod("p2", command="echo hi"),
        400,
        'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field '
        "Container.spec.containers.command of type []string",
    ),
    (
        "restartPolicy",
        "pod",
        {**_pod("p3"), "spec": {**_pod("p3")["spec"], "restartPolicy": "Sometimes"}},
        422,
        'Pod "p3" is invalid: spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
        '"Always", "OnFailure", "Never"',
    ),
    (
        "container port",
        "pod",
        _pod("p4", ports=[{"containerPort": 70000, "protocol": "TCP"}]),
        422,
        'Pod "p4" is invalid: spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be '
        "between 1 and 65535, inclusive",
    ),
    (
        "300-character name",
        "configmap",
        _cm(LONG, {"a": "b"}),
        422,
        f'ConfigMap "{LONG}" is invalid: metadata.name: Invalid value: "{LONG}": must be no more than 253 '
        "characters",
    ),
    (
        "non-string ConfigMap data",
        "configmap",
        _cm("c1", {"a": 5}),
        400,
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go '
        "struct field ConfigMap.data of type string",
    ),
    (
        "ConfigMap over 1 MiB",
        "configmap",
        _cm("c2", {"a": "x" * (1024 * 1024 + 1)}),
        422,
        'ConfigMap "c2" is invalid: []: Too long: may not be more than 1048576 bytes',
    ),
    (
        "Secret over 1 MiB",
        "secret",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s1"},
            "stringData": {"a": "x" * 1048577},
        },
        422,
        'Secret "s1" is invalid: data: Too long: may not be more than 1048576 bytes',
    ),
]


PLURALS = {"service": "services", "pod": "pods", "configmap": "configmaps", "secret": "secrets"}


@pytest.mark.parametrize(("what", "kind", "body", "code", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_objects_get_kube_apiserver_errors(
    server: LocalKube, core: client.CoreV1Api, what: str, kind: str, body: Any, code: int, message: str
) -> None:
    if code == 400:  # the official client refuses to send ill-typed fields itself: send them as kubectl would
        url = f"{server.url}/api/v1/namespaces/default/{PLURALS[kind]}"
        r = _session(server).post(
            url, data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=30
        )
        assert (r.status_code, r.json()["message"], r.json()["reason"]) == (code, message, "BadRequest")
        return
    create = {
        "service": core.create_namespaced_service,
        "pod": core.create_namespaced_pod,
        "configmap": core.create_namespaced_config_map,
        "secret": core.create_namespaced_secret,
    }[kind]
    assert _refusal(lambda: create("default", body)) == (code, message)


def test_names_and_enums_of_other_kinds(server: LocalKube) -> None:
    api = server.api_client()
    batch, coord = client.BatchV1Api(api), client.CoordinationV1Api(api)
    core = client.CoreV1Api(api)
    job = {
        "metadata": {"name": "j"},
        "spec": {
            "template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}]}}
        },
    }
    assert _refusal(lambda: batch.create_namespaced_job("default", job)) == (
        422,
        'Job.batch "j" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always": supported '
        'values: "OnFailure", "Never"',
    )
    lease = {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}}
    assert _refusal(lambda: coord.create_namespaced_lease("default", lease)) == (
        422,
        'Lease.coordination.k8s.io "l" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be '
        "greater than 0",
    )
    assert _refusal(lambda: core.create_namespace({"metadata": {"name": "Bad_NS"}})) == (
        422,
        f'Namespace "Bad_NS" is invalid: metadata.name: Invalid value: "Bad_NS": {LABEL}',
    )
    assert _refusal(
        lambda: core.create_namespaced_service_account("default", {"metadata": {"name": "Bad_SA"}})
    ) == (422, f'ServiceAccount "Bad_SA" is invalid: metadata.name: Invalid value: "Bad_SA": {SUBDOMAIN}')
    # a valid pod with ports and env is still accepted
    ok = _pod("fine", ports=[{"containerPort": 8080, "name": "http"}], env=[{"name": "A", "value": "1"}])
    assert core.create_namespaced_pod("default", ok).metadata.name == "fine"


def test_kubectl_apply_shows_the_invalid_message(server: LocalKube, tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    kubectl = Kubectl(server.kubeconfig, tmp_path / "home")
    proc = kubectl.run("apply", "-f", "-", stdin=json.dumps(_svc("kx", type="Foo")), check=False)
    assert proc.returncode != 0
    assert (
        'The Service "kx" is invalid: spec.type: Unsupported value: "Foo": supported values: "ClusterIP", '
        '"ExternalName", "LoadBalancer", "NodePort"'
    ) in proc.stderr
    proc = kubectl.run("apply", "-f", "-", stdin=json.dumps(_pod("kp", name="Bad_Name")), check=False)
    assert f'spec.containers[0].name: Invalid value: "Bad_Name": {LABEL}' in proc.stderr


def test_oversized_deep_and_overheadered_requests(server: LocalKube) -> None:
    s = _session(server)
    url = server.url + "/api/v1/namespaces/default/configmaps"
    body = json.dumps(_cm("big", {"a": "x" * (50 * 1024 * 1024)}))
    r = s.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=120)
    assert r.status_code == 413
    assert r.json()["message"] == "Request entity too large: limit is 3145728"
    assert r.json()["reason"] == "RequestEntityTooLarge"
    deep = b"[" * 10000 + b"]" * 10000
    r = _session(server).post(url, data=deep, headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 400 and r.json()["kind"] == "Status"
    r = _session(server).get(url, headers={f"X-H{i}": "v" for i in range(150)}, timeout=60)
    assert r.status_code == 431
    r = _session(server).get(url, headers={f"X-H{i}": "v" * 60000 for i in range(30)}, timeout=60)
    assert r.status_code == 431
    assert _session(server).get(url, timeout=60).status_code == 200  # the server is fine afterwards


def test_kubectl_get_events_sorted_by_last_timestamp(server: LocalKube, tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    core = client.CoreV1Api(server.api_client())
    core.create_namespace({"metadata": {"name": "ev"}})
    names = [f"ev-{i}" for i in range(8)]
    for i, name in enumerate(names):
        stamp = f"2026-01-01T00:00:0{7 - i}Z"  # created newest first: sorting must reorder them
        core.create_namespaced_event(
            "ev",
            {
                "metadata": {"name": name},
                "involvedObject": {"kind": "Pod", "name": f"pod-{i}", "namespace": "ev"},
                "reason": "Tested",
                "message": f"message {i}",
                "type": "Normal",
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            },
        )
    kubectl = Kubectl(server.kubeconfig, tmp_path / "home")
    out = kubectl.run("get", "events", "-n", "ev", "--sort-by=.lastTimestamp").stdout
    assert "No resources found" not in out
    shown = [line for line in out.splitlines() if "Tested" in line]
    assert len(shown) == 8
    assert [f"message {7 - k}" in line for k, line in enumerate(shown)] == [True] * 8  # oldest first
    table = (
        _session(server)
        .get(
            server.url + "/api/v1/namespaces/ev/events",
            params={"includeObject": "Object"},
            headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
            timeout=30,
        )
        .json()
    )
    assert {row["object"]["kind"] for row in table["rows"]} == {"Event"}
    assert all("lastTimestamp" in row["object"] for row in table["rows"])
    as_table = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    url = server.url + "/api/v1/namespaces/ev/events"
    bare = _session(server).get(url, params={"includeObject": "None"}, headers=as_table, timeout=30).json()
    assert len(bare["rows"]) == 8 and all("object" not in row for row in bare["rows"])
    default = _session(server).get(url, headers=as_table, timeout=30).json()
    assert {row["object"]["kind"] for row in default["rows"]} == {"PartialObjectMetadata"}
    bad = _session(server).get(url, params={"includeObject": "All"}, headers=as_table, timeout=30)
    assert bad.status_code == 400


def _kubelet_child(pid: int) -> psutil.Process | None:
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "localkube.kubelet" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def _running_pod(core: client.CoreV1Api, name: str) -> None:
    body = _pod(name)
    core.create_namespaced_pod("default", body)
    wait_for(
        lambda: core.read_namespaced_pod(name, "default").status.phase == "Running",
        timeout=60,
        what=f"pod {name} Running",
    )


def test_sigkilled_kubelet_child_is_restarted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="localkube.kubelet.child")
    with running(kubelet="simulated", kubelet_process=True, kubelet_options={"ready_delay": 0.1}) as lk:
        core = client.CoreV1Api(lk.api_client())
        _running_pod(core, "before")
        first = _kubelet_child(os.getpid())
        assert first is not None
        first.send_signal(signal.SIGKILL)
        second = wait_for(
            lambda: (c := _kubelet_child(os.getpid())) is not None and c.pid != first.pid and c,
            timeout=60,
            what="a new kubelet child",
        )
        _running_pod(core, "after")
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert f"kubelet process {first.pid} ended (killed by signal 9)" in warnings[0].getMessage()
        assert second.is_running()


def _node(name: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }
    return {"metadata": {"name": name}, "status": {"conditions": [ready]}}


def _ready(core: client.CoreV1Api, name: str) -> Any:
    node = core.read_node(name)
    return next(c for c in node.status.conditions if c.type == "Ready")


def test_node_goes_unknown_when_its_lease_lapses_and_ready_when_renewed() -> None:
    with running(controllers=True, node_monitor_grace=2.0) as lk:
        api = lk.api_client()
        core, coord = client.CoreV1Api(api), client.CoordinationV1Api(api)
        core.create_node(_node("n1"))  # this test plays the kubelet: it owns the Node and its Lease
        lease = {
            "metadata": {"name": "n1"},
            "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 2, "renewTime": micro_time()},
        }
        coord.create_namespaced_lease("kube-node-lease", lease)
        assert _ready(core, "n1").status == "True"
        cond = wait_for(
            lambda: (c := _ready(core, "n1")).status == "Unknown" and c,
            timeout=30,
            what="Ready=Unknown after the lease lapsed",
        )
        assert (cond.reason, cond.message) == (UNKNOWN_REASON, UNKNOWN_MESSAGE)
        coord.patch_namespaced_lease("n1", "kube-node-lease", {"spec": {"renewTime": micro_time()}})
        wait_for(lambda: _ready(core, "n1").status == "True", timeout=30, what="Ready=True after renewal")


def test_kubelet_log_endpoint_answers_only_the_api_server() -> None:
    opts = {"ready_delay": 0.1, "simulated_log_text": "hello from the pod"}
    with running(kubelet="simulated", kubelet_options=opts) as lk:
        core = client.CoreV1Api(lk.api_client())
        _running_pod(core, "logged")
        assert core.read_namespaced_pod_log("logged", "default").strip() == "hello from the pod"
        node = core.read_node(core.read_namespaced_pod("logged", "default").spec.node_name)
        port = node.status.daemon_endpoints.kubelet_endpoint.port
        url = f"http://127.0.0.1:{port}/containerLogs/default/logged/c"
        assert requests.get(url, timeout=10).status_code == 401
        wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 403
        assert "hello" not in wrong.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "localkube: --port 70000: must be between 0 and 65535 (0 picks a free port)"),
        (["--port", "abc"], "localkube: argument --port: invalid int value: 'abc'"),
        (["--kubelet", "foo"], "localkube: argument --kubelet: invalid choice: 'foo'"),
        (["--state-dir", "/etc/hostname"], "localkube: --state-dir /etc/hostname: not a directory"),
    ],
)
def test_bad_serve_flags_exit_2_with_one_line(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "localkube", "serve", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr


def test_port_in_use_exits_1_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "localkube",
                "serve",
                "--http",
                "--port",
                str(port),
                "--state-dir",
                str(tmp_path),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_serve_restarts_a_sigkilled_kubelet_child_with_one_warning(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "localkube", "serve", "--http", "--port", "0", "--state-dir", str(tmp_path)]
    cmd += ["--kubelet", "simulated", "--kubelet-ready-delay", "0.1", "--no-controllers"]
    serve = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        assert serve.stdout.readline().startswith("localkube listening on ")
        kubeconfig = serve.stdout.readline().split(": ", 1)[1].strip()
        from kubernetes import config

        core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
        _running_pod(core, "before")
        first = wait_for(lambda: _kubelet_child(serve.pid), what="the kubelet child")
        first.send_signal(signal.SIGKILL)
        wait_for(
            lambda: (c := _kubelet_child(serve.pid)) is not None and c.pid != first.pid,
            timeout=60,
            what="a new kubelet child",
        )
        _running_pod(core, "after")
    finally:
        serve.terminate()
        _out, err = serve.communicate(timeout=60)
    assert serve.returncode == 0
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, err
    assert f"kubelet process {first.pid} ended (killed by signal 9); restarting it in" in warnings[0]


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {line.split(": ", 2)[1].split("@")[0] for line in out.splitlines() if ": " in line}


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.mark.skipif(not netns_supported(), reason="needs root and `ip netns`")
def test_process_kubelet_removes_only_leftovers_of_dead_localkube_runs() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    ip = ["ip"]
    # index 400+ stays clear of the bridges real runs on this machine pick (the first free index)
    subprocess.run([*ip, "link", "add", "lkb400", "type", "bridge"], check=True)
    subprocess.run([*ip, "link", "set", "lkb400", "alias", owner_alias(dead.pid, 1)], check=True)
    subprocess.run([*ip, "netns", "add", "lk400-1"], check=True)
    subprocess.run([*ip, "link", "add", "lkb401", "type", "bridge"], check=True)
    me = os.getpid()
    subprocess.run(
        [*ip, "link", "set", "lkb401", "alias", owner_alias(me, process_start(me) or 0)], check=True
    )
    subprocess.run([*ip, "link", "add", "lkb402", "type", "bridge"], check=True)  # no owner: not ours
    try:
        with running(kubelet="process", kubelet_options={"network": "netns"}) as lk:
            core = client.CoreV1Api(lk.api_client())
            wait_for(lambda: core.list_node().items, what="the node")
            assert "lkb400" not in _links() and "lk400-1" not in _namespaces()
            assert {"lkb401", "lkb402"} <= _links()
    finally:
        for name in ("lkb400", "lkb401", "lkb402"):
            subprocess.run([*ip, "link", "del", name], capture_output=True, check=False)
        subprocess.run([*ip, "netns", "del", "lk400-1"], capture_output=True, check=False)
