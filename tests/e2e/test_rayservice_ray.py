"""The RayService controller with real Ray Serve on localkube's process kubelet (token auth on).

The app's code is a ConfigMap mounted on the head and worker Pods, found through `PYTHONPATH`: a tiny
Serve deployment answering `<version> <pod name>` (the pod name tells which RayCluster served). The
operator (RayCluster + RayService controllers, in-process) reaches each cluster's dashboard at its head
Pod IP: it runs on the host, where localkube resolves no Service names (they resolve only inside pods).
Traffic goes the way kube-proxy would send it: to `<rs>-serve-svc`'s Endpoints (Ready Pods that carry
`ray.io/serve=true` of the cluster the Service selects), port 8000, re-read before every request.

One shared RayService walks through: (a) a Serve-config-only change applied in place; (b) a
`rayClusterConfig` change upgraded blue/green to a new cluster under a request loop that must see zero
failures, the old cluster deleted after `rayClusterDeletionDelaySeconds`; (c) a bad import path reported
(condition + Event with Serve's error) and fixed in place. The upgrade time and the failed requests are
printed (`-s`) and recorded in docs/operator.md.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import _client, install_crds
from ray_operator.raycluster.assembly import build_operator
from ray_operator.rayservice.assembly import attach_to
from ray_operator.rayservice.dashboard import DashboardError
from ray_operator.rayservice.reconciler import SecretTokens, dashboard_port
from ray_operator.settings import load_settings
from rayside.objects import JSON
from tests.support import kube

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root for pod netns")]
NS = "default"
RS = "vsvc"
RAY_VERSION = "2.60.0"
APP_DIR = "/opt/rayside-verapp"
APP = """
import os

from ray import serve


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Version:
    def __init__(self, version):
        self.version = version

    async def __call__(self, request):
        return f"{self.version} {os.environ.get('HOSTNAME', '?')}"


def build(args):
    return Version.bind(str(args.get("version", "v0")))
"""


def serve_config(version: str, import_path: str = "verapp:build") -> str:
    return (
        "applications:\n"
        "- name: app\n"
        "  route_prefix: /\n"
        f"  import_path: {import_path}\n"
        f"  args: {{version: {version}}}\n"
    )


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    return kube.wait_for(
        check, timeout, what, interval=0.5, ignore=(requests.RequestException, ApiException, KeyError)
    )


def container(name: str) -> JSON:
    return {
        "name": name,
        "image": f"rayproject/ray:{RAY_VERSION}",
        "env": [
            {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
            {"name": "PYTHONPATH", "value": APP_DIR},
        ],
        "volumeMounts": [{"name": "app", "mountPath": APP_DIR}],
        "resources": {"limits": {"memory": "1Gi"}, "requests": {"memory": "256Mi"}},
    }


def template(name: str) -> JSON:
    return {
        "spec": {
            "containers": [container(name)],
            "volumes": [{"name": "app", "configMap": {"name": "verapp"}}],
        }
    }


def rayservice() -> JSON:
    params = {"object-store-memory": "80000000"}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": RS, "namespace": NS},
        "spec": {
            "rayClusterDeletionDelaySeconds": 5,
            "serveConfigV2": serve_config("v1"),
            "rayClusterConfig": {
                "rayVersion": RAY_VERSION,
                "authOptions": {"mode": "token"},
                "headGroupSpec": {
                    "rayStartParams": {**params, "num-cpus": "0"},
                    "template": template("ray-head"),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "wg",
                        "replicas": 1,
                        "minReplicas": 0,
                        "maxReplicas": 2,
                        "rayStartParams": {**params, "num-cpus": "1"},
                        "template": template("ray-worker"),
                    }
                ],
            },
        },
    }


class PodIPs:
    """The operator's dashboard endpoint: the head Pod's IP (Service names do not resolve on the host) and
    the cluster's token from its Secret, as the default endpoint reads it."""

    def __init__(self, core: client.CoreV1Api, tokens: SecretTokens) -> None:
        self._core = core
        self._tokens = tokens

    def __call__(self, namespace: str, cluster: JSON) -> tuple[str, str | None]:
        _, token = self._tokens(namespace, cluster)
        name = cluster["metadata"]["name"]
        selector = f"ray.io/cluster={name},ray.io/node-type=head"
        try:
            pods = self._core.list_namespaced_pod(namespace, label_selector=selector).items
        except ApiException as exc:
            raise DashboardError(f"head pod of {name}: {exc.status}") from None
        ips = [p.status.pod_ip for p in pods if p.status.pod_ip and not p.metadata.deletion_timestamp]
        if not ips:
            raise DashboardError(f"head pod of {name} has no IP yet")
        return f"http://{ips[0]}:{dashboard_port(cluster)}", token


