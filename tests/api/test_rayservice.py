"""The RayService controller against localkube (simulated kubelet), next to the RayCluster controller.

Both controllers run in-process on one manager thread and talk to localkube over HTTP. Each RayCluster's
Ray dashboard is a `StubDashboard` (its Serve API), reached through the controller's injectable endpoint;
the Ray token still comes from the cluster's Secret and the stub refuses requests without it. A small
loop plays the Gateway implementation for the incremental upgrade (it marks the Gateway and HTTPRoute
accepted), as Istio would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import _client, install_crds
from ray_operator.raycluster.assembly import RayClusterOperator, build_operator
from ray_operator.rayservice.assembly import RayServiceController, attach_to
from ray_operator.rayservice.gatewaycrds import install_gateway_crds
from ray_operator.rayservice.reconciler import SecretTokens
from ray_operator.settings import load_settings
from rayside.objects import JSON
from tests.support import kube
from tests.support.stubdashboard import StubDashboard

pytestmark = pytest.mark.api
NS = "default"
CONFIG = "applications:\n- name: app\n  route_prefix: /\n  import_path: model:app\n"


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    return kube.wait_for(check, timeout, what, interval=0.1, ignore=(ApiException,))


class Dashboards:
    """One StubDashboard per RayCluster, created on first use with the cluster's real token."""

    def __init__(self, tokens: SecretTokens) -> None:
        self._tokens = tokens
        self.by_cluster: dict[str, StubDashboard] = {}
        self.deploy_polls = 1  # for dashboards created from now on: GETs answering DEPLOYING
        self._lock = threading.Lock()

    def endpoint(self, namespace: str, cluster: JSON) -> tuple[str, str | None]:
        _, token = self._tokens(namespace, cluster)
        name = str(cluster["metadata"]["name"])
        with self._lock:
            stub = self.by_cluster.get(name)
            if stub is None:
                stub = StubDashboard(token=token, serve_deploy_polls=self.deploy_polls).start()
                self.by_cluster[name] = stub
        return f"http://{stub.address}", token

    def stop(self) -> None:
        for stub in self.by_cluster.values():
            stub.stop()


class Operators:
    """The RayCluster and RayService controllers on one manager, on a thread."""

    def __init__(self, lk: LocalKube) -> None:
        settings = load_settings(["--kubeconfig", str(lk.kubeconfig)], environ={})
        kube_client = _client(str(lk.kubeconfig), None)
        self.dashboards = Dashboards(SecretTokens(kube_client, cluster_domain="cluster.local"))
        self.clusters: RayClusterOperator = build_operator(kube_client, settings)
        self.services: RayServiceController = attach_to(
            self.clusters,
            kube_client,
            settings,
            endpoint=self.dashboards.endpoint,
            environ={},
            proxy_health=lambda ip, port: True,  # simulated Pods have no proxy; the stub's apps decide
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.clusters.run, args=(self._stop,), daemon=True)

    def start(self) -> Operators:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        self.services.reconciler.close()
        self.dashboards.stop()

    def passes_after(self, n: int) -> None:
        """Wait until the RayService controller finished `n` more passes than now."""
        start = self.services.reconciler.passes
        wait_for(lambda: self.services.reconciler.passes >= start + n, what=f"{n} more passes")


class GatewayImpl:
    """Plays a Gateway implementation: accepts the Gateway and every HTTPRoute parent."""

    def __init__(self, crs: client.CustomObjectsApi) -> None:
        self._crs = crs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        accepted = [{"type": t, "status": "True", "reason": t} for t in ("Accepted", "Programmed")]
        resolved = [{"type": t, "status": "True", "reason": t} for t in ("Accepted", "ResolvedRefs")]
        while not self._stop.wait(0.1):
            try:
                for plural, status in (
                    ("gateways", {"conditions": accepted}),
                    ("httproutes", {"parents": [{"parentRef": {"name": "gw"}, "conditions": resolved}]}),
                ):
                    for item in self._crs.list_namespaced_custom_object(
                        "gateway.networking.k8s.io", "v1", NS, plural
                    )["items"]:
                        if not item.get("status"):
                            self._crs.patch_namespaced_custom_object_status(
                                "gateway.networking.k8s.io", "v1", NS, plural, item["metadata"]["name"],
                                {"status": status},
                            )  # fmt: skip
            except ApiException:
                continue

    def start(self) -> GatewayImpl:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running(bookmark_interval=1.0, kubelet="simulated", kubelet_options={"ready_delay": 0.2}) as server:
        install_crds(server.kube_client())
        install_gateway_crds(server.kube_client())
        yield server


