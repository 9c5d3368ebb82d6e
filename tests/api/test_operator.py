"""The RayCluster operator against localkube (simulated kubelet), driven with the official client.

The operator runs in-process on a thread (`OperatorThread`), talking to localkube over HTTP through
`rayside.kubeclient`; the tests act only through the Kubernetes API.
"""

from __future__ import annotations

import functools
import io
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import _client, get_token_main, install_crds
from ray_operator.raycluster.assembly import RayClusterOperator, build_operator
from ray_operator.settings import load_settings
from rayside.objects import JSON
from tests.support import kube

pytestmark = pytest.mark.api
NS = "default"


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    return kube.wait_for(check, timeout, what, interval=0.1)


class OperatorThread:
    """`rayside operator` in-process: start() / stop() like a process, but on a thread."""

    def __init__(self, lk: LocalKube, *flags: str) -> None:
        self.settings = load_settings(["--kubeconfig", str(lk.kubeconfig), *flags], environ={})
        self.client = _client(
            str(lk.kubeconfig), None, qps=self.settings.kube_qps, burst=self.settings.kube_burst
        )
        self.operator: RayClusterOperator = build_operator(self.client, self.settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.exit_code: int | None = None

    def _run(self) -> None:
        self.exit_code = self.operator.run(self._stop)

    def start(self) -> OperatorThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive()


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running(bookmark_interval=1.0, kubelet="simulated", kubelet_options={"ready_delay": 0.2}) as server:
        install_crds(server.kube_client())
        yield server


@pytest.fixture
def operator(lk: LocalKube) -> Iterator[OperatorThread]:
    op = OperatorThread(lk, "--reconcile-concurrency", "2").start()
    yield op
    op.stop()


@pytest.fixture
def core(lk: LocalKube) -> client.CoreV1Api:
    return client.CoreV1Api(lk.api_client())


@pytest.fixture
def crs(lk: LocalKube) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(lk.api_client())


def template(name: str) -> JSON:
    return {"spec": {"containers": [{"name": name, "image": "rayproject/ray:2.52.0"}]}}


def raycluster(name: str = "rc", *groups: JSON, **spec: Any) -> JSON:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "rayVersion": "2.52.0",
            "headGroupSpec": {"rayStartParams": {}, "template": template("ray-head")},
            "workerGroupSpecs": list(groups),
            **spec,
        },
    }


def group(name: str = "wg", replicas: int = 2, **extra: Any) -> JSON:
    return {
        "groupName": name,
        "replicas": replicas,
        "minReplicas": 0,
        "maxReplicas": 100,
        "rayStartParams": {},
        "template": template("ray-worker"),
        **extra,
    }


