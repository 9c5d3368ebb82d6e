"""Builders against KubeRay's expected pods, services, autoscaler and auth objects, and golden objects."""

from __future__ import annotations

import base64
import copy
import os
from typing import Any

import pytest
import yaml

from ray_operator.builders import (
    BuildSettings,
    RayStartConflict,
    auth_secret,
    autoscaler_rbac,
    head_pod,
    head_service,
    headless_worker_service,
    names,
    needs_auth_secret,
    needs_headless_service,
    ray_start_command,
    worker_pod,
)
from ray_operator.features import FeatureGates
from ray_operator.models import RayCluster
from tests.unit.operator.golden import GOLDEN, load

SETTINGS = BuildSettings()
BASE_LABEL_KEYS = {
    "ray.io/is-ray-node",
    "ray.io/cluster",
    "ray.io/node-type",
    "ray.io/group",
    "ray.io/identifier",
    "app.kubernetes.io/name",
    "app.kubernetes.io/created-by",
}


def cluster(name: str = "raycluster-minimal.yaml", **spec_changes: Any) -> RayCluster:
    data = copy.deepcopy(load(name))
    data["spec"].update(spec_changes)
    return RayCluster.model_validate(data)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    found = [
        c for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", []) if c["name"] == name
    ]
    assert len(found) == 1, [c["name"] for c in pod["spec"]["containers"]]
    result: dict[str, Any] = found[0]
    return result