@dataclass
class World:
    lk: LocalKube
    core: client.CoreV1Api
    crs: client.CustomObjectsApi

    def rs(self) -> JSON:
        obj: JSON = self.crs.get_namespaced_custom_object("ray.io", "v1", NS, "rayservices", RS)
        return obj

    def status(self) -> JSON:
        return dict(self.rs().get("status") or {})

    def active(self) -> str:
        return str((self.status().get("activeServiceStatus") or {}).get("rayClusterName") or "")

    def clusters(self) -> list[str]:
        items = self.crs.list_namespaced_custom_object("ray.io", "v1", NS, "rayclusters")["items"]
        return sorted(i["metadata"]["name"] for i in items)

    def selected_cluster(self) -> str:
        svc = self.core.read_namespaced_service(f"{RS}-serve-svc", NS)
        return str((svc.spec.selector or {}).get("ray.io/cluster") or "")

    def serve_ips(self) -> list[str]:
        """Ready addresses of the serve Service's Endpoints (what kube-proxy would balance over)."""
        ep = self.core.read_namespaced_endpoints(f"{RS}-serve-svc", NS)
        return [a.ip for s in ep.subsets or [] for a in s.addresses or []]

    def patch_spec(self, spec: JSON) -> None:
        self.crs.patch_namespaced_custom_object("ray.io", "v1", NS, "rayservices", RS, {"spec": spec})

    def condition(self, type_: str) -> JSON:
        return next((c for c in self.status().get("conditions") or [] if c.get("type") == type_), {})

    def events(self, reason: str) -> list[str]:
        items = self.core.list_namespaced_event(NS).items
        return [e.message or "" for e in items if e.reason == reason and e.involved_object.name == RS]


def ask(ip: str, timeout: float = 5.0) -> str:
    r = requests.get(f"http://{ip}:8000/", timeout=timeout)
    r.raise_for_status()
    return r.text


def answer(world: World) -> str:
    """One answer through the serve Service's first endpoint."""
    ips = world.serve_ips()
    assert ips, "no serve endpoints"
    return ask(ips[0])


@dataclass
class Loop:
    """Requests through the serve Service's Endpoints, round-robin, until stopped (bounded by `limit`
    requests); every failure is counted with its cause."""

    world: World
    limit: int = 5000
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    answers: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        turn = itertools.count()
        while not self.stop.is_set() and self.ok + len(self.failures) < self.limit:
            try:
                ips = self.world.serve_ips()
            except ApiException as exc:  # the API server, not the app: not a served request
                self.failures.append(f"endpoints: {exc.status}")
                continue
            if not ips:
                self.failures.append("no ready serve endpoint")
                time.sleep(0.05)
                continue
            ip = ips[next(turn) % len(ips)]
            try:
                self.answers.append((time.monotonic(), ask(ip)))
                self.ok += 1
            except requests.RequestException as exc:
                self.failures.append(f"{ip}: {type(exc).__name__}: {str(exc)[:120]}")
            time.sleep(0.02)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with running(kubelet="process", controllers=True, kubelet_options={"restart_backoff": 1.0}) as lk:
        kube_client = _client(str(lk.kubeconfig), None)
        install_crds(kube_client)
        core = client.CoreV1Api(lk.api_client())
        crs = client.CustomObjectsApi(lk.api_client())
        settings = load_settings(
            ["--kubeconfig", str(lk.kubeconfig), "--reconcile-concurrency", "2"], environ={}
        )
        operator = build_operator(kube_client, settings)
        endpoint = PodIPs(core, SecretTokens(kube_client, cluster_domain="cluster.local"))
        services = attach_to(operator, kube_client, settings, endpoint=endpoint, environ={})
        stop = threading.Event()
        thread = threading.Thread(target=operator.run, args=(stop,), daemon=True)
        thread.start()
        core.create_namespaced_config_map(
            NS, {"metadata": {"name": "verapp"}, "data": {"verapp.py": APP.lstrip()}}
        )
        try:
            yield World(lk, core, crs)
        finally:
            with contextlib.suppress(ApiException):
                crs.delete_namespaced_custom_object("ray.io", "v1", NS, "rayservices", RS)
            try:
                wait_for(lambda: not core.list_namespaced_pod(NS).items, 120, "pods gone")
            finally:
                stop.set()
                thread.join(60)
                services.reconciler.close()


def _dump(world: World) -> None:
    print("status:", world.status())
    for pod in world.core.list_namespaced_pod(NS).items:
        print(pod.metadata.name, pod.status.phase, pod.status.pod_ip, pod.metadata.labels)
        for cs in pod.status.container_statuses or []:
            print(f"  {cs.name}: ready={cs.ready} restarts={cs.restart_count}")


def _head_ready(world: World, cluster: str) -> bool:
    selector = f"ray.io/cluster={cluster},ray.io/node-type=head"
    for pod in world.core.list_namespaced_pod(NS, label_selector=selector).items:
        if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
            return True
    return False