@pytest.fixture
def ops(lk: LocalKube) -> Iterator[Operators]:
    operators = Operators(lk).start()
    yield operators
    operators.stop()


@pytest.fixture
def crs(lk: LocalKube) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(lk.api_client())


@pytest.fixture
def core(lk: LocalKube) -> client.CoreV1Api:
    return client.CoreV1Api(lk.api_client())


def rayservice(name: str = "svc", **spec: Any) -> JSON:
    def template(container: str) -> JSON:
        return {"spec": {"containers": [{"name": container, "image": "rayproject/ray:2.52.0"}]}}

    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "serveConfigV2": CONFIG,
            "rayClusterDeletionDelaySeconds": 1,
            "rayClusterConfig": {
                "rayVersion": "2.52.0",
                "authOptions": {"mode": "token"},
                "headGroupSpec": {"rayStartParams": {}, "template": template("ray-head")},
                "workerGroupSpecs": [
                    {
                        "groupName": "wg",
                        "replicas": 1,
                        "minReplicas": 1,
                        "maxReplicas": 4,
                        "rayStartParams": {},
                        "template": template("ray-worker"),
                    }
                ],
            },
            **spec,
        },
    }


class Api:
    def __init__(self, crs: client.CustomObjectsApi, core: client.CoreV1Api) -> None:
        self.crs, self.core = crs, core

    def create(self, body: JSON) -> JSON:
        return dict(self.crs.create_namespaced_custom_object("ray.io", "v1", NS, "rayservices", body))

    def get(self, name: str = "svc") -> JSON:
        return dict(self.crs.get_namespaced_custom_object("ray.io", "v1", NS, "rayservices", name))

    def patch(self, body: JSON, name: str = "svc") -> JSON:
        return dict(self.crs.patch_namespaced_custom_object("ray.io", "v1", NS, "rayservices", name, body))

    def status(self, name: str = "svc") -> JSON:
        return dict(self.get(name).get("status") or {})

    def condition(self, type_: str, name: str = "svc") -> tuple[str, str, str]:
        for c in self.status(name).get("conditions") or []:
            if c["type"] == type_:
                return c["status"], c.get("reason", ""), c.get("message", "")
        return "", "", ""

    def active(self, name: str = "svc") -> str:
        return str((self.status(name).get("activeServiceStatus") or {}).get("rayClusterName") or "")

    def pending(self, name: str = "svc") -> str:
        return str((self.status(name).get("pendingServiceStatus") or {}).get("rayClusterName") or "")

    def clusters(self) -> list[str]:
        items = self.crs.list_namespaced_custom_object("ray.io", "v1", NS, "rayclusters")["items"]
        return sorted(i["metadata"]["name"] for i in items if not i["metadata"].get("deletionTimestamp"))

    def selects(self, service: str) -> str:
        return str(self.core.read_namespaced_service(service, NS).spec.selector["ray.io/cluster"])

    def events(self, reason: str) -> list[str]:
        return [e.message for e in self.core.list_namespaced_event(NS).items if e.reason == reason]

    def route(self, name: str = "svc") -> list[tuple[str, int]]:
        group = "gateway.networking.k8s.io"
        route = self.crs.get_namespaced_custom_object(group, "v1", NS, "httproutes", f"{name}-httproute")
        refs = route["spec"]["rules"][0]["backendRefs"]
        return [(r["name"], r["weight"]) for r in refs]

    def ready(self, name: str = "svc") -> bool:
        return self.condition("Ready", name)[0] == "True"


@pytest.fixture
def api(crs: client.CustomObjectsApi, core: client.CoreV1Api) -> Api:
    return Api(crs, core)


