"""The process-mode kubelet against a real localkube over HTTP with the official client: env from
Secret/ConfigMap/fieldRef, volumes at their mountPaths, init containers, restart policies and exit codes,
probes, logs (incl. previous and follow), grace period then SIGKILL, per-pod IPs and Service DNS."""

from __future__ import annotations

import base64
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from tests.support import kube

pytestmark = [pytest.mark.api, pytest.mark.skipif(os.geteuid() != 0, reason="process mode tests run as root")]
PY = sys.executable


@pytest.fixture(scope="module")
def lk() -> Iterator[LocalKube]:
    opts = {"restart_backoff": 0.2, "probe_floor": 0.2}
    with running(kubelet="process", kubelet_options=opts) as lk:
        yield lk


@pytest.fixture(scope="module")
def core(lk: LocalKube) -> client.CoreV1Api:
    return client.CoreV1Api(lk.api_client())


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    return kube.wait_for(check, timeout, what, interval=0.1)


def container(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "python:3.11", "command": ["bash", "-c", script], **extra}


def make_pod(
    name: str, containers: list[dict[str, Any]], policy: str = "Never", **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"restartPolicy": policy, "containers": containers, **spec},
    }


def read(core: client.CoreV1Api, name: str) -> Any:
    return core.read_namespaced_pod(name, "default")


def wait_phase(core: client.CoreV1Api, name: str, phase: str, timeout: float = 60) -> Any:
    return wait_for(lambda: (p := read(core, name)).status.phase == phase and p, timeout, f"{name} {phase}")


def wait_ready(core: client.CoreV1Api, name: str, timeout: float = 60) -> Any:
    def ready() -> Any:
        p = read(core, name)
        conds = {c.type: c.status for c in p.status.conditions or []}
        return conds.get("Ready") == "True" and p

    return wait_for(ready, timeout, f"{name} Ready")


def gone(core: client.CoreV1Api, name: str) -> bool:
    try:
        read(core, name)
    except ApiException as exc:
        return bool(exc.status == 404)
    return False


def logs(core: client.CoreV1Api, name: str, **kw: Any) -> str:
    return str(core.read_namespaced_pod_log(name, "default", **kw))


def test_env_volumes_init_containers_and_logs(core: client.CoreV1Api) -> None:
    core.create_namespaced_secret(
        "default", {"metadata": {"name": "s1"}, "data": {"token": base64.b64encode(b"s3cret").decode()}}
    )
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "cm1"}, "data": {"mode": "fast", "EXTRA": "x"}}
    )
    init = container("init", "echo from-init > /work/dir/init.txt")
    init["volumeMounts"] = [{"name": "work", "mountPath": "/work/dir"}]
    script = (
        "echo TOKEN=$TOKEN MODE=$MODE NAME=$NAME NS=$NS IP=$IP NODE=$NODE EXTRA=$CM_EXTRA APP=$APP; "
        "cat /work/dir/init.txt; cat /etc/lk-secret/token; echo; cat /etc/lk-cm/mode; echo; "
        "cat /etc/lk-info/labels; echo; command -v python; "
        "python -c \"import os,urllib.request as u; h=os.environ['KUBERNETES_SERVICE_HOST']; "
        "p=os.environ['KUBERNETES_SERVICE_PORT']; print(u.urlopen(f'http://{h}:{p}/version').status)\""
    )
    main = {
        "name": "main",
        "image": "python:3.11",
        "command": ["bash", "-lc", script],  # a login shell: /etc/profile resets PATH
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "token"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cm1", "key": "mode"}}},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        ],
        "envFrom": [{"prefix": "CM_", "configMapRef": {"name": "cm1"}}],
        "volumeMounts": [
            {"name": "work", "mountPath": "/work/dir"},
            {"name": "sec", "mountPath": "/etc/lk-secret", "readOnly": True},
            {"name": "cm", "mountPath": "/etc/lk-cm"},
            {"name": "info", "mountPath": "/etc/lk-info"},
        ],
    }
    volumes = [
        {"name": "work", "emptyDir": {}},
        {"name": "sec", "secret": {"secretName": "s1"}},
        {"name": "cm", "configMap": {"name": "cm1"}},
        {
            "name": "info",
            "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]},
        },
    ]
    core.create_namespaced_pod("default", make_pod("envpod", [main], initContainers=[init], volumes=volumes))
    p = wait_phase(core, "envpod", "Succeeded")
    assert p.status.init_container_statuses[0].state.terminated.reason == "Completed"
    out = logs(core, "envpod")
    ip = p.status.pod_ip
    assert f"TOKEN=s3cret MODE=fast NAME=envpod NS=default IP={ip} NODE=localkube EXTRA=x APP=envpod" in out
    lines = out.splitlines()
    assert lines[1:5] == ["from-init", "s3cret", "fast", 'app="envpod"']
    assert os.path.dirname(lines[5]) == os.path.dirname(PY)  # bash -l kept the kubelet's PATH
    assert lines[6] == "200"
    assert logs(core, "envpod", container="init") == ""  # it wrote to a file, not to stdout
    for path in ("/etc/lk-secret", "/etc/lk-cm", "/etc/lk-info"):
        assert not os.path.exists(os.path.join(path, "token")), "mounts must stay inside the pod"


