"""The simulated (kwok-like) kubelet against a real localkube over HTTP with the official client:
node registration, binding, Pending -> Running/Ready, succeed/fail by annotation and Job ownership,
restarts, graceful deletion and finalizers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from tests.support import kube

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def lk() -> Iterator[LocalKube]:
    with running(kubelet="simulated", kubelet_options={"ready_delay": 0.2, "job_run_seconds": 0.3}) as lk:
        yield lk


@pytest.fixture(scope="module")
def core(lk: LocalKube) -> client.CoreV1Api:
    return client.CoreV1Api(lk.api_client())


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    return kube.wait_for(check, timeout, what, interval=0.1)


def pod(name: str, annotations: dict[str, str] | None = None, policy: str = "Always") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "restartPolicy": policy,
            "containers": [
                {"name": "main", "image": "busybox:1.36"},
                {"name": "side", "image": "busybox:1.36"},
            ],
        },
    }


def phase_of(core: client.CoreV1Api, name: str) -> str:
    return str(core.read_namespaced_pod(name, "default").status.phase)


def gone(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, "default")
    except ApiException as exc:
        return bool(exc.status == 404)
    return False


def test_node_is_registered_ready_with_lease(core: client.CoreV1Api, lk: LocalKube) -> None:
    node = wait_for(lambda: core.list_node().items, what="node")[0]
    assert node.metadata.name == "localkube"
    ready = {c.type: c.status for c in node.status.conditions}
    assert ready["Ready"] == "True"
    assert int(node.status.capacity["cpu"]) >= 1
    assert {a.type: a.address for a in node.status.addresses}["InternalIP"] == "127.0.0.1"
    assert node.status.daemon_endpoints.kubelet_endpoint.port > 0
    coord = client.CoordinationV1Api(lk.api_client())
    lease = wait_for(lambda: coord.list_namespaced_lease("kube-node-lease").items, what="lease")[0]
    assert lease.spec.holder_identity == "localkube"


def test_pod_becomes_running_and_ready(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod("web"))
    wait_for(lambda: phase_of(core, "web") == "Running", what="Running")
    p = core.read_namespaced_pod("web", "default")
    assert p.spec.node_name == "localkube"
    conds = {c.type: c.status for c in p.status.conditions}
    for ctype in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert conds[ctype] == "True", ctype
    assert [c.name for c in p.status.container_statuses] == ["main", "side"]
    assert all(c.ready and c.state.running is not None for c in p.status.container_statuses)
    assert p.status.pod_ip and p.status.host_ip == "127.0.0.1" and p.status.start_time is not None
    other = core.create_namespaced_pod("default", pod("web2"))
    wait_for(lambda: phase_of(core, "web2") == "Running", what="Running")
    assert core.read_namespaced_pod("web2", "default").status.pod_ip != p.status.pod_ip
    assert other.metadata.name == "web2"


@pytest.mark.parametrize(("code", "policy", "phase"), [("0", "Never", "Succeeded"), ("3", "Never", "Failed")])
def test_annotation_ends_pod(core: client.CoreV1Api, code: str, policy: str, phase: str) -> None:
    name = f"end-{code}"
    ann = {"localkube.rayside.io/exit-code": code, "localkube.rayside.io/run-seconds": "0.2"}
    core.create_namespaced_pod("default", pod(name, ann, policy))
    wait_for(lambda: phase_of(core, name) == phase, what=phase)
    st = core.read_namespaced_pod(name, "default").status
    term = st.container_statuses[0].state.terminated
    assert term.exit_code == int(code)
    assert term.reason == ("Completed" if code == "0" else "Error")
    ready = {c.type: (c.status, c.reason) for c in st.conditions}["Ready"]
    assert ready == ("False", "PodCompleted")


def test_failing_container_with_always_restarts(core: client.CoreV1Api) -> None:
    ann = {"localkube.rayside.io/exit-code": "1", "localkube.rayside.io/run-seconds": "0.2"}
    core.create_namespaced_pod("default", pod("crashy", ann, "Always"))
    wait_for(
        lambda: (
            (core.read_namespaced_pod("crashy", "default").status.container_statuses or [None])[0]
            and core.read_namespaced_pod("crashy", "default").status.container_statuses[0].restart_count >= 2
        ),
        what="restarts",
    )
    st = core.read_namespaced_pod("crashy", "default").status
    assert st.phase == "Running"
    assert st.container_statuses[0].last_state.terminated.exit_code == 1


def test_job_owned_pod_completes_by_default(core: client.CoreV1Api) -> None:
    body = pod("job-pod", policy="Never")
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "11111111-2222-4333-8444-555555555555"}
    ]
    core.create_namespaced_pod("default", body)
    wait_for(lambda: phase_of(core, "job-pod") == "Succeeded", what="Succeeded")


def test_graceful_delete_and_finalizers(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod("doomed"))
    wait_for(lambda: phase_of(core, "doomed") == "Running", what="Running")
    core.delete_namespaced_pod("doomed", "default", grace_period_seconds=30)
    wait_for(lambda: gone(core, "doomed"), what="pod removed by the kubelet")

    body = pod("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_pod("default", body)
    wait_for(lambda: phase_of(core, "held") == "Running", what="Running")
    core.delete_namespaced_pod("held", "default")
    wait_for(
        lambda: core.read_namespaced_pod("held", "default").metadata.deletion_grace_period_seconds == 0,
        what="kubelet's final delete",
    )
    assert not gone(core, "held")
    core.patch_namespaced_pod("held", "default", {"metadata": {"finalizers": None}})
    wait_for(lambda: gone(core, "held"), what="pod removed after finalizer")


def test_scheduler_names_restrict_binding() -> None:
    opts = {"ready_delay": 0.1, "scheduler_names": ["default-scheduler"]}
    with running(kubelet="simulated", kubelet_options=opts) as lk:
        core = client.CoreV1Api(lk.api_client())
        gang = pod("gang")
        gang["spec"]["schedulerName"] = "volcano"
        core.create_namespaced_pod("default", gang)
        core.create_namespaced_pod("default", pod("plain"))
        wait_for(lambda: phase_of(core, "plain") == "Running", what="Running")
        p = core.read_namespaced_pod("gang", "default")
        assert p.status.phase == "Pending" and not p.spec.node_name


def test_unknown_option_is_a_clear_error() -> None:
    from localkube.kubelet import Kubelet, SettingsError

    with running() as lk, pytest.raises(SettingsError, match="'bogus' is unknown"):
        Kubelet(lk.kube_client(), mode="simulated", state_dir=lk.state_dir, bogus=1)


def test_failed_bindings_are_retried_until_the_pod_is_bound() -> None:
    """Like kube-scheduler's backoff queue: an injected 500 on pods/binding must not leave a pod Pending."""
    with running(kubelet="simulated", kubelet_options={"ready_delay": 0.1}) as own:
        api = client.CoreV1Api(own.api_client())
        own.faults.set(error_rates={"create": {500: 0.6}}, seed=3)
        names = [f"flaky-{i}" for i in range(8)]
        injected = 0
        for name in names:
            for _attempt in range(50):  # the test's own creates see the injected 500s too
                try:
                    api.create_namespaced_pod("default", pod(name))
                    break
                except ApiException as exc:
                    if exc.status == 409:  # an earlier attempt did land
                        break
                    assert exc.status == 500
                    injected += 1
        assert injected > 0, "the fault injection must really be failing creates"
        for name in names:
            wait_for(lambda n=name: phase_of(api, n) == "Running", what=f"{name} Running")  # type: ignore[misc]


def test_failed_status_writes_are_retried_until_the_pod_runs() -> None:
    """Like a real kubelet's status manager: an injected 500 on the pod status patch must not leave a
    bound pod Pending forever (it did: the simulated kubelet dropped a failed write)."""
    with running(kubelet="simulated", kubelet_options={"ready_delay": 0.1}) as own:
        api = client.CoreV1Api(own.api_client())
        names = [f"status-{i}" for i in range(8)]
        for name in names:
            api.create_namespaced_pod("default", pod(name))
        own.faults.set(error_rates={"patch": {500: 0.7}}, seed=5)  # P(no write of 8 fails) < 1e-4
        for name in names:
            wait_for(lambda n=name: phase_of(api, n) == "Running", what=f"{name} Running")  # type: ignore[misc]
