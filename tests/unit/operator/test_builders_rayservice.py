"""RayService builders and the rollout spec hash."""

from __future__ import annotations

import copy

from ray_operator.builders import (
    BuildSettings,
    gateway,
    head_pod,
    http_route,
    rayservice_cluster,
    rayservice_head_service,
    rayservice_serve_service,
    spec_hash,
    worker_pod,
)
from ray_operator.models import RayCluster, RayClusterSpec, RayService
from tests.unit.operator.golden import load

SETTINGS = BuildSettings()


def service() -> RayService:
    return RayService.model_validate(load("rayservice.yaml"))


def test_cluster_labels_annotations_and_pods() -> None:
    svc = service()
    obj = rayservice_cluster(svc, name="svc-abcde", settings=SETTINGS)
    meta = obj["metadata"]
    assert meta["labels"]["ray.io/originated-from-cr-name"] == "svc"
    assert meta["labels"]["ray.io/originated-from-crd"] == "RayService"
    assert meta["annotations"]["ray.io/num-worker-groups"] == "1"
    assert svc.spec.ray_cluster_config is not None
    assert meta["annotations"]["ray.io/hash-without-replicas-and-workers-to-delete"] == spec_hash(
        svc.spec.ray_cluster_config
    )
    assert meta["ownerReferences"][0]["kind"] == "RayService"
    cluster = RayCluster.model_validate(obj)
    head = head_pod(cluster, settings=SETTINGS)
    worker = worker_pod(cluster, (cluster.spec.worker_group_specs or [])[0], settings=SETTINGS)
    assert head["metadata"]["labels"]["ray.io/serve"] == "false"
    assert worker["metadata"]["labels"]["ray.io/serve"] == "true"
    ready = worker["spec"]["containers"][0]["readinessProbe"]
    assert ready["failureThreshold"] == 1 and "http://localhost:8000/-/healthz" in ready["exec"]["command"][2]
    env = {e["name"]: e.get("value") for e in worker["spec"]["containers"][0]["env"]}
    assert env["RAY_SERVE_KV_TIMEOUT_S"] == "5" and env["RAY_timeout_ms_task_wait_for_death_info"] == "0"


def test_pending_incremental_cluster_leaves_replicas_unset() -> None:
    data = copy.deepcopy(load("rayservice.yaml"))
    data["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] = 3
    obj = rayservice_cluster(
        RayService.model_validate(data), name="svc-q2w4r", settings=SETTINGS, pending_incremental=True
    )
    assert "replicas" not in obj["spec"]["workerGroupSpecs"][0]


def test_spec_hash_ignores_scaling_and_kueue_fields() -> None:
    base = RayClusterSpec.model_validate(load("raycluster-full.yaml")["spec"])
    changed = copy.deepcopy(base)
    groups = changed.worker_group_specs or []
    groups[0].replicas, groups[0].min_replicas, groups[0].max_replicas = 7, 2, 9
    groups[0].scale_strategy = None
    groups[0].template.setdefault("spec", {})["tolerations"] = [{"key": "kueue", "operator": "Exists"}]
    changed.suspend = True
    assert spec_hash(changed) == spec_hash(base)
    groups[0].template["spec"]["containers"][0]["image"] = "rayproject/ray:2.54.0"
    assert spec_hash(changed) != spec_hash(base)


def test_scenario30_services_gateway_and_route() -> None:
    svc = service()
    cluster = RayCluster.model_validate(rayservice_cluster(svc, name="svc-abcde", settings=SETTINGS))
    head = rayservice_head_service(svc, cluster, settings=SETTINGS)
    assert head["metadata"]["name"] == "svc-head-svc"
    assert head["spec"]["selector"]["ray.io/cluster"] == "svc-abcde"
    serve = rayservice_serve_service(svc, cluster_name="svc-abcde")
    assert serve["metadata"]["name"] == "svc-serve-svc"
    assert serve["spec"]["selector"] == {"ray.io/cluster": "svc-abcde", "ray.io/serve": "true"}
    assert serve["spec"]["ports"][0]["port"] == 8000
    per_cluster = rayservice_serve_service(svc, cluster_name="svc-abcde", name="svc-abcde-serve-svc")
    assert per_cluster["metadata"]["name"] == "svc-abcde-serve-svc"
    gw = gateway(svc)
    assert (gw["metadata"]["name"], gw["spec"]["gatewayClassName"]) == ("svc-gateway", "istio")
    assert gw["spec"]["listeners"] == [{"name": "http", "protocol": "HTTP", "port": 80}]
    route = http_route(svc, [("svc-abcde", 100)])
    assert route["metadata"]["name"] == "svc-httproute"
    assert route["spec"]["parentRefs"][0]["name"] == "svc-gateway"
    rule = route["spec"]["rules"][0]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["backendRefs"] == [{"name": "svc-abcde-serve-svc", "port": 8000, "weight": 100}]