def test_create_serve_in_place_autoscaler_edits_and_blue_green_upgrade(api: Api, ops: Operators) -> None:
    api.create(rayservice())
    first = wait_for(lambda: api.ready() and api.active(), what="Ready with an active cluster")
    assert api.clusters() == [first] and api.pending() == ""
    assert api.selects("svc-head-svc") == first and api.selects("svc-serve-svc") == first
    status = api.status()
    assert status["serviceStatus"] == "Running" and status["numServeEndpoints"] >= 1
    assert status["activeServiceStatus"]["applicationStatuses"]["app"]["status"] == "RUNNING"
    assert api.condition("UpgradeInProgress")[:2] == ("False", "NoPendingCluster")
    wait_for(
        lambda: api.events("CreatedRayCluster") and api.events("UpdatedServeApplications"), what="Events"
    )
    head = api.core.list_namespaced_pod(NS, label_selector=f"ray.io/cluster={first},ray.io/node-type=head")
    wait_for(
        lambda: (
            api.core.read_namespaced_pod(head.items[0].metadata.name, NS).metadata.labels["ray.io/serve"]
            == "true"
        ),
        what="the head Pod serving (healthy proxy)",
    )
    stub = ops.dashboards.by_cluster[first]
    assert stub.serve_puts == 1 and all(r.headers.get("x-ray-authorization") for r in stub.recorded)

    # replica / autoscaler edits: no new cluster, no switch
    spec = api.get()["spec"]["rayClusterConfig"]
    spec["workerGroupSpecs"][0].update(replicas=2, maxReplicas=6)
    api.patch({"spec": {"rayClusterConfig": spec}})
    ops.passes_after(6)
    assert api.clusters() == [first] and api.pending() == "" and api.active() == first

    # Serve config only: applied in place
    api.patch({"spec": {"serveConfigV2": CONFIG.replace("model:app", "model:app2")}})
    wait_for(lambda: stub.serve_puts == 2, what="a second PUT to the same cluster")
    assert api.clusters() == [first]

    # a cluster-level change: a new cluster, Services switch, the old one goes after the delay
    spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = "rayproject/ray:2.53.0"
    api.patch({"spec": {"rayClusterConfig": spec}})
    wait_for(lambda: api.active() not in ("", first), timeout=90, what="the new cluster promoted")
    second = api.active()
    assert api.selects("svc-head-svc") == second and api.selects("svc-serve-svc") == second
    wait_for(lambda: api.clusters() == [second], what="the old cluster deleted")
    wait_for(lambda: api.ready() and api.condition("UpgradeInProgress")[1] == "NoPendingCluster")


def test_bad_serve_config_reports_serves_error_and_recovers_in_place(api: Api, ops: Operators) -> None:
    api.create(rayservice())
    first = wait_for(lambda: api.ready() and api.active(), what="Ready with an active cluster")
    api.patch({"spec": {"serveConfigV2": "applications:\n- name: app\n  route_prefix: /\n"}})
    state = wait_for(
        lambda: (s := api.condition("ServeConfigApplied"))[1] == "ServeConfigRejected" and s,
        what="ServeConfigApplied=False",
    )
    assert state[0] == "False" and "import_path: field required" in state[2]
    wait_for(
        lambda: any("import_path: field required" in m for m in api.events("FailedToUpdateServeApplications"))
    )
    assert api.ready()  # the old config keeps serving
    api.patch({"spec": {"serveConfigV2": CONFIG.replace("model:app", "missing_module:app")}})
    state = wait_for(lambda: (s := api.condition("ServeConfigApplied"))[1] == "ApplicationFailed" and s)
    assert "ModuleNotFoundError" in state[2]
    api.patch({"spec": {"serveConfigV2": CONFIG}})
    wait_for(lambda: api.condition("ServeConfigApplied")[:2] == ("True", "ApplicationsRunning"), what="fixed")
    assert api.clusters() == [first] and api.active() == first


