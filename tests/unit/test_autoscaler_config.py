"""derive_autoscaling_config against Ray 2.60's own KubeRay derivation (the reference, used only here).

Every RayCluster in the table must derive to exactly Ray's config, except for the deliberate differences
(each applied by `_expected` and named there): the `ray.io/node-group` label on every node type, and
max_workers 0 for suspended worker groups.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

from autoscaler_provider.config import ConfigError, derive_autoscaling_config
from rayside.objects import JSON
from tests.unit.operator.golden import SAMPLES, load

TPU_SELECTOR = {
    "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
    "cloud.google.com/gke-tpu-topology": "4x4",
}


def _with_crd_defaults(rc: JSON) -> JSON:
    """What the API server stores: the CRD defaults minReplicas 0 and maxReplicas 2147483647."""
    rc = copy.deepcopy(rc)
    rc.setdefault("metadata", {}).setdefault("namespace", "ns")
    for group in rc["spec"].get("workerGroupSpecs") or []:
        group.setdefault("minReplicas", 0)
        group.setdefault("maxReplicas", 2147483647)
    return rc


def _expected(rc: JSON) -> JSON:
    """Ray's derivation plus the documented differences."""
    want: JSON = _derive_autoscaling_config_from_ray_cr(copy.deepcopy(rc))
    types = want["available_node_types"]
    # Difference 1: every node type carries ray.io/node-group (user labels of that key win).
    for name, node_type in types.items():
        node_type["labels"] = {"ray.io/node-group": name, **node_type["labels"]}
    # Difference 2: a suspended worker group cannot get pods, so it offers none.
    for group in rc["spec"].get("workerGroupSpecs") or []:
        if group.get("suspend") is True:
            types[group["groupName"]]["min_workers"] = types[group["groupName"]]["max_workers"] = 0
    want["max_workers"] = sum(t["max_workers"] for t in types.values())
    return want


def _golden() -> list[tuple[str, JSON]]:
    out = []
    for name in SAMPLES:
        doc = load(name)
        spec = doc["spec"]
        cluster = spec.get("rayClusterSpec") or spec.get("rayClusterConfig")
        if doc["kind"] == "RayCluster":
            out.append((name, doc))
        elif cluster:
            out.append((name, {"metadata": {"name": "rc", "namespace": "ns"}, "spec": cluster}))
    return out