class Api:
    def __init__(self, core: client.CoreV1Api, crs: client.CustomObjectsApi) -> None:
        self.core, self.crs = core, crs

    def create(self, body: JSON) -> JSON:
        return dict(self.crs.create_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", body))

    def get(self, name: str = "rc") -> JSON:
        return dict(self.crs.get_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", name))

    def patch(self, body: JSON, name: str = "rc") -> JSON:
        return dict(self.crs.patch_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", name, body))

    def pods(self, cluster: str = "rc", alive: bool = True) -> list[Any]:
        items = self.core.list_namespaced_pod(NS, label_selector=f"ray.io/cluster={cluster}").items
        return [p for p in items if not (alive and p.metadata.deletion_timestamp)]

    def workers(self, cluster: str = "rc") -> list[Any]:
        return [p for p in self.pods(cluster) if p.metadata.labels["ray.io/node-type"] == "worker"]

    def condition(self, type_: str, name: str = "rc") -> JSON | None:
        for cond in (self.get(name).get("status") or {}).get("conditions") or []:
            if cond["type"] == type_:
                return dict(cond)
        return None

    def ready(self, name: str = "rc", workers: int | None = None) -> bool:
        status = self.get(name).get("status") or {}
        return status.get("state") == "ready" and (
            workers is None or status.get("availableWorkerReplicas") == workers
        )


@pytest.fixture
def api(core: client.CoreV1Api, crs: client.CustomObjectsApi) -> Api:
    return Api(core, crs)


def settle(op: OperatorThread, api: Api, name: str = "rc") -> None:
    """Wait until the operator has finished a pass that started after this call: poke the cluster (a label
    change queues it) and wait until a completed pass read that version. Passes of one key never overlap,
    so every pass that started earlier has finished too and its writes are visible."""
    poked = retried(
        lambda: api.patch({"metadata": {"labels": {"test/settle": str(time.monotonic_ns())}}}, name)
    )
    version = int(poked["metadata"]["resourceVersion"])
    reconciler = op.operator.reconciler
    wait_for(lambda: reconciler.last_seen.get(f"{NS}/{name}", -1) >= version, what="a pass after the poke")


def indexes(pods: list[Any]) -> list[str]:
    return sorted(p.metadata.labels.get("ray.io/worker-group-replica-index", "") for p in pods)


def test_create_scale_up_and_down(api: Api, operator: OperatorThread) -> None:
    api.create(raycluster("rc", group(replicas=2)))
    wait_for(lambda: api.ready(workers=2), what="ready with 2 workers")
    assert len(api.pods()) == 3
    assert api.core.read_namespaced_service("rc-head-svc", NS).spec.cluster_ip == "None"
    api.patch({"spec": {"workerGroupSpecs": [group(replicas=5)]}})
    wait_for(lambda: len(api.workers()) == 5 and api.ready(workers=5), what="5 workers")
    assert indexes(api.workers()) == ["0", "1", "2", "3", "4"]
    api.patch({"spec": {"workerGroupSpecs": [group(replicas=1)]}})
    wait_for(lambda: len(api.workers()) == 1, what="scale down to 1")
    status = wait_for(lambda: (s := api.get()["status"])["availableWorkerReplicas"] == 1 and s, what="status")
    assert status["desiredWorkerReplicas"] == 1 and status["observedGeneration"] == 3
    reasons = {e.reason for e in api.core.list_namespaced_event(NS).items}
    assert {"CreatedHeadPod", "CreatedWorkerPod", "DeletedWorkerPod"} <= reasons


def test_workers_to_delete_with_autoscaler_is_honoured_and_cleared(
    api: Api, operator: OperatorThread
) -> None:
    api.create(raycluster("rc", group(replicas=3), enableInTreeAutoscaling=True))
    wait_for(lambda: api.ready(workers=3), what="3 workers")
    assert api.core.read_namespaced_service_account("rc", NS).metadata.name == "rc"
    rbac = client.RbacAuthorizationV1Api(api.core.api_client)
    assert rbac.read_namespaced_role("rc", NS).rules and rbac.read_namespaced_role_binding("rc", NS).subjects
    head = next(p for p in api.pods() if p.metadata.labels["ray.io/node-type"] == "head")
    assert [c.name for c in head.spec.containers] == ["ray-head", "autoscaler"]
    names = sorted(p.metadata.name for p in api.workers())
    # replicas lowered without workersToDelete: the operator leaves scale-down to the autoscaler
    generation = api.patch({"spec": {"workerGroupSpecs": [group(replicas=1)]}})["metadata"]["generation"]
    wait_for(
        lambda: (api.get().get("status") or {}).get("observedGeneration") == generation,
        what="the operator saw replicas=1",
    )
    assert len(api.workers()) == 3
    doomed = names[:2]
    api.patch({"spec": {"workerGroupSpecs": [group(replicas=1, scaleStrategy={"workersToDelete": doomed})]}})
    wait_for(
        lambda: sorted(p.metadata.name for p in api.workers()) == names[2:], what="listed workers deleted"
    )
    wait_for(
        lambda: (
            api.get()["spec"]["workerGroupSpecs"][0].get("scaleStrategy", {}).get("workersToDelete") == []
        ),
        what="workersToDelete cleared",
    )
    assert [p.metadata.name for p in api.workers()] == names[2:]


def test_multi_host_slice_replaced_whole(api: Api, operator: OperatorThread) -> None:
    api.create(raycluster("rc", group("tpu", replicas=2, numOfHosts=2)))
    wait_for(lambda: api.ready(workers=4), what="2 slices of 2 hosts")
    api.core.read_namespaced_service("rc-headless", NS)
    slices: dict[str, list[Any]] = {}
    for pod in api.workers():
        slices.setdefault(pod.metadata.labels["ray.io/worker-group-replica-name"], []).append(pod)
    assert sorted(len(v) for v in slices.values()) == [2, 2]
    victim_slice, other_slice = sorted(slices)
    victim = slices[victim_slice][0]
    victim_index = victim.metadata.labels["ray.io/worker-group-replica-index"]
    api.core.delete_namespaced_pod(victim.metadata.name, NS)

    def replaced() -> bool:
        pods = api.workers()
        names = {p.metadata.labels["ray.io/worker-group-replica-name"] for p in pods}
        return len(pods) == 4 and victim_slice not in names and other_slice in names

    wait_for(replaced, what="slice replaced whole")
    new = [p for p in api.workers() if p.metadata.labels["ray.io/worker-group-replica-name"] != other_slice]
    assert {p.metadata.labels["ray.io/worker-group-replica-index"] for p in new} == {victim_index}
    assert sorted(p.metadata.labels["ray.io/replica-host-index"] for p in new) == ["0", "1"]
    kept = {p.metadata.name for p in slices[other_slice]}
    assert kept <= {p.metadata.name for p in api.workers()}


def test_suspend_and_resume(api: Api, operator: OperatorThread) -> None:
    api.create(raycluster("rc", group(replicas=2)))
    wait_for(lambda: api.ready(workers=2), what="ready")
    api.patch({"spec": {"suspend": True}})
    wait_for(lambda: api.get()["status"].get("state") == "suspended", what="suspended")
    assert api.pods(alive=False) == [] or all(p.metadata.deletion_timestamp for p in api.pods(alive=False))
    assert (api.condition("RayClusterSuspended") or {}).get("status") == "True"
    assert (api.condition("RayClusterSuspending") or {}).get("status") == "False"
    assert (api.condition("RayClusterProvisioned") or {}).get("status") == "False"
    api.core.read_namespaced_service("rc-head-svc", NS)
    api.patch({"spec": {"suspend": False}})
    wait_for(lambda: api.ready(workers=2) and len(api.pods()) == 3, what="resumed and ready")
    assert (api.condition("RayClusterSuspended") or {}).get("status") == "False"


def test_operator_restart_mid_scale_creates_no_duplicates(lk: LocalKube, api: Api) -> None:
    slow = OperatorThread(lk, "--kube-qps", "4", "--kube-burst", "1").start()
    api.create(raycluster("rc", group(replicas=20)))
    wait_for(lambda: len(api.pods()) >= 4, what="some pods")
    slow.stop()
    assert 4 <= len(api.pods()) < 21
    fresh = OperatorThread(lk, "--reconcile-concurrency", "2").start()
    try:
        wait_for(lambda: api.ready(workers=20), what="all 20 workers")
        settle(fresh, api)  # a duplicate create would show up by now
        assert len(api.pods()) == 21
        assert indexes(api.workers()) == sorted(str(i) for i in range(20))
    finally:
        fresh.stop()


def retried(call: Callable[[], JSON]) -> JSON:
    """Run a test-side write through injected faults."""
    for _ in range(50):
        try:
            return call()
        except ApiException as exc:
            if exc.status not in (409, 500):
                raise
    raise AssertionError("write kept failing")


def test_faults_watch_drops_and_410_converge_without_orphans(lk: LocalKube, api: Api) -> None:
    api.create(raycluster("rc", group(replicas=6)))
    lk.faults.set(
        error_rates={"create": {500: 0.2, 409: 0.1}, "delete": {500: 0.2}, "patch": {500: 0.2, 409: 0.1}},
        watch_drop_after=1.0,
        seed=7,
    )
    op = OperatorThread(lk, "--reconcile-concurrency", "2").start()
    try:
        wait_for(lambda: len(api.workers()) == 6, timeout=90, what="6 workers despite faults")
        lk.compact()  # watches resuming from older resourceVersions now get 410 Gone and must relist
        retried(lambda: api.patch({"spec": {"workerGroupSpecs": [group(replicas=2)]}}))
        wait_for(lambda: len(api.workers()) == 2, timeout=90, what="scale down despite faults")
        lk.faults.clear()
        wait_for(lambda: (api.get().get("status") or {}).get("desiredWorkerReplicas") == 2, what="status")
        settle(op, api)
        pods = api.pods()
        assert len(pods) == 3
        # every pod gets bound and runs (the kubelet retries failed bindings) and the status says so
        try:
            wait_for(lambda: api.ready(workers=2), timeout=90, what="ready after the faults")
        except AssertionError:  # show what was not ready
            print([(p.metadata.name, p.spec.node_name, p.status.phase) for p in api.pods()])
            print(api.get().get("status"))
            raise
        assert api.get()["status"].get("availableWorkerReplicas") == 2
        assert all(p.metadata.owner_references[0].name == "rc" for p in pods)
        hits = op.operator.reconciler.failed_actions + op.operator.manager.controllers[0].errors
        assert hits > 0  # the faults really hit the operator
    finally:
        lk.faults.clear()
        op.stop()


def test_schema_rejects_bad_specs_at_admission(api: Api, operator: OperatorThread) -> None:
    bad = raycluster("bad", group(replicas=1, minReplicas=3, maxReplicas=1))
    with pytest.raises(ApiException) as info:
        api.create(bad)
    assert info.value.status == 422 and "minReplicas" in info.value.body
    with pytest.raises(ApiException) as info:
        api.create(raycluster("bad", group(replicas=-1)))
    assert info.value.status == 422


def test_invalid_spec_is_reported_and_recovers(api: Api, operator: OperatorThread) -> None:
    body = raycluster("rc", group(replicas=1), authOptions={"mode": "token"})
    body["spec"]["rayVersion"] = "2.46.0"
    api.create(body)
    cond = wait_for(lambda: api.condition("RayClusterSpecValid"), what="invalid-spec condition")
    assert cond["status"] == "False" and "2.52.0" in cond["message"]
    assert api.pods() == []
    api.patch({"spec": {"rayVersion": "2.52.0"}})
    wait_for(lambda: api.ready(workers=1), what="ready after the fix")
    assert (api.condition("RayClusterSpecValid") or {}).get("status") == "True"


def test_token_auth_secret_and_get_token(lk: LocalKube, api: Api, operator: OperatorThread) -> None:
    api.create(raycluster("rc", group(replicas=1), authOptions={"mode": "token"}))
    wait_for(lambda: api.ready(workers=1), what="ready")
    secret = api.core.read_namespaced_secret("rc", NS)
    assert secret.metadata.owner_references[0].name == "rc"
    out = io.StringIO()
    assert get_token_main(["rc", "-n", NS, "--kubeconfig", str(lk.kubeconfig)], out=out) == 0
    token = out.getvalue().strip()
    assert len(token) == 44
    for pod in api.pods():
        env = {e.name: e for e in pod.spec.containers[0].env}
        assert env["RAY_AUTH_MODE"].value == "token"
        assert env["RAY_AUTH_TOKEN"].value_from.secret_key_ref.name == "rc"
        assert token not in str(pod.to_dict())
    # Events are sent in the background: wait until the created-pod ones exist, then check them all
    reasons = lambda: {e.reason for e in api.core.list_namespaced_event(NS).items}  # noqa: E731
    wait_for(lambda: {"CreatedHeadPod", "CreatedWorkerPod"} <= reasons(), what="creation events")
    events = " ".join(f"{e.message}" for e in api.core.list_namespaced_event(NS).items)
    assert token not in events and token not in str(api.get())
    assert get_token_main(["missing", "-n", NS, "--kubeconfig", str(lk.kubeconfig)], out=out) == 1
    assert get_token_main(["--bogus"], out=out) == 2


def test_managed_by_multikueue_is_left_alone(api: Api, operator: OperatorThread) -> None:
    api.create(raycluster("mk", group(replicas=1), managedBy="kueue.x-k8s.io/multikueue"))
    api.create(raycluster("rc", group(replicas=1)))
    wait_for(lambda: api.ready("rc", workers=1), what="the normal cluster is ready")
    assert api.pods("mk") == []
    assert "status" not in api.get("mk") or not api.get("mk")["status"]


def test_leader_election_single_active_operator(lk: LocalKube, api: Api) -> None:
    first = OperatorThread(lk, "--leader-elect").start()
    wait_for(first.operator.manager.started.is_set, what="first operator leads")
    second = OperatorThread(lk, "--leader-elect").start()
    try:
        api.create(raycluster("rc", group(replicas=3)))
        wait_for(lambda: api.ready(workers=3), what="ready")
        assert not second.operator.manager.started.is_set()
        coordination = client.CoordinationV1Api(api.core.api_client)
        lease = coordination.read_namespaced_lease("ray-operator-leader", "default")
        assert lease.spec.holder_identity == first.settings.identity
        first.stop()  # releases the lease: the second takes over promptly
        wait_for(second.operator.manager.started.is_set, what="second operator takes over")
        api.patch({"spec": {"workerGroupSpecs": [group(replicas=4)]}})
        wait_for(lambda: api.ready(workers=4), what="second operator scales")
        assert len(api.pods()) == 5
    finally:
        second.stop()


def podgroup_crd(group: str, version: str) -> JSON:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"podgroups.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": "podgroups",
                "singular": "podgroup",
                "kind": "PodGroup",
                "listKind": "PodGroupList",
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


def test_batch_schedulers_create_pod_groups(lk: LocalKube, api: Api) -> None:
    ext = client.ApiextensionsV1Api(api.core.api_client)
    ext.create_custom_resource_definition(podgroup_crd("scheduling.volcano.sh", "v1beta1"))
    ext.create_custom_resource_definition(podgroup_crd("scheduling.x-k8s.io", "v1alpha1"))
    for pg_group, version in (("scheduling.volcano.sh", "v1beta1"), ("scheduling.x-k8s.io", "v1alpha1")):
        served = functools.partial(api.crs.list_namespaced_custom_object, pg_group, version, NS, "podgroups")
        kube.wait_for(served, 60.0, f"podgroups.{pg_group} served", interval=0.1, ignore=(ApiException,))
    op = OperatorThread(lk, "--batch-scheduler", "volcano").start()
    try:
        volcano = raycluster("rc", group(replicas=2))
        volcano["metadata"]["labels"] = {"volcano.sh/queue-name": "q1"}
        api.create(volcano)
        plugins = raycluster("sp", group(replicas=1))
        plugins["metadata"]["labels"] = {
            "ray.io/scheduler-name": "scheduler-plugins",
            "ray.io/gang-scheduling-enabled": "true",
        }
        api.create(plugins)
        pg = wait_for(
            lambda: _get_custom(api, "scheduling.volcano.sh", "v1beta1", "podgroups", "ray-rc-pg"),
            what="PodGroup",
        )
        assert pg["spec"]["minMember"] == 3 and pg["spec"]["queue"] == "q1"
        assert pg["metadata"]["ownerReferences"][0]["name"] == "rc"
        wait_for(lambda: len(api.pods("rc")) == 3, what="volcano pods")
        for pod in api.pods("rc"):
            assert pod.spec.scheduler_name == "volcano"
            assert pod.metadata.annotations["scheduling.k8s.io/group-name"] == "ray-rc-pg"
        sp = wait_for(
            lambda: _get_custom(api, "scheduling.x-k8s.io", "v1alpha1", "podgroups", "sp"), what="PodGroup sp"
        )
        assert sp["spec"]["minMember"] == 2
        wait_for(lambda: len(api.pods("sp")) == 2, what="scheduler-plugins pods")
        for pod in api.pods("sp"):
            assert pod.spec.scheduler_name == "scheduler-plugins-scheduler"
            assert pod.metadata.labels["scheduling.x-k8s.io/pod-group"] == "sp"
    finally:
        op.stop()


def _get_custom(api: Api, group: str, version: str, plural: str, name: str) -> JSON | None:
    try:
        return dict(api.crs.get_namespaced_custom_object(group, version, NS, plural, name))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
