"""RayCluster children beyond Pods and the head Service, against localkube with the official client:
the dashboard Ingress (`enableIngress`), the serve Service (`ray.io/enable-serve-service`) and the GCS
fault-tolerance Redis cleanup finalizer with its cleanup Job (deletion flow and forced removal).

The operator runs on a thread (fixtures from tests/api/test_operator.py); the simulated kubelet completes
Job Pods after ~1 s unless annotated `localkube.rayside.io/run-seconds`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import install_crds
from ray_operator.raycluster.assembly import build_operator
from ray_operator.settings import load_settings
from rayside.objects import JSON
from tests.api.test_operator import NS, Api, OperatorThread, group, raycluster, wait_for

pytestmark = pytest.mark.api
FINALIZER = "ray.io/gcs-ft-redis-cleanup-finalizer"


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    """localkube with its built-in controllers (the Job controller runs the cleanup Job's Pod)."""
    with running(
        bookmark_interval=1.0, kubelet="simulated", kubelet_options={"ready_delay": 0.2}, controllers=True
    ) as server:
        install_crds(server.kube_client())
        yield server


@pytest.fixture
def operator(lk: LocalKube) -> Iterator[OperatorThread]:
    op = OperatorThread(lk, "--reconcile-concurrency", "2").start()
    yield op
    op.stop()


@pytest.fixture
def api(lk: LocalKube) -> Api:
    return Api(client.CoreV1Api(lk.api_client()), client.CustomObjectsApi(lk.api_client()))


def gone(call: Any) -> bool:
    try:
        call()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def events(api: Api, name: str = "rc") -> dict[str, str]:
    items = api.core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items
    return {e.reason: e.message for e in items}


def ft_cluster(**annotations: str) -> JSON:
    body = raycluster("rc", group(replicas=1), gcsFaultToleranceOptions={"redisAddress": "redis:6379"})
    body["metadata"]["annotations"] = dict(annotations)
    return body


def test_ingress_and_serve_service(lk: LocalKube, api: Api, operator: OperatorThread) -> None:
    body = raycluster("rc", group(replicas=1))
    body["metadata"]["annotations"] = {
        "kubernetes.io/ingress.class": "nginx",
        "ray.io/enable-serve-service": "true",
        "example.com/team": "a",
    }
    body["spec"]["headGroupSpec"]["enableIngress"] = True
    body["spec"]["headGroupSpec"]["ingressOptions"] = {"host": "ray.example.com", "path": "/dash"}
    created = api.create(body)
    wait_for(lambda: api.ready(workers=1), what="ready")
    net = client.NetworkingV1Api(lk.api_client())
    ing = net.read_namespaced_ingress("rc-head-ingress", NS)
    assert ing.spec.ingress_class_name == "nginx"
    assert ing.metadata.annotations == {"ray.io/enable-serve-service": "true", "example.com/team": "a"}
    assert ing.metadata.labels["ray.io/identifier"] == "rc-head"
    assert ing.metadata.owner_references[0].uid == created["metadata"]["uid"]
    (rule,) = ing.spec.rules
    assert rule.host == "ray.example.com"
    (path,) = rule.http.paths
    assert (path.path, path.path_type) == ("/dash", "Prefix")
    assert (path.backend.service.name, path.backend.service.port.number) == ("rc-head-svc", 8265)
    svc = api.core.read_namespaced_service("rc-serve-svc", NS)
    assert svc.spec.selector == {"ray.io/cluster": "rc"}
    assert [(p.name, p.port) for p in svc.spec.ports] == [("serve", 8000)]
    assert svc.metadata.labels["ray.io/serve"] == "rc-serve"
    assert svc.metadata.owner_references[0].name == "rc"
    # A cluster without these features gets neither, and no finalizer.
    api.create(raycluster("plain", group(replicas=0)))
    wait_for(lambda: api.ready("plain"), what="plain ready")
    assert gone(lambda: net.read_namespaced_ingress("plain-head-ingress", NS))
    assert gone(lambda: api.core.read_namespaced_service("plain-serve-svc", NS))
    assert not api.get("plain")["metadata"].get("finalizers")


def test_serve_service_without_serve_port_is_reported(api: Api, operator: OperatorThread) -> None:
    body = raycluster("rc", group(replicas=1))
    body["metadata"]["annotations"] = {"ray.io/enable-serve-service": "true"}
    ports = [{"name": "gcs-server", "containerPort": 6379}, {"name": "dashboard", "containerPort": 8265}]
    body["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"] = ports
    api.create(body)
    cond = wait_for(lambda: api.condition("RayClusterSpecValid"), what="invalid-spec condition")
    assert cond["status"] == "False" and "'serve'" in cond["message"]
    assert api.pods() == []
    api.patch({"metadata": {"annotations": {"ray.io/enable-serve-service": None}}})
    wait_for(lambda: api.ready(workers=1), what="ready without the annotation")


def ray_pods(api: Api) -> list[Any]:
    """Head and worker Pods, terminating ones included (the cleanup Job's Pod is labelled redis-cleanup)."""
    selector = "ray.io/cluster=rc,ray.io/node-type in (head,worker)"
    return list(api.core.list_namespaced_pod(NS, label_selector=selector).items)


def test_redis_cleanup_finalizer_flow(api: Api, operator: OperatorThread) -> None:
    body = ft_cluster()
    body["spec"]["authOptions"] = {"mode": "token"}
    api.create(body)
    wait_for(lambda: FINALIZER in (api.get()["metadata"].get("finalizers") or []), what="finalizer")
    wait_for(lambda: api.ready(workers=1), what="ready")
    token = base64.b64decode(api.core.read_namespaced_secret("rc", NS).data["auth_token"]).decode()
    batch = client.BatchV1Api(api.core.api_client)
    api.crs.delete_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", "rc")
    wait_for(lambda: ray_pods(api) == [], what="head and worker Pods gone")
    job = wait_for(
        lambda: next(iter(batch.list_namespaced_job(NS).items), None), what="the Redis cleanup Job"
    )
    assert job.metadata.name == "rc-redis-cleanup"
    assert job.metadata.labels["ray.io/node-type"] == "redis-cleanup"
    assert (job.spec.backoff_limit, job.spec.active_deadline_seconds) == (0, 300)
    (container,) = job.spec.template.spec.containers
    assert container.resources.limits == {"cpu": "200m", "memory": "256Mi"}
    assert "cleanup_redis_storage" in container.args[0]
    env = {e.name: e.value for e in container.env}
    assert env["RAY_REDIS_ADDRESS"] == "redis:6379" and env["RAY_external_storage_namespace"]
    assert token not in str(job.to_dict())  # only a secretKeyRef
    wait_for(lambda: gone(api.get), timeout=90, what="the RayCluster to be gone after the Job completed")
    # The default timeout is 300 s, so the finalizer went because the Job finished (no force event);
    # the Job itself may already be garbage-collected with its owner.
    try:
        done = batch.read_namespaced_job("rc-redis-cleanup", NS)
        assert any(c.type == "Complete" and c.status == "True" for c in done.status.conditions or [])
    except ApiException as exc:
        assert exc.status == 404
    assert "CreatedRedisCleanupJob" in wait_for(lambda: events(api), what="events")
    assert "ForceDeletedStuckCluster" not in events(api)
    assert token not in " ".join(events(api).values())


def test_redis_cleanup_finalizer_force_removed_after_timeout(api: Api, operator: OperatorThread) -> None:
    body = ft_cluster(**{"ray.io/gcs-ft-deletion-timeout": "3"})
    # The cleanup Job clones the head Pod, annotations included: its Pod then runs for an hour.
    body["spec"]["headGroupSpec"]["template"]["metadata"] = {
        "annotations": {"localkube.rayside.io/run-seconds": "3600"}
    }
    api.create(body)
    wait_for(lambda: FINALIZER in (api.get()["metadata"].get("finalizers") or []), what="finalizer")
    wait_for(lambda: api.ready(workers=1), what="ready")
    api.crs.delete_namespaced_custom_object("ray.io", "v1", NS, "rayclusters", "rc")
    wait_for(lambda: gone(api.get), timeout=90, what="the RayCluster to be force-removed")
    message = wait_for(lambda: events(api).get("ForceDeletedStuckCluster"), what="the force event")
    assert FINALIZER in message and "may need manual cleanup" in message
    batch = client.BatchV1Api(api.core.api_client)
    for job in batch.list_namespaced_job(NS).items:  # created or not (head may vanish after the timeout)
        assert not any(c.type == "Complete" for c in job.status.conditions or [])


def test_redis_cleanup_disabled_leaves_no_finalizer(lk: LocalKube, api: Api) -> None:
    op = OperatorThread(lk)  # then rebuilt with ENABLE_GCS_FT_REDIS_CLEANUP=false
    op.settings = load_settings(
        ["--kubeconfig", str(lk.kubeconfig)], environ={"ENABLE_GCS_FT_REDIS_CLEANUP": "false"}
    )
    op.operator = build_operator(op.client, op.settings)
    op.start()
    try:
        api.create(ft_cluster())
        wait_for(lambda: api.ready(workers=1), what="ready")
        assert not api.get()["metadata"].get("finalizers")
    finally:
        op.stop()