def test_missing_secret_keeps_container_waiting(core: client.CoreV1Api) -> None:
    env = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]
    core.create_namespaced_pod("default", make_pod("nosecret", [container("c", "true", env=env)]))

    def waiting() -> Any:
        cs = read(core, "nosecret").status.container_statuses
        return cs and cs[0].state.waiting and cs[0].state.waiting.reason == "CreateContainerConfigError"

    wait_for(waiting, what="CreateContainerConfigError")
    core.delete_namespaced_pod("nosecret", "default", grace_period_seconds=1)


def test_exit_codes_and_restart_policies(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", make_pod("fails", [container("c", "echo bye; exit 3")]))
    flaky = "if [ -f $HOME/ran ]; then echo second; exit 0; fi; touch $HOME/ran; echo first; exit 1"
    core.create_namespaced_pod("default", make_pod("flaky", [container("c", flaky)], policy="OnFailure"))
    badinit = make_pod("badinit", [container("c", "echo never")], initContainers=[container("i", "exit 7")])
    core.create_namespaced_pod("default", badinit)
    st = wait_phase(core, "fails", "Failed").status.container_statuses[0]
    assert (st.state.terminated.exit_code, st.state.terminated.reason) == (3, "Error")
    st = wait_phase(core, "flaky", "Succeeded").status.container_statuses[0]
    assert st.restart_count == 1 and st.last_state.terminated.exit_code == 1
    assert st.state.terminated.reason == "Completed"
    assert logs(core, "flaky").strip() == "second"
    assert logs(core, "flaky", previous=True).strip() == "first"
    p = wait_phase(core, "badinit", "Failed")
    assert p.status.init_container_statuses[0].state.terminated.exit_code == 7
    assert p.status.container_statuses[0].state.waiting is not None
    with pytest.raises(ApiException) as err:
        logs(core, "fails", previous=True)
    assert err.value.status == 404


def test_probes_drive_ready_and_restarts(core: client.CoreV1Api) -> None:
    readiness = {"exec": {"command": ["test", "-f", "/tmp/lk-never-there"]}, "periodSeconds": 1}
    liveness = {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}
    web = container(
        "web",
        f"exec {PY} -m http.server 8080",
        readinessProbe={"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1},
    )
    notready = container("notready", "sleep 600", readinessProbe=readiness)
    dies = container("dies", "sleep 600", livenessProbe=liveness)
    core.create_namespaced_pod("default", make_pod("probed", [web, notready, dies], policy="Always"))

    def state() -> Any:
        cs = {c.name: c for c in read(core, "probed").status.container_statuses or []}
        return len(cs) == 3 and cs["web"].ready and cs["dies"].restart_count >= 1 and cs

    cs = wait_for(state, what="web ready and dies restarted")
    assert not cs["notready"].ready
    conds = {c.type: c.status for c in read(core, "probed").status.conditions}
    assert conds["Ready"] == "False" and read(core, "probed").status.phase == "Running"
    core.delete_namespaced_pod("probed", "default", grace_period_seconds=1)
    wait_for(lambda: gone(core, "probed"), what="probed removed")


def test_follow_logs(core: client.CoreV1Api) -> None:
    script = "for i in 1 2 3 4 5; do echo line-$i; sleep 0.3; done"
    core.create_namespaced_pod("default", make_pod("chatty", [container("c", script)]))
    wait_for(lambda: read(core, "chatty").status.phase in ("Running", "Succeeded"), what="running")
    resp = core.read_namespaced_pod_log("chatty", "default", follow=True, _preload_content=False)
    text = b"".join(resp.stream()).decode()
    assert [ln for ln in text.splitlines() if ln] == [f"line-{i}" for i in range(1, 6)]
    stamped = logs(core, "chatty", timestamps=True, tail_lines=2).splitlines()
    assert len(stamped) == 2 and stamped[1].endswith(" line-5") and stamped[1][:4].isdigit()


def test_grace_period_then_sigkill_ends_every_process(core: client.CoreV1Api) -> None:
    # ignores SIGTERM, and starts a daemon in a new session (outside the process group)
    script = f"trap '' TERM; setsid {PY} -c 'import time; time.sleep(600)' & sleep 600 & wait"
    core.create_namespaced_pod(
        "default", make_pod("stubborn", [container("c", script)], terminationGracePeriodSeconds=2)
    )
    uid = wait_phase(core, "stubborn", "Running").metadata.uid
    marker = f"LOCALKUBE_POD_UID={uid}"

    def pod_procs() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            try:
                if marker in [f"{k}={v}" for k, v in proc.environ().items()]:
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    wait_for(lambda: len(pod_procs()) >= 3, what="pod processes")
    started = time.monotonic()
    core.delete_namespaced_pod("stubborn", "default")
    wait_for(lambda: gone(core, "stubborn"), what="stubborn removed")
    assert time.monotonic() - started >= 1.5  # it waited for the grace period
    wait_for(lambda: not pod_procs(), timeout=10, what="no process left")


def test_two_pods_bind_the_same_port_and_dns(core: client.CoreV1Api) -> None:
    server = f"echo $HOSTNAME > index.html; exec {PY} -m http.server 8080"
    probe = {"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1}
    for name in ("web-a", "web-b"):
        c = container("web", server, readinessProbe=probe, workingDir="/")
        c["command"] = ["bash", "-c", f"cd $HOME && {server}"]
        core.create_namespaced_pod("default", make_pod(name, [c], policy="Always"))
    core.create_namespaced_service(
        "default",
        {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web-a"}, "ports": [{"port": 8080}]}},
    )
    core.create_namespaced_service(
        "default",
        {
            "metadata": {"name": "web-hl"},
            "spec": {"clusterIP": "None", "selector": {"app": "web-b"}, "ports": [{"port": 8080}]},
        },
    )
    ips = {name: wait_ready(core, name).status.pod_ip for name in ("web-a", "web-b")}
    assert ips["web-a"] != ips["web-b"]
    for name, ip in ips.items():
        assert requests.get(f"http://{ip}:8080/", timeout=10).text.strip() == name
    script = (
        "until getent hosts web.default.svc.cluster.local >/dev/null && getent hosts web-hl >/dev/null; "
        "do sleep 0.2; done; "
        f'{PY} -c "import urllib.request as u; '
        "print(u.urlopen('http://web:8080/').read().decode().strip(), "
        "u.urlopen('http://web-hl.default:8080/').read().decode().strip(), "
        "u.urlopen('http://web.default.svc.cluster.local:8080/').read().decode().strip())\""
    )
    core.create_namespaced_pod("default", make_pod("client", [container("c", script)]))
    wait_phase(core, "client", "Succeeded")
    assert logs(core, "client").strip() == "web-a web-b web-a"