def _first_cluster(world: World) -> str:
    world.crs.create_namespaced_custom_object("ray.io", "v1", NS, "rayservices", rayservice())
    t0 = time.monotonic()
    try:
        first = str(
            wait_for(
                lambda: world.condition("Ready").get("status") == "True" and world.active(), 400, "Ready"
            )
        )
        wait_for(lambda: answer(world).startswith("v1 "), 120, "v1 answer through the serve Service")
    except AssertionError:
        _dump(world)
        raise
    print(f"\nfirst cluster {first} serving after {time.monotonic() - t0:.1f}s")
    assert answer(world).split()[1].startswith(f"{first}-")  # the pod name carries the cluster name
    return first


def _in_place(world: World, first: str) -> None:
    """(a) Serve config only: applied in place, same cluster."""
    world.patch_spec({"serveConfigV2": serve_config("v2")})
    wait_for(lambda: answer(world).startswith("v2 "), 120, "v2 answer (in place)")
    assert world.active() == first and world.clusters() == [first]
    assert answer(world).split()[1].startswith(f"{first}-")


def _upgrade(world: World, first: str) -> str:
    """(b) rayClusterConfig change: a new cluster, zero failed requests while traffic moves."""
    loop = Loop(world)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    wait_for(lambda: loop.ok >= 5, 30, "the request loop running")
    spec = copy.deepcopy(world.rs()["spec"]["rayClusterConfig"])
    spec["headGroupSpec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "COLOR", "value": "green"}
    )
    changed = time.monotonic()
    world.patch_spec({"rayClusterConfig": spec})
    try:
        pending = wait_for(lambda: set(world.clusters()) - {first}, 60, "the new cluster")
        created = time.monotonic()
        head_ready = wait_for(
            lambda: _head_ready(world, min(pending)) and time.monotonic(), 400, "new head Ready"
        )
        second = str(
            wait_for(
                lambda: (n := world.selected_cluster()) != first and n,
                400,
                "serve Service on the new cluster",
            )
        )
    except AssertionError:
        _dump(world)
        raise
    switched = time.monotonic()
    assert first in world.clusters()  # the old cluster outlives the switch by rayClusterDeletionDelaySeconds
    wait_for(
        lambda: any(a.split()[1].startswith(f"{second}-") for _, a in loop.answers[-20:]), 60, "new answers"
    )
    served = next(t for t, a in loop.answers if a.split()[1].startswith(f"{second}-"))
    wait_for(lambda: world.clusters() == [second], 120, "old cluster deleted after the delay")
    deleted = time.monotonic()
    time.sleep(2)  # a few more requests after the old cluster is gone
    loop.stop.set()
    thread.join(30)
    print(
        f"upgrade: new cluster created {created - changed:.1f}s, its head Ready {head_ready - changed:.1f}s; "
        f"spec change -> serve Service on {second}: {switched - changed:.1f}s; first answer from it "
        f"{served - changed:.1f}s; old cluster gone {deleted - changed:.1f}s; requests ok={loop.ok} "
        f"failed={len(loop.failures)}"
    )
    assert world.active() == second
    assert loop.failures == [], loop.failures[:10]
    assert loop.ok > 20
    return second


def _bad_import_path(world: World, second: str) -> None:
    """(c) a bad import path: Serve's error in the condition and an Event; fixed in place."""
    world.patch_spec({"serveConfigV2": serve_config("v3", "verapp:missing")})

    def failed() -> JSON | bool:
        c = world.condition("ServeConfigApplied")
        return c.get("status") == "False" and c

    applied = wait_for(failed, 180, "ServeConfigApplied=False")
    print(f"bad import path: {applied['reason']}: {applied['message']}")
    assert applied["reason"] == "ApplicationFailed", applied
    assert "has no attribute 'missing'" in applied["message"], applied  # Serve's error, not a generic one

    def event() -> bool:
        return any(applied["message"] in m for m in world.events("FailedToUpdateServeApplications"))

    try:
        wait_for(event, 30, "Event with Serve's error")
    except AssertionError:
        print("events:", world.events("FailedToUpdateServeApplications"))
        raise
    assert answer(world).startswith("v2 ")  # the old config keeps serving meanwhile
    world.patch_spec({"serveConfigV2": serve_config("v3")})
    wait_for(lambda: world.condition("ServeConfigApplied").get("status") == "True", 180, "fixed")
    wait_for(lambda: answer(world).startswith("v3 "), 120, "v3 answer")
    assert world.clusters() == [second] and world.active() == second


def test_rayservice_serves_upgrades_and_reports_errors(world: World) -> None:
    first = _first_cluster(world)
    _in_place(world, first)
    second = _upgrade(world, first)
    _bad_import_path(world, second)
    items = world.core.list_namespaced_event(NS).items
    print(
        "events:", sorted({(e.type, e.reason, e.count or 1) for e in items if e.involved_object.name == RS})
    )
