"""validation.py reproduces KubeRay's controller-side checks and messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ray_operator.builders import BuildSettings
from ray_operator.features import FeatureGates
from ray_operator.models import RayCluster, RayJob, RayService
from ray_operator.validation import (
    label_key_error,
    validate_raycluster,
    validate_rayjob,
    validate_rayservice,
)
from tests.unit.operator.golden import load

SETTINGS = BuildSettings()
V1_5 = BuildSettings(feature_gates=FeatureGates.v1_5())


def rc(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(load("raycluster-minimal.yaml"))
    data["spec"].update(changes)
    return data


def check_rc(data: dict[str, Any], settings: BuildSettings = SETTINGS) -> str | None:
    return validate_raycluster(RayCluster.model_validate(data), settings)


def job(name: str = "rayjob-k8sjob.yaml", **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(load(name))
    data["spec"].update(changes)
    return data


def check_job(data: dict[str, Any], settings: BuildSettings = SETTINGS) -> str | None:
    return validate_rayjob(RayJob.model_validate(data), settings)


def test_samples_are_valid() -> None:
    assert check_rc(load("raycluster-minimal.yaml")) is None
    assert check_rc(load("raycluster-full.yaml")) is None
    assert check_job(load("rayjob-k8sjob.yaml")) is None
    assert check_job(load("rayjob-sidecar.yaml")) is None
    assert validate_rayservice(RayService.model_validate(load("rayservice.yaml")), SETTINGS) is None


def test_name_limits() -> None:
    data = rc()
    data["metadata"]["name"] = "r" * 54
    assert check_rc(data) == "RayCluster name should be no more than 53 characters"
    data["metadata"]["name"] = "Bad_Name"
    assert "DNS-1035" in (check_rc(data) or "")
    long_job = job()
    long_job["metadata"]["name"] = "j" * 48
    assert check_job(long_job) == (
        "The RayJob metadata is invalid: RayJob name should be no more than 47 characters"
    )


def test_scenario4_resources_conflict() -> None:
    data = rc()
    data["spec"]["workerGroupSpecs"][0]["resources"] = {"CPU": "4"}
    data["spec"]["workerGroupSpecs"][0]["rayStartParams"] = {"num-cpus": "2"}
    assert check_rc(data) == (
        "resource fields should not be set in both rayStartParams and Resources for wg group; "
        "please use only one"
    )
    data = rc()
    data["spec"]["headGroupSpec"]["resources"] = {"memory": "1Gi"}
    data["spec"]["headGroupSpec"]["rayStartParams"] = {"memory": "100"}
    assert "for Head group" in (check_rc(data) or "")


def test_bad_group_resource_quantity() -> None:
    data = rc()
    data["spec"]["workerGroupSpecs"][0]["resources"] = {"CPU": "lots"}
    assert check_rc(data) == "wg group: resources['CPU']='lots' is not a quantity (examples: 2, 500m, 1Gi)"


def test_bad_container_quantity() -> None:
    data = rc()
    data["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"cpu": "x"}
    }
    assert check_rc(data) == "wg group: container ray-worker resources.limits['cpu']='x' is not a quantity"


def test_labels_rules() -> None:
    data = rc()
    data["spec"]["workerGroupSpecs"][0]["rayStartParams"] = {"labels": "a=b"}
    assert check_rc(data) == (
        "rayStartParams['labels'] is not supported for wg group; "
        "please use the top-level Labels field instead"
    )
    data = rc()
    data["spec"]["workerGroupSpecs"][0]["labels"] = {"zone": "not ok!"}
    assert "invalid value 'not ok!'" in (check_rc(data) or "")
    assert label_key_error("example.com/zone") is None
    assert label_key_error("-bad") is not None and label_key_error("UPPER.com/x") is not None


def test_scenario13_token_auth_needs_ray_2_52() -> None:
    assert check_rc(rc(authOptions={"mode": "token"})) == (
        "authOptions.mode is 'token' but minimum Ray version is 2.52.0, got 2.46.0"
    )
    assert check_rc(rc(authOptions={"mode": "token"}, rayVersion="2.52.0")) is None
    assert check_rc(rc(authOptions={"mode": "disabled"})) is None


def test_group_suspend_rules() -> None:
    data = rc()
    data["spec"]["workerGroupSpecs"][0]["suspend"] = True
    assert check_rc(data) is None
    assert check_rc(data, V1_5) == (
        "worker group wg can be suspended only when the RayJobDeletionPolicy feature gate is enabled"
    )
    data["spec"]["enableInTreeAutoscaling"] = True
    assert check_rc(data) == "worker group wg cannot be suspended with Autoscaler enabled"


def test_replica_bounds_and_unique_names() -> None:
    data = rc()
    data["spec"]["workerGroupSpecs"][0].update(minReplicas=6, maxReplicas=5)
    assert check_rc(data) == "worker group wg has minReplicas 6 greater than maxReplicas 5"
    data = rc()
    data["spec"]["workerGroupSpecs"].append(copy.deepcopy(data["spec"]["workerGroupSpecs"][0]))
    assert "'wg' is used twice" in (check_rc(data) or "")


def test_autoscaler_rules() -> None:
    data = rc()
    data["spec"]["workerGroupSpecs"][0]["idleTimeoutSeconds"] = 30
    assert "requires autoscaler v2" in (check_rc(data) or "")
    data["spec"].update(enableInTreeAutoscaling=True, autoscalerOptions={"version": "v2"})
    assert check_rc(data) is None
    data["spec"]["workerGroupSpecs"][0]["template"]["spec"]["restartPolicy"] = "Always"
    assert "autoscaler v2 requires restartPolicy Never or unset" in (check_rc(data) or "")
    data = rc()
    data["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "RAY_enable_autoscaler_v2", "value": "1"}
    ]
    assert "enableInTreeAutoscaling is not true" in (check_rc(data) or "")


def test_fault_tolerance_rules() -> None:
    data = rc(gcsFaultToleranceOptions={"redisAddress": "redis:6379"})
    assert check_rc(data) is None
    data["metadata"]["annotations"] = {"ray.io/ft-enabled": "true"}
    assert "should not be set together with gcsFaultToleranceOptions" in (check_rc(data) or "")
    data = rc(gcsFaultToleranceOptions={"redisAddress": "redis:6379"})
    data["spec"]["headGroupSpec"]["rayStartParams"] = {"redis-password": "x"}
    assert "redis-password" in (check_rc(data) or "")


def test_alpha_fields_need_their_gates() -> None:
    assert (
        check_rc(rc(networkPolicy={"mode": "deny"}))
        == "networkPolicy requires the RayClusterNetworkPolicy feature gate"
    )
    gated = BuildSettings(feature_gates=FeatureGates.parse("RayClusterNetworkPolicy=true"))
    assert check_rc(rc(networkPolicy={"mode": "deny"}), gated) is None


def test_unknown_scheduler_label() -> None:
    data = rc()
    data["metadata"]["labels"] = {"ray.io/scheduler-name": "slurm"}
    assert "ray.io/scheduler-name='slurm' is not supported" in (check_rc(data) or "")


def test_scenario23_suspend_requires_shutdown() -> None:
    assert check_job(job(suspend=True)) == (
        "a RayJob with shutdownAfterJobFinishes set to false is not allowed to be suspended"
    )


def test_scenario22_sidecar_rejects_submitter_template() -> None:
    data = job(submissionMode="SidecarMode")
    del data["spec"]["submitterConfig"]
    assert check_job(data) == "Currently, SidecarMode doesn't support SubmitterPodTemplate"


def test_scenario24_deletion_rules() -> None:
    data = job()
    rules = data["spec"]["deletionStrategy"]["deletionRules"]
    rules[1]["condition"]["ttlSeconds"] = 10
    assert "for JobStatus 'FAILED': DeleteCluster TTL (10) must be >= DeleteWorkers TTL (30)" in (
        check_job(data) or ""
    )
    assert "mutually exclusive" in (check_job(job(shutdownAfterJobFinishes=True)) or "")
    assert (
        check_job(job(), V1_5) == "RayJobDeletionPolicy feature gate must be enabled to use DeletionStrategy"
    )
    data = job()
    data["spec"]["deletionStrategy"]["deletionRules"].append(copy.deepcopy(rules[0]))
    assert "duplicate rule for JobStatus 'FAILED' with policy DeleteWorkers" in (check_job(data) or "")


def test_legacy_deletion_strategy() -> None:
    legacy = {"onSuccess": {"policy": "DeleteCluster"}, "onFailure": {"policy": "DeleteNone"}}
    assert check_job(job(deletionStrategy=legacy)) is None
    assert "while deletion policy is 'DeleteNone'" in (
        check_job(job(deletionStrategy=legacy, shutdownAfterJobFinishes=True)) or ""
    )
    assert "both DeletionStrategy.OnSuccess and DeletionStrategy.OnFailure must be set" in (
        check_job(job(deletionStrategy={"onSuccess": {"policy": "DeleteCluster"}})) or ""
    )


def test_cluster_selector_rules() -> None:
    data = job(clusterSelector={"ray.io/cluster": "rc"})
    del data["spec"]["rayClusterSpec"], data["spec"]["deletionStrategy"]
    assert check_job(data) == "BackoffLimit is incompatible with ClusterSelector mode"
    data["spec"]["backoffLimit"] = 0
    assert check_job(data) is None
    data["spec"]["clusterSelector"] = {"other": "x"}
    assert check_job(data) == "cluster name in ClusterSelector should not be empty"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"runtimeEnvYAML": "pip: [a"}, "runtimeEnvYAML is not valid YAML"),
        (
            {"submissionMode": "InteractiveMode", "deletionStrategy": None},
            "BackoffLimit is incompatible with InteractiveMode",
        ),
        ({"ttlSecondsAfterFinished": 5}, "cannot have TTLSecondsAfterFinished"),
    ],
)
def test_rayjob_spec_messages(changes: dict[str, Any], message: str) -> None:
    data = job(**{k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        del data["spec"][key]
    assert message in (check_job(data) or "")


def test_embedded_cluster_spec_is_prefixed() -> None:
    data = job()
    data["spec"]["rayClusterSpec"]["authOptions"] = {"mode": "token"}
    data["spec"]["rayClusterSpec"]["rayVersion"] = "2.40.0"
    assert check_job(data) == (
        "The RayJob spec is invalid: "
        "authOptions.mode is 'token' but minimum Ray version is 2.52.0, got 2.40.0"
    )


def test_rayservice_rules() -> None:
    data = copy.deepcopy(load("rayservice.yaml"))
    data["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] = False
    assert validate_rayservice(RayService.model_validate(data), SETTINGS) == (
        "NewClusterWithIncrementalUpgrade requires enableInTreeAutoscaling to be true"
    )
    data = copy.deepcopy(load("rayservice.yaml"))
    data["spec"]["rayClusterConfig"]["headGroupSpec"]["headService"] = {"metadata": {"name": "custom"}}
    assert "headService.metadata.name should not be set" in (
        validate_rayservice(RayService.model_validate(data), SETTINGS) or ""
    )
