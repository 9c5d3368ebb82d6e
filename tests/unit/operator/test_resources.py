"""The operator's one resource/replica module: KubeRay's edge cases, pinned (status, schedulers, planning)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ray_operator.builders.resources import (
    clamp_replicas,
    cluster_resources,
    format_totals,
    gpu_total,
    group_pod_count,
    hosts,
    is_gpu_key,
    template_resources,
    tpu_total,
    worker_pods,
)
from ray_operator.constants import MAX_INT32
from ray_operator.models import RayClusterSpec, WorkerGroupSpec


def group(**kw: Any) -> WorkerGroupSpec:
    data: dict[str, Any] = {"groupName": "g", "template": {"spec": {"containers": [{"name": "ray"}]}}}
    data.update(kw)
    return WorkerGroupSpec.model_validate(data)


def template(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"containers": list(containers)}}


def test_min_greater_than_max_desires_max_as_kuberay() -> None:
    g = group(replicas=1, minReplicas=5, maxReplicas=3)
    assert clamp_replicas(g) == 3
    assert group_pod_count(g, "desired") == 3


def test_clamp_inside_bounds_and_defaults() -> None:
    assert clamp_replicas(group(replicas=10, minReplicas=0, maxReplicas=3)) == 3
    assert clamp_replicas(group(replicas=0, minReplicas=2, maxReplicas=3)) == 2
    assert clamp_replicas(group(replicas=4)) == 4  # max absent ⇒ MaxInt32


def test_suspended_group_counts_zero_in_every_mode() -> None:
    g = group(replicas=2, minReplicas=1, maxReplicas=4, suspend=True)
    assert all(group_pod_count(g, mode) == 0 for mode in ("replicas", "desired", "min", "max"))


def test_num_of_hosts_zero_counts_as_one() -> None:
    assert hosts(group(numOfHosts=0)) == 1 and hosts(group()) == 1
    assert group_pod_count(group(replicas=2, numOfHosts=0), "desired") == 2
    assert group_pod_count(group(replicas=2, numOfHosts=4), "desired") == 8


def test_max_sum_is_capped_at_int32() -> None:
    assert worker_pods([group(), group(groupName="h")], "max") == MAX_INT32


def test_template_requests_win_limits_fill_and_containers_sum() -> None:
    t = template(
        {"resources": {"requests": {"cpu": "1.5"}, "limits": {"cpu": "4", "memory": "1Ki"}}},
        {"resources": {"limits": {"cpu": "100m", "nvidia.com/gpu": "1e3"}}},
    )
    assert template_resources(t) == {
        "cpu": Decimal("1.6"),
        "memory": Decimal(1024),
        "nvidia.com/gpu": Decimal(1000),
    }


def test_invalid_quantity_raises_when_strict_and_counts_zero_otherwise() -> None:
    t = template({"resources": {"requests": {"cpu": "lots", "memory": "1Gi"}}})
    assert template_resources(t, strict=False) == {"cpu": 0, "memory": 1024**3}
    try:
        template_resources(t)
    except ValueError as exc:
        assert "lots" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("strict template_resources accepted 'lots'")


def test_gpu_and_tpu_accounting() -> None:
    assert is_gpu_key("nvidia.com/gpu") and is_gpu_key("amd.com/GPU") and is_gpu_key("nvidia.com/mig-1g.5gb")
    assert not is_gpu_key("nvidia.com/mig-1g") and not is_gpu_key("google.com/tpu")
    totals = {
        "nvidia.com/gpu": Decimal(2),
        "nvidia.com/mig-2g.10gb": Decimal(1),
        "google.com/tpu": Decimal(4),
    }
    assert gpu_total(totals) == 3 and tpu_total(totals) == 4


def test_cluster_resources_modes() -> None:
    spec = RayClusterSpec.model_validate(
        {
            "headGroupSpec": {"template": template({"resources": {"requests": {"cpu": "500m"}}})},
            "workerGroupSpecs": [
                {
                    "groupName": "w",
                    "replicas": 1,
                    "minReplicas": 2,
                    "maxReplicas": 5,
                    "numOfHosts": 2,
                    "template": template({"resources": {"requests": {"cpu": "1"}}}),
                }
            ],
        }
    )
    assert format_totals(cluster_resources(spec, "replicas")) == {"cpu": "2500m"}
    assert format_totals(cluster_resources(spec, "desired")) == {"cpu": "4500m"}
    assert format_totals(cluster_resources(spec, "min")) == {"cpu": "4500m"}