def test_incremental_upgrade_moves_route_weights_in_steps(api: Api, ops: Operators, crs: Any) -> None:
    gateway = GatewayImpl(crs).start()
    try:
        body = rayservice(
            upgradeStrategy={
                "type": "NewClusterWithIncrementalUpgrade",
                "clusterUpgradeOptions": {
                    "maxSurgePercent": 50,
                    "stepSizePercent": 25,
                    "intervalSeconds": 1,
                    "gatewayClassName": "test",
                },
            }
        )
        body["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] = True
        api.create(body)
        first = wait_for(lambda: api.ready() and api.active(), what="Ready with an active cluster")
        wait_for(lambda: api.route() == [(f"{first}-serve-svc", 100)], what="the HTTPRoute")
        spec = api.get()["spec"]["rayClusterConfig"]
        spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = "rayproject/ray:2.53.0"
        api.patch({"spec": {"rayClusterConfig": spec}})
        samples: list[int] = []

        def promoted() -> bool:
            route = api.route()
            if len(route) == 2:
                samples.append(route[1][1])
            return api.active() not in ("", first)

        wait_for(promoted, timeout=120, what="the new cluster promoted")
        second = api.active()
        assert samples == sorted(samples) and {25, 50, 75} <= set(samples)
        wait_for(lambda: api.route() == [(f"{second}-serve-svc", 100)], what="one backend")
        wait_for(lambda: api.clusters() == [second], what="the old cluster deleted")
        assert api.condition("UpgradeInProgress")[:2] == ("False", "NoPendingCluster")
    finally:
        gateway.stop()


def test_upgrade_that_never_gets_ready_ends_at_the_deadline_on_the_old_cluster(
    api: Api, ops: Operators
) -> None:
    body = rayservice()
    body["metadata"]["annotations"] = {"rayside.io/upgrade-timeout": "3s"}
    api.create(body)
    first = wait_for(lambda: api.ready() and api.active(), what="Ready with an active cluster")
    ops.dashboards.deploy_polls = 10**9  # the next cluster's app never leaves DEPLOYING
    spec = api.get()["spec"]["rayClusterConfig"]
    spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = "rayproject/ray:2.53.0"
    api.patch({"spec": {"rayClusterConfig": spec}})
    pending = wait_for(api.pending, what="a pending cluster")
    state = wait_for(
        lambda: (s := api.condition("UpgradeInProgress"))[1] == "UpgradeTimeout" and s, what="UpgradeTimeout"
    )
    assert state[0] == "False" and pending in state[2] and first in state[2]
    assert api.active() == first and api.pending() == "" and api.ready()
    assert api.selects("svc-serve-svc") == first
    wait_for(lambda: any(pending in m for m in api.events("RayServiceUpgradeTimeout")), what="the Event")
    wait_for(lambda: api.clusters() == [first], what="the abandoned cluster deleted")
    ops.passes_after(6)  # the same spec is not tried again
    assert api.pending() == "" and api.clusters() == [first]


def test_suspend_deletes_everything_and_resume_starts_a_new_cluster(api: Api, ops: Operators) -> None:
    api.create(rayservice())
    first = wait_for(lambda: api.ready() and api.active(), what="Ready with an active cluster")
    api.patch({"spec": {"suspend": True}})
    wait_for(lambda: api.condition("Suspended")[:2] == ("True", "SuspendComplete"), what="Suspended")
    assert api.clusters() == [] and api.condition("Ready")[:2] == ("False", "SuspendComplete")
    services = {s.metadata.name for s in api.core.list_namespaced_service(NS).items}
    assert not {"svc-head-svc", "svc-serve-svc"} & services
    api.patch({"spec": {"suspend": False}})
    second = wait_for(lambda: api.ready() and api.active(), timeout=90, what="Ready again")
    assert second != first and api.condition("Suspended")[:2] == ("False", "RayServiceResumed")


def test_invalid_name_is_reported_without_a_cluster(api: Api, ops: Operators) -> None:
    name = "s" * 48
    api.create(rayservice(name))
    state = wait_for(lambda: (s := api.condition("Ready", name))[1] == "ValidationFailed" and s)
    assert "no more than 47 characters" in state[2]
    wait_for(lambda: any(name in m for m in api.events("InvalidRayServiceMetadata")), what="the Event")
    assert api.clusters() == []