def test_scenario1_names_labels_and_headless_service() -> None:
    rc = cluster()
    svc = head_service(rc, settings=SETTINGS)
    assert svc["metadata"]["name"] == "rc-head-svc" and svc["metadata"]["namespace"] == "ns"
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    assert ports == {"client": 10001, "dashboard": 8265, "gcs-server": 6379, "metrics": 8080, "serve": 8000}
    assert {p["appProtocol"] for p in svc["spec"]["ports"]} == {"tcp"}
    assert svc["spec"]["selector"]["ray.io/identifier"] == "rc-head"
    head = head_pod(rc, settings=SETTINGS)
    assert head["metadata"]["generateName"] == "rc-head-" and "name" not in head["metadata"]
    group = rc.spec.worker_group_specs[0] if rc.spec.worker_group_specs else None
    assert group is not None
    worker = worker_pod(rc, group, settings=SETTINGS, name="rc-wg-worker-x2b4z")
    assert worker["metadata"]["name"] == "rc-wg-worker-x2b4z"
    assert names.worker_pod_prefix("rc", "wg") == "rc-wg-worker-"
    assert set(head["metadata"]["labels"]) == BASE_LABEL_KEYS == set(worker["metadata"]["labels"])
    assert head["metadata"]["labels"]["ray.io/group"] == "headgroup"
    assert head["metadata"]["labels"]["ray.io/identifier"] == "rc-head"
    assert worker["metadata"]["labels"]["ray.io/group"] == "wg"
    assert worker["metadata"]["labels"]["ray.io/identifier"] == "rc-worker"
    owner = worker["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("RayCluster", "rc", True)


def test_scenario2_head_command() -> None:
    head = container(head_pod(cluster(), settings=SETTINGS), "ray-head")
    start = (
        "ray start --head  --block  --dashboard-agent-listen-port=52365  --dashboard-host=0.0.0.0  "
        "--memory=2147483648  --metrics-export-port=8080  --num-cpus=1 "
    )
    assert head["command"] == ["/bin/bash", "-c", "--"]
    assert head["args"] == ["ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; " + start]
    assert env_of(head)["KUBERAY_GEN_RAY_START_CMD"] == start
    assert ray_start_command(cluster(), settings=SETTINGS) == start


def test_spec_example_worker_line() -> None:
    rc = cluster()
    rc.metadata["name"], rc.metadata["namespace"] = "raycluster-sample", "default"
    group = rc.spec.worker_group_specs[0] if rc.spec.worker_group_specs else None
    assert group is not None
    group.template["spec"]["containers"][0]["resources"] = {
        "limits": {"cpu": 1, "memory": "1Gi", "nvidia.com/gpu": 3}
    }
    assert ray_start_command(rc, group, settings=SETTINGS) == (
        "ray start  --address=raycluster-sample-head-svc.default.svc.cluster.local:6379  --block  "
        "--dashboard-agent-listen-port=52365  --memory=1073741824  --metrics-export-port=8080  --num-cpus=1  "
        "--num-gpus=3 "
    )


def test_scenario3_env() -> None:
    rc = cluster()
    group = rc.spec.worker_group_specs[0] if rc.spec.worker_group_specs else None
    assert group is not None
    pod = worker_pod(rc, group, settings=SETTINGS)
    env = env_of(container(pod, "ray-worker"))
    assert env["RAY_ADDRESS"] == "rc-head-svc.ns.svc.cluster.local:6379"
    assert env["FQ_RAY_IP"] == "rc-head-svc.ns.svc.cluster.local"
    assert (env["RAY_IP"], env["RAY_PORT"]) == ("rc-head-svc", "6379")
    assert env["RAY_CLOUD_INSTANCE_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["RAY_NODE_TYPE_NAME"] == {"fieldRef": {"fieldPath": "metadata.labels['ray.io/group']"}}
    init = container(pod, "wait-gcs-ready")
    assert init["resources"] == {
        "limits": {"cpu": "200m", "memory": "256Mi"},
        "requests": {"cpu": "200m", "memory": "256Mi"},
    }
    assert "ray health-check --address rc-head-svc.ns.svc.cluster.local:6379" in init["args"][0]
    head_env = env_of(container(head_pod(rc, settings=SETTINGS), "ray-head"))
    assert head_env["RAY_ADDRESS"] == "127.0.0.1:6379"
    tags = head_env["RAY_USAGE_STATS_EXTRA_TAGS"]
    assert tags.startswith("kuberay_version=") and tags.endswith(";kuberay_crd=RayCluster")


def test_user_env_wins_for_if_absent_names() -> None:
    rc = cluster()
    rc.spec.head_group_spec.template["spec"]["containers"][0]["env"] = [
        {"name": "RAY_ADDRESS", "value": "x:1"}
    ]
    env = container(head_pod(rc, settings=SETTINGS), "ray-head")["env"]
    assert [e["value"] for e in env if e["name"] == "RAY_ADDRESS"] == ["x:1"]


def test_scenario4_group_resources_and_labels() -> None:
    data = load("raycluster-minimal.yaml")
    data["spec"]["workerGroupSpecs"][0]["resources"] = {"CPU": "4", "nvidia.com/gpu": "2", "custom": "3"}
    data["spec"]["workerGroupSpecs"][0]["labels"] = {"zone": "a", "tier": "x"}
    rc = RayCluster.model_validate(data)
    group = rc.spec.worker_group_specs[0] if rc.spec.worker_group_specs else None
    assert group is not None
    pod = worker_pod(rc, group, settings=SETTINGS)
    line = env_of(container(pod, "ray-worker"))["KUBERAY_GEN_RAY_START_CMD"]
    for flag in (
        "--num-cpus=4 ",
        "--num-gpus=2 ",
        "--resources='{\"custom\":3}' ",
        "--labels=tier=x,zone=a ",
    ):
        assert flag in line
    assert pod["metadata"]["labels"]["zone"] == "a" and pod["metadata"]["labels"]["tier"] == "x"
    group.ray_start_params = {"num-cpus": "2"}
    with pytest.raises(RayStartConflict, match="resource fields should not be set in both rayStartParams and "
                       "Resources for wg group"):  # fmt: skip
        worker_pod(rc, group, settings=SETTINGS)


def test_group_labels_cannot_override_protected_labels() -> None:
    rc = cluster()
    group = rc.spec.worker_group_specs[0] if rc.spec.worker_group_specs else None
    assert group is not None
    group.labels = {"ray.io/group": "evil", "ray.io/cluster": "evil", "app.kubernetes.io/name": "mine"}
    labels = worker_pod(rc, group, settings=SETTINGS)["metadata"]["labels"]
    assert labels["ray.io/group"] == "wg" and labels["ray.io/cluster"] == "rc"
    assert labels["app.kubernetes.io/name"] == "mine"


def test_scenario8_autoscaler_artifacts() -> None:
    rc = cluster(enableInTreeAutoscaling=True)
    kuberay = BuildSettings(autoscaler_entrypoint="ray kuberay-autoscaler")
    objs = autoscaler_rbac(rc, settings=kuberay)
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [
        ("ServiceAccount", "rc"),
        ("Role", "rc"),
        ("RoleBinding", "rc"),
    ]
    assert objs[2]["subjects"][0]["name"] == "rc" and objs[2]["roleRef"]["name"] == "rc"
    pod = head_pod(rc, settings=kuberay)
    assert pod["spec"]["serviceAccountName"] == "rc"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["ray-head", "autoscaler"]
    sidecar = container(pod, "autoscaler")
    assert sidecar["args"] == [
        "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) "
        "--cluster-namespace $(RAY_CLUSTER_NAMESPACE)"
    ]
    assert "--no-monitor" in env_of(container(pod, "ray-head"))["KUBERAY_GEN_RAY_START_CMD"]
    assert {"name": "ray-logs", "emptyDir": {}} in pod["spec"]["volumes"]
    for name in ("ray-head", "autoscaler"):
        assert {"name": "ray-logs", "mountPath": "/tmp/ray"} in container(pod, name)["volumeMounts"]
    assert container(head_pod(rc, settings=SETTINGS), "autoscaler")["args"][0].startswith(
        "python -m autoscaler_provider --cluster-name"
    )
    assert autoscaler_rbac(cluster(), settings=SETTINGS) == []


def test_autoscaler_sidecar_runs_rayside_provider_with_options() -> None:
    """The default sidecar runs `python -m autoscaler_provider` through an explicit command (the process
    kubelet cannot know an image entrypoint), keeps KubeRay's name and env contract and honours every
    autoscalerOptions override (resources/image/pullPolicy/securityContext/command/args replace; env,
    envFrom and volumeMounts add)."""
    line = (
        "python -m autoscaler_provider --cluster-name $(RAY_CLUSTER_NAME) "
        "--cluster-namespace $(RAY_CLUSTER_NAMESPACE)"
    )
    plain = container(head_pod(cluster(enableInTreeAutoscaling=True), settings=SETTINGS), "autoscaler")
    assert plain["name"] == "autoscaler" and plain["imagePullPolicy"] == "IfNotPresent"
    assert plain["command"] == ["/bin/bash", "-c", "--"] and plain["args"] == [line]
    assert plain["resources"] == {
        "limits": {"cpu": "500m", "memory": "512Mi"},
        "requests": {"cpu": "500m", "memory": "512Mi"},
    }
    env = env_of(plain)
    assert env["RAY_CLUSTER_NAME"] == {"fieldRef": {"fieldPath": "metadata.labels['ray.io/cluster']"}}
    assert env["RAY_CLUSTER_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["RAY_HEAD_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["KUBERAY_CRD_VER"] == "v1" and env["KUBERAY_GEN_AUTOSCALER_START_CMD"] == line
    options = {
        "version": "v2",
        "idleTimeoutSeconds": 15,
        "upscalingMode": "Aggressive",
        "resources": {"limits": {"cpu": "1"}},
        "image": "rayside/autoscaler:dev",
        "imagePullPolicy": "Always",
        "securityContext": {"runAsNonRoot": True},
        "env": [{"name": "PYTHONPATH", "value": "/src"}],
        "envFrom": [{"configMapRef": {"name": "extra"}}],
        "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}],
        "command": ["python"],
        "args": ["-m", "autoscaler_provider", "--cluster-name", "x", "--cluster-namespace", "y"],
    }
    rc = cluster(enableInTreeAutoscaling=True, autoscalerOptions=options)
    head = head_pod(rc, settings=SETTINGS)
    side = container(head, "autoscaler")
    assert side["image"] == "rayside/autoscaler:dev" and side["imagePullPolicy"] == "Always"
    assert side["resources"] == {"limits": {"cpu": "1"}} and side["securityContext"] == {"runAsNonRoot": True}
    assert side["command"] == ["python"] and side["args"] == options["args"]
    assert env_of(side)["PYTHONPATH"] == "/src" and "RAY_CLUSTER_NAME" in env_of(side)
    assert side["envFrom"] == [{"configMapRef": {"name": "extra"}}]
    assert {"name": "cfg", "mountPath": "/cfg"} in side["volumeMounts"]
    assert {"name": "ray-logs", "mountPath": "/tmp/ray"} in side["volumeMounts"]
    assert env_of(container(head, "ray-head"))["RAY_enable_autoscaler_v2"] == "true"


def test_scenario8_autoscaler_v2() -> None:
    rc = cluster(enableInTreeAutoscaling=True, autoscalerOptions={"version": "v2"})
    head = head_pod(rc, settings=SETTINGS)
    assert env_of(container(head, "ray-head"))["RAY_enable_autoscaler_v2"] == "true"
    assert head["spec"]["restartPolicy"] == "Never"
    group = rc.spec.worker_group_specs[0] if rc.spec.worker_group_specs else None
    assert group is not None
    assert worker_pod(rc, group, settings=SETTINGS)["spec"]["restartPolicy"] == "Never"


def test_scenario10_multi_host_labels_and_headless_service() -> None:
    rc = RayCluster.model_validate(load("raycluster-full.yaml"))
    tpu = rc.spec.worker_group_specs[1] if rc.spec.worker_group_specs else None
    assert tpu is not None and tpu.num_of_hosts == 4
    pod = worker_pod(rc, tpu, settings=SETTINGS, replica_index=1, replica_name="tpu-x2b4z", host_index=3)
    labels = pod["metadata"]["labels"]
    assert labels["ray.io/worker-group-replica-index"] == "1"
    assert labels["ray.io/worker-group-replica-name"] == "tpu-x2b4z"
    assert labels["ray.io/replica-host-index"] == "3"
    assert needs_headless_service(rc)
    svc = headless_worker_service(rc, settings=SETTINGS)
    assert svc["metadata"]["name"] == "raycluster-full-headless" and svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == {"ray.io/cluster": "raycluster-full", "ray.io/node-type": "worker"}
    off = BuildSettings(feature_gates=FeatureGates.parse("RayMultiHostIndexing=false"))
    pod_off = worker_pod(rc, tpu, settings=off, replica_index=1, replica_name="tpu-x", host_index=3)
    assert not any(k.startswith("ray.io/worker-group-replica") for k in pod_off["metadata"]["labels"])
    groups = rc.spec.worker_group_specs or []
    single = worker_pod(rc, groups[0], settings=SETTINGS, replica_index=0, replica_name="x")
    assert single["metadata"]["labels"]["ray.io/worker-group-replica-index"] == "0"
    assert "ray.io/worker-group-replica-name" not in single["metadata"]["labels"]


def test_scenario13_token_auth() -> None:
    rc = cluster(rayVersion="2.52.0", enableInTreeAutoscaling=True, authOptions={"mode": "token"})
    assert needs_auth_secret(rc)
    secret = auth_secret(rc, bytes(range(32)))
    assert secret["metadata"]["name"] == "rc" and secret["metadata"]["labels"] == {"ray.io/cluster": "rc"}
    token = secret["stringData"]["auth_token"]
    assert len(token) == 44 and base64.b64decode(token) == bytes(range(32))
    assert secret["metadata"]["ownerReferences"][0]["name"] == "rc"
    head = head_pod(rc, settings=SETTINGS)
    group = rc.spec.worker_group_specs[0] if rc.spec.worker_group_specs else None
    assert group is not None
    worker = worker_pod(rc, group, settings=SETTINGS)
    ref = {"secretKeyRef": {"name": "rc", "key": "auth_token"}}
    for pod, name in (
        (head, "ray-head"),
        (head, "autoscaler"),
        (worker, "ray-worker"),
        (worker, "wait-gcs-ready"),
    ):
        env = env_of(container(pod, name))
        assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"] == ref, name
    assert token not in yaml.safe_dump([head, worker])
    assert not needs_auth_secret(cluster(authOptions={"mode": "disabled"}))
    assert not needs_auth_secret(cluster(authOptions={"mode": "token", "secretName": "mine"}))
    mine = head_pod(cluster(authOptions={"mode": "token", "secretName": "mine"}), settings=SETTINGS)
    assert env_of(container(mine, "ray-head"))["RAY_AUTH_TOKEN"]["secretKeyRef"]["name"] == "mine"


def test_http_probes_from_ray_2_53() -> None:
    head = container(head_pod(cluster(rayVersion="2.53.0"), settings=SETTINGS), "ray-head")
    assert head["readinessProbe"]["httpGet"] == {"path": "/api/healthz", "port": 52365}
    assert head["livenessProbe"]["failureThreshold"] == 120 and head["readinessProbe"]["timeoutSeconds"] == 5
    old = container(head_pod(cluster(), settings=SETTINGS), "ray-head")
    assert "gcs_healthz" in old["readinessProbe"]["exec"]["command"][2]


def test_builders_do_not_mutate_the_cluster() -> None:
    rc = RayCluster.model_validate(load("raycluster-full.yaml"))
    before = rc.model_dump()
    head_pod(rc, settings=SETTINGS)
    for group in rc.spec.worker_group_specs or []:
        worker_pod(rc, group, settings=SETTINGS)
    assert rc.model_dump() == before


GOLDEN_OBJECTS = {
    "expected-minimal-head-pod.yaml": lambda rc: head_pod(rc, settings=SETTINGS, name="rc-head-x2b4z"),
    "expected-minimal-worker-pod.yaml": lambda rc: worker_pod(
        rc,
        (rc.spec.worker_group_specs or [])[0],
        settings=SETTINGS,
        name="rc-wg-worker-q7z9k",
        replica_index=0,
    ),
    "expected-minimal-head-service.yaml": lambda rc: head_service(rc, settings=SETTINGS),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_OBJECTS))
def test_golden_objects(name: str) -> None:
    """Whole objects for scenario 1 (reviewed by hand; RAYSIDE_UPDATE_GOLDEN=1 rewrites them)."""
    built = GOLDEN_OBJECTS[name](cluster())
    path = GOLDEN / name
    if os.environ.get("RAYSIDE_UPDATE_GOLDEN") == "1":
        path.write_text(yaml.safe_dump(built, sort_keys=False, width=200), encoding="utf-8")
    assert built == load(name)


def test_redis_fault_tolerance_head() -> None:
    rc = cluster(
        gcsFaultToleranceOptions={
            "redisAddress": "redis:6379",
            "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "redis", "key": "password"}}},
        }
    )
    pod = head_pod(rc, settings=SETTINGS)
    assert pod["metadata"]["annotations"]["ray.io/ft-enabled"] == "true"
    assert pod["metadata"]["annotations"]["ray.io/external-storage-namespace"] == rc.metadata["uid"]
    env = env_of(container(pod, "ray-head"))
    assert env["RAY_REDIS_ADDRESS"] == "redis:6379"
    assert env["RAY_external_storage_namespace"] == rc.metadata["uid"]
    assert env["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "redis", "key": "password"}}
    assert "--redis-password=$REDIS_PASSWORD " in env["KUBERAY_GEN_RAY_START_CMD"]
    group = (rc.spec.worker_group_specs or [])[0]
    worker_env = env_of(container(worker_pod(rc, group, settings=SETTINGS), "ray-worker"))
    assert worker_env["RAY_gcs_rpc_server_reconnect_timeout_s"] == "600"
    assert "RAY_REDIS_ADDRESS" not in worker_env


def test_k8s_token_auth_uses_projected_token_not_a_secret() -> None:
    rc = cluster(rayVersion="2.55.0", authOptions={"mode": "token", "enableK8sTokenAuth": True})
    assert not needs_auth_secret(rc)
    pod = head_pod(rc, settings=SETTINGS)
    env = env_of(container(pod, "ray-head"))
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_ENABLE_K8S_TOKEN_AUTH"] == "true"
    assert "RAY_AUTH_TOKEN" not in env
    assert any(v["name"] == "ray-token" and "projected" in v for v in pod["spec"]["volumes"])


def test_legacy_ft_annotation_sets_storage_namespace() -> None:
    data = load("raycluster-minimal.yaml")
    data["metadata"]["annotations"] = {
        "ray.io/ft-enabled": "true",
        "ray.io/external-storage-namespace": "mine",
    }
    data["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}
    ]
    rc = RayCluster.model_validate(data)
    pod = head_pod(rc, settings=SETTINGS)
    assert pod["metadata"]["annotations"]["ray.io/external-storage-namespace"] == "mine"
    env = container(pod, "ray-head")["env"]
    assert [e["value"] for e in env if e["name"] == "RAY_external_storage_namespace"] == ["mine"]
    assert [e["value"] for e in env if e["name"] == "RAY_REDIS_ADDRESS"] == ["redis:6379"]
