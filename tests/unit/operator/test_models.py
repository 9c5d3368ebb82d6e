"""The ray.io/v1 models load KubeRay YAML without loss and reject values KubeRay's schema rejects."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ray_operator.builders.resources import hosts
from ray_operator.models import RayCluster, RayJob, RayService
from tests.unit.operator.golden import SAMPLES, load

KINDS: dict[str, type[BaseModel]] = {"RayCluster": RayCluster, "RayJob": RayJob, "RayService": RayService}


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_round_trip(name: str) -> None:
    data = load(name)
    model = KINDS[data["kind"]].model_validate(data)
    assert model.model_dump(by_alias=True, exclude_unset=True) == data
    assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == data


def test_there_are_samples_of_every_kind() -> None:
    assert {load(n)["kind"] for n in SAMPLES} == set(KINDS)


def test_fields_are_typed_and_snake_case_in_python() -> None:
    cluster = RayCluster.model_validate(load("raycluster-full.yaml"))
    assert cluster.spec.enable_in_tree_autoscaling is True
    assert cluster.spec.auth_options is not None and cluster.spec.auth_options.mode == "token"
    tpu = cluster.spec.worker_group_specs[1] if cluster.spec.worker_group_specs else None
    assert tpu is not None and tpu.num_of_hosts == 4 and tpu.suspend is False
    cpu = cluster.spec.worker_group_specs[0] if cluster.spec.worker_group_specs else None
    assert cpu is not None and cpu.scale_strategy is not None
    assert cpu.scale_strategy.workers_to_delete == ["raycluster-full-cpu-worker-abcde"]
    assert cpu.resources == {"CPU": "4", "custom": "3"} and cpu.labels == {
        "zone": "us-east-1a",
        "tier": "spot",
    }
    assert cluster.status is not None and cluster.status.desired_cpu == "70"
    assert cluster.status.head is not None and cluster.status.head.pod_ip == "10.0.0.5"


def test_rayjob_fields() -> None:
    job = RayJob.model_validate(load("rayjob-k8sjob.yaml"))
    assert job.spec.submission_mode == "K8sJobMode"
    assert job.spec.runtime_env_yaml is not None and "requests==2.26.0" in job.spec.runtime_env_yaml
    rules = job.spec.deletion_strategy.deletion_rules if job.spec.deletion_strategy else None
    assert rules is not None and [r.policy for r in rules][:3] == [
        "DeleteWorkers",
        "DeleteCluster",
        "DeleteSelf",
    ]
    assert rules[3].condition.job_deployment_status == "Failed"
    assert (
        job.status is not None and job.status.dashboard_url == "job-b5n7q-head-svc.ns.svc.cluster.local:8265"
    )


def test_populate_by_name_accepts_python_names() -> None:
    cluster = RayCluster.model_validate(
        {"metadata": {"name": "x"}, "spec": {"head_group_spec": {"template": {}}, "ray_version": "2.52.0"}}
    )
    assert cluster.spec.to_dict() == {"headGroupSpec": {"template": {}}, "rayVersion": "2.52.0"}


def test_unknown_fields_are_preserved() -> None:
    data: dict[str, Any] = copy.deepcopy(load("raycluster-minimal.yaml"))
    data["spec"]["futureField"] = {"a": 1}
    data["spec"]["workerGroupSpecs"][0]["futureGroupField"] = True
    model = RayCluster.model_validate(data)
    assert model.model_dump(by_alias=True, exclude_unset=True) == data


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "submissionMode"), "BatchMode"),
        (("spec", "backoffLimit"), -1),
        (("spec", "activeDeadlineSeconds"), 0),
        (("spec", "managedBy"), "someone-else"),
    ],
)
def test_rayjob_bad_values_rejected(path: tuple[str, str], value: Any) -> None:
    data = copy.deepcopy(load("rayjob-sidecar.yaml"))
    data[path[0]][path[1]] = value
    with pytest.raises(ValidationError) as info:
        RayJob.model_validate(data)
    assert path[1] in str(info.value)


def test_group_requires_template_and_name() -> None:
    data = copy.deepcopy(load("raycluster-minimal.yaml"))
    del data["spec"]["workerGroupSpecs"][0]["template"]
    with pytest.raises(ValidationError, match="template"):
        RayCluster.model_validate(data)


def test_numofhosts_zero_counts_as_one_and_negative_is_rejected() -> None:
    data = copy.deepcopy(load("raycluster-minimal.yaml"))
    data["spec"]["workerGroupSpecs"][0]["numOfHosts"] = 0  # KubeRay accepts 0 and counts it as 1
    group = RayCluster.model_validate(data).spec.worker_group_specs[0]
    assert hosts(group) == 1
    data["spec"]["workerGroupSpecs"][0]["numOfHosts"] = -1
    with pytest.raises(ValidationError, match="numOfHosts"):
        RayCluster.model_validate(data)