def _group(name: str, **fields: Any) -> JSON:
    limits = fields.pop("limits", {"cpu": "1", "memory": "1Gi"})
    requests = fields.pop("requests", None)
    resources: JSON = {"limits": limits} if limits else {}
    if requests:
        resources["requests"] = requests
    node_selector = fields.pop("nodeSelector", None)
    spec: JSON = {"containers": [{"name": "ray-worker", "image": "ray", "resources": resources}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    group: JSON = {"groupName": name, "replicas": 0, "minReplicas": 0, "maxReplicas": 4, "rayStartParams": {}}
    group.update(fields)
    group["template"] = {"spec": spec}
    return group


def _cluster(*groups: JSON, **spec: Any) -> JSON:
    head = {
        "rayStartParams": {"num-cpus": "0"},
        "template": {"spec": {"containers": [{"name": "ray-head", "image": "ray"}]}},
    }
    spec = {"headGroupSpec": head, **spec, "workerGroupSpecs": list(groups)}
    return {"metadata": {"name": "rc", "namespace": "ns"}, "spec": spec}


CUSTOM1 = '"{\\"Custom1\\": 1}"'
TPU = "cloud.google.com/gke-tpu-accelerator"
TOPOLOGY = "cloud.google.com/gke-tpu-topology"
TPU8_RSP = {"resources": '"{\\"TPU\\": 8}"'}
TPU_LIMITS = {"cpu": "24", "google.com/tpu": "4", "memory": "200G"}
SCENARIO1_LIMITS = {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"}
VARIANTS: dict[str, JSON] = {
    "gpu-limits": _cluster(_group("gpu", limits={"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"})),
    "gpu-zero-then-request": _cluster(
        _group("g", limits={"cpu": "2", "nvidia.com/gpu": "0"}, requests={"amd.com/gpu": "1"})
    ),
    "gpu-rsp": _cluster(_group("g", rayStartParams={"num-gpus": "3"})),
    "tpu-2-hosts": _cluster(
        _group("tpu", numOfHosts=2, maxReplicas=2, limits=TPU_LIMITS, nodeSelector=TPU_SELECTOR)
    ),
    "tpu-64-hosts": _cluster(
        _group(
            "tpu",
            numOfHosts=64,
            minReplicas=1,
            maxReplicas=3,
            limits=TPU_LIMITS,
            nodeSelector={TPU: "tpu-v6e-slice", TOPOLOGY: "16x16"},
        )
    ),
    "tpu-v4-3d": _cluster(
        _group(
            "tpu", numOfHosts=2, limits=TPU_LIMITS, nodeSelector={TPU: "tpu-v4-podslice", TOPOLOGY: "2x2x4"}
        )
    ),
    "tpu-no-topology": _cluster(_group("tpu", numOfHosts=4, limits=TPU_LIMITS)),
    "tpu-unknown-accelerator": _cluster(
        _group("tpu", limits=TPU_LIMITS, nodeSelector={**TPU_SELECTOR, TPU: "x"})
    ),
    "tpu-in-rsp-resources": _cluster(
        _group("tpu", rayStartParams=TPU8_RSP, limits=TPU_LIMITS, nodeSelector=TPU_SELECTOR)
    ),
    "scenario-1-top-level-wins": _cluster(
        _group(
            "both",
            rayStartParams={"num-cpus": "2", "resources": CUSTOM1, "labels": "x=y"},
            resources={"CPU": "8", "memory": "16Gi", "Custom2": "3"},
            labels={"team": "a"},
            limits=SCENARIO1_LIMITS,
            idleTimeoutSeconds=30,
            priority=5,
        )
    ),
    "scenario-2-fallbacks": _cluster(
        _group(
            "rsp",
            rayStartParams={"num-cpus": "2", "num-gpus": "2", "memory": "1000", "resources": CUSTOM1},
        ),
        _group("frac", limits={}, requests={"cpu": "500m", "memory": "1.5Gi"}),
        _group("lowercpu", resources={"cpu": "3"}, limits=SCENARIO1_LIMITS),
        autoscalerOptions={"idleTimeoutSeconds": 90, "upscalingMode": "Conservative"},
    ),
    "top-level-tpu-and-gpu": _cluster(_group("t", resources={"TPU": "4", "GPU": "1", "memory": "1Gi"})),
    "rsp-resources-plain-json": _cluster(_group("c", rayStartParams={"resources": '\'{"A": 2, "B": 0}\''})),
    "memory-quantities": _cluster(
        _group("m1", limits={"cpu": "1", "memory": "40G"}),
        _group("m2", limits={"cpu": "1500m"}, requests={"memory": "1536Mi"}),
        _group("m3", limits={"cpu": "1", "memory": "1e3"}),
        _group("m4", limits={"cpu": "1", "memory": "0.5Ki"}),
    ),
    "min-greater-than-max": _cluster(_group("w", minReplicas=5, maxReplicas=2)),
    "suspended-group": _cluster(_group("w", minReplicas=1, maxReplicas=3, suspend=True), _group("v")),
    "group-idle-timeout": _cluster(_group("w", idleTimeoutSeconds=45), autoscalerOptions={"version": "v2"}),
    "autoscaler-aggressive": _cluster(_group("w"), autoscalerOptions={"upscalingMode": "Aggressive"}),
    "autoscaler-default-idle": _cluster(
        _group("w"), autoscalerOptions={"upscalingMode": "Default", "idleTimeoutSeconds": 5}
    ),
    "labels-with-ray-prefix": _cluster(_group("w", labels={"ray.io/market-type": "spot", "empty": ""})),
    "labels-override-node-group": _cluster(_group("w", labels={"ray.io/node-group": "custom"})),
    "unbounded-max": _cluster({k: v for k, v in _group("w").items() if not k.endswith("Replicas")}),
    "head-limits-only": {
        "metadata": {"name": "rc", "namespace": "ns"},
        "spec": {
            "headGroupSpec": {"template": {"spec": {"containers": [{"resources": {"limits": {"cpu": 2}}}]}}},
            "workerGroupSpecs": [],
        },
    },
}


@pytest.mark.parametrize(("name", "rc"), _golden(), ids=[n for n, _ in _golden()])
def test_golden_samples_match_ray(name: str, rc: JSON) -> None:
    _assert_same_as_ray(_with_crd_defaults(rc))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variants_match_ray(name: str) -> None:
    _assert_same_as_ray(_with_crd_defaults(VARIANTS[name]))


def _assert_same_as_ray(rc: JSON) -> None:
    """Equal to Ray's config with the documented differences; or both refuse the cluster."""
    try:
        want = _expected(rc)
    except (ValueError, KeyError, AssertionError) as exc:
        with pytest.raises(ConfigError):
            derive_autoscaling_config(rc)
        print(f"both refuse: {exc}")
        return
    assert derive_autoscaling_config(rc) == want


def test_golden_table_covers_every_kind() -> None:
    assert {n.split("-")[0].split(".")[0] for n, _ in _golden()} == {"raycluster", "rayjob", "rayservice"}


def test_scenario_values_spelled_out() -> None:
    """The first three acceptance scenarios as literal values: a mistake shared with Ray would still show."""
    cfg = derive_autoscaling_config(_with_crd_defaults(VARIANTS["scenario-1-top-level-wins"]))
    assert cfg["available_node_types"]["both"] == {
        "min_workers": 0,
        "max_workers": 4,
        "node_config": {},
        "resources": {"CPU": 8, "GPU": 1, "memory": 17179869184, "Custom2": 3},
        "labels": {"ray.io/node-group": "both", "team": "a"},
        "idle_timeout_s": 30.0,
        "priority": 5,
    }
    cfg = derive_autoscaling_config(VARIANTS["scenario-2-fallbacks"])
    types = cfg["available_node_types"]
    assert types["rsp"]["resources"] == {"CPU": 2, "GPU": 2, "memory": 1000, "Custom1": 1}
    assert types["frac"]["resources"] == {"CPU": 1, "memory": 1610612736}
    assert types["lowercpu"]["resources"] == {"CPU": 4, "GPU": 1, "memory": 8589934592, "cpu": 3}
    assert (cfg["idle_timeout_minutes"], cfg["upscaling_speed"]) == (1.5, 1)
    tpu = _cluster(_group("tpu", numOfHosts=4, maxReplicas=2, limits=TPU_LIMITS, nodeSelector=TPU_SELECTOR))
    got = derive_autoscaling_config(tpu)["available_node_types"]["tpu"]
    assert (got["min_workers"], got["max_workers"]) == (0, 8)
    assert got["resources"] == {"CPU": 24, "TPU": 4, "TPU-v6e-16-head": 1, "memory": 200000000000}
    assert derive_autoscaling_config(tpu)["available_node_types"]["headgroup"]["labels"] == {
        "ray.io/node-group": "headgroup"
    }


@pytest.mark.parametrize(
    ("group", "needle"),
    [
        (_group("w", limits={}), "no CPU count"),
        (_group("w", rayStartParams={"num-cpus": "1.5"}), "rayStartParams.num-cpus='1.5'"),
        (_group("w", resources={"CPU": "lots"}), "'lots' is not a quantity"),
        (_group("w", rayStartParams={"resources": '"{\\"A\\": 1.5}"'}), "rayStartParams.resources="),
        (_group("w", rayStartParams={"resources": "nope"}), "rayStartParams.resources="),
        (_group("w", labels={"bad key!": "v"}), "labels key 'bad key!'"),
        (_group("w", labels={"k": "-bad"}), "labels['k']='-bad'"),
        (
            _group("w", limits=TPU_LIMITS, nodeSelector={**TPU_SELECTOR, TOPOLOGY: "4xfour"}),
            "cloud.google.com/gke-tpu-topology='4xfour'",
        ),
    ],
)
def test_bad_input_is_one_line_error_like_ray_rejects(group: JSON, needle: str) -> None:
    rc = _cluster(group)
    with pytest.raises(Exception):  # noqa: B017 - the reference raises assorted types
        _derive_autoscaling_config_from_ray_cr(copy.deepcopy(rc))
    with pytest.raises(ConfigError) as info:
        derive_autoscaling_config(rc)
    assert needle in str(info.value) and "group w" in str(info.value) and "\n" not in str(info.value)


def test_result_is_json_and_fresh() -> None:
    rc = VARIANTS["gpu-limits"]
    first, second = derive_autoscaling_config(rc), derive_autoscaling_config(rc)
    first["file_mounts"]["x"] = 1
    assert second["file_mounts"] == {} and json.loads(json.dumps(second)) == second


def test_head_only_cluster_without_worker_groups() -> None:
    """Difference 3: a RayCluster with no `workerGroupSpecs` key (valid; 10 of KubeRay's samples) makes
    Ray's derivation fail with KeyError; here it is a cluster with only the head node type."""
    rc = _cluster()
    del rc["spec"]["workerGroupSpecs"]
    with pytest.raises(KeyError):
        _derive_autoscaling_config_from_ray_cr(copy.deepcopy(rc))
    with_groups = _with_crd_defaults(_cluster())
    assert derive_autoscaling_config(rc) == _expected(with_groups)
    assert list(derive_autoscaling_config(rc)["available_node_types"]) == ["headgroup"]
