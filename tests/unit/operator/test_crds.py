"""Generated CRDs: current, structural, KubeRay-like printer columns, and CEL rules that accept good and
reject bad objects (evaluated with celpy directly and through localkube's schema validator)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from localkube import schema as kschema
from ray_operator import crdgen
from tests.unit.operator.golden import SAMPLES, load

CRDS = {
    yaml.safe_load(text)["spec"]["names"]["kind"]: yaml.safe_load(text)
    for text in crdgen.render_all().values()
}


def _schema(kind: str) -> dict[str, Any]:
    result: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return result


def _errors(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    schema = _schema(obj["kind"])
    pruned, _ = kschema.prune(obj, schema)
    defaulted = kschema.apply_defaults(pruned, schema)
    old_defaulted = kschema.apply_defaults(kschema.prune(old, schema)[0], schema) if old else None
    return [kschema.format_error(e) for e in kschema.validate(defaulted, schema, old_defaulted)]


def _rules(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for rule in node.get("x-kubernetes-validations") or []:
            yield rule["rule"]
        for value in node.values():
            yield from _rules(value)
    elif isinstance(node, list):
        for item in node:
            yield from _rules(item)


def test_committed_crds_are_current() -> None:
    assert crdgen.stale_files(crdgen.CRD_DIR) == [], "run `python -m ray_operator.crdgen`"


def test_check_flag_detects_stale_and_write_fixes_it(tmp_path: Path) -> None:
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == crdgen.EXIT_STALE
    assert crdgen.main(["--out", str(tmp_path)]) == crdgen.EXIT_OK
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ray.io_rayclusters.yaml",
        "ray.io_rayjobs.yaml",
        "ray.io_rayservices.yaml",
    ]
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == crdgen.EXIT_OK
    (tmp_path / "ray.io_rayjobs.yaml").write_text("stale\n", encoding="utf-8")
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == crdgen.EXIT_STALE


def test_bad_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert crdgen.main(["--bogus"]) == crdgen.EXIT_USAGE


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_structural_with_status_subresource(kind: str) -> None:
    crd = CRDS[kind]
    assert kschema.structural_errors(_schema(kind)) == []
    version = crd["spec"]["versions"][0]
    assert (crd["spec"]["group"], version["name"], version["storage"]) == ("ray.io", "v1", True)
    assert version["subresources"] == {"status": {}}  # KubeRay has no scale subresource
    spec = _schema(kind)["properties"]["spec"]
    assert "x-kubernetes-preserve-unknown-fields" not in spec  # unknown spec fields are pruned


def _templates(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("template", "submitterPodTemplate") and isinstance(value, dict):
                yield f"{path}.{key}", value
            yield from _templates(value, f"{path}.{key}")


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_pod_templates_have_the_pod_template_schema(kind: str) -> None:
    templates = dict(_templates(_schema(kind)))
    assert len(templates) == {"RayCluster": 2, "RayJob": 3, "RayService": 2}[kind], sorted(templates)
    for where, template in templates.items():
        assert "x-kubernetes-preserve-unknown-fields" not in template, where
        spec = template["properties"]["spec"]
        assert spec["required"] == ["containers"], where
        container = spec["properties"]["containers"]["items"]
        assert container["required"] == ["name"]
        assert container["properties"]["env"]["type"] == "array"
        limits = container["properties"]["resources"]["properties"]["limits"]
        assert limits["additionalProperties"]["x-kubernetes-int-or-string"] is True
        assert sorted(template["properties"]["metadata"]["properties"]) == [
            "annotations",
            "finalizers",
            "labels",
            "name",
            "namespace",
        ]


def test_int32_fields_have_the_int32_format() -> None:
    group = _schema("RayCluster")["properties"]["spec"]["properties"]["workerGroupSpecs"]["items"]
    assert group["properties"]["numOfHosts"] == {
        "default": 1,
        "format": "int32",
        "minimum": 0,
        "type": "integer",
    }
    for field in ("replicas", "minReplicas", "maxReplicas"):
        assert group["properties"][field]["format"] == "int32"
        assert group["properties"][field]["minimum"] == 0


def test_printer_columns_match_kuberay() -> None:
    def names(kind: str) -> list[str]:
        return [c["name"] for c in CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]]

    assert names("RayCluster") == [
        "desired workers",
        "available workers",
        "cpus",
        "memory",
        "gpus",
        "tpus",
        "status",
        "age",
        "head pod IP",
        "head service IP",
    ]
    assert names("RayJob") == [
        "job status",
        "deployment status",
        "ray cluster name",
        "start time",
        "end time",
        "age",
    ]


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_every_cel_rule_compiles_with_celpy(kind: str) -> None:
    env = celpy.Environment()
    rules = list(_rules(_schema(kind)))
    assert rules
    for rule in rules:
        env.program(env.compile(rule))


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_are_admitted_unchanged(name: str) -> None:
    obj = load(name)
    _, unknown = kschema.prune(obj, _schema(obj["kind"]))
    assert unknown == []
    assert _errors(obj) == []


def _edit(name: str, path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(load(name))
    node: Any = obj
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[keys[-1]] = value
    return obj


_WORKER = "spec.workerGroupSpecs.0"
_CONTAINER = "spec.headGroupSpec.template.spec.containers.0"
BAD = [
    ("raycluster-minimal.yaml", f"{_WORKER}.replicas", 1099511627776, "replicas"),
    ("raycluster-minimal.yaml", f"{_WORKER}.minReplicas", 2**31, "minReplicas"),
    ("raycluster-minimal.yaml", f"{_WORKER}.maxReplicas", 2**31, "maxReplicas"),
    ("raycluster-minimal.yaml", f"{_WORKER}.numOfHosts", 2**40, "numOfHosts"),
    ("raycluster-minimal.yaml", f"{_WORKER}.replicas", -1, "replicas"),
    ("raycluster-minimal.yaml", f"{_CONTAINER}.env", {"A": "1"}, "env"),
    ("raycluster-minimal.yaml", f"{_CONTAINER}.resources", {"limits": ["1"]}, "limits"),
    ("raycluster-minimal.yaml", f"{_CONTAINER}.resources", {"limits": {"cpu": "lots"}}, "limits"),
    ("raycluster-minimal.yaml", f"{_CONTAINER}.ports", [{"containerPort": "x"}], "containerPort"),
    ("raycluster-minimal.yaml", f"{_CONTAINER}.name", None, "name"),
    ("raycluster-minimal.yaml", f"{_WORKER}.template.spec.containers", None, "containers"),
    ("raycluster-full.yaml", "spec.autoscalerOptions.env", [{"value": "x"}], "name"),
    (
        "rayjob-k8sjob.yaml",
        "spec.submitterPodTemplate.spec.containers",
        [{"name": "s", "args": "a b"}],
        "args",
    ),
    ("raycluster-minimal.yaml", "spec.workerGroupSpecs.0.minReplicas", 6, "minReplicas must be less than"),
    ("raycluster-minimal.yaml", "spec.workerGroupSpecs.0.numOfHosts", -1, "numOfHosts"),
    ("raycluster-minimal.yaml", "spec.authOptions", {"mode": "sometimes"}, "authOptions.mode"),
    (
        "raycluster-minimal.yaml",
        "spec.authOptions",
        {"mode": "token", "secretName": "s", "enableK8sTokenAuth": True},
        "cannot be used with authOptions.enableK8sTokenAuth",
    ),
    ("raycluster-minimal.yaml", "spec.authOptions", {"secretName": "s"}, "requires authOptions.mode 'token'"),
    ("raycluster-full.yaml", "spec.workerGroupSpecs.1.suspend", True, "cannot be suspended with Autoscaler"),
    ("raycluster-full.yaml", "spec.autoscalerOptions.upscalingMode", "Fast", "upscalingMode"),
    ("rayjob-k8sjob.yaml", "spec.suspend", True, "not allowed to be suspended"),
    (
        "rayjob-k8sjob.yaml",
        "spec.submissionMode",
        "SidecarMode",
        "SidecarMode doesn't support SubmitterPodTemplate",
    ),
    ("rayjob-k8sjob.yaml", "spec.shutdownAfterJobFinishes", True, "mutually exclusive"),
    (
        "rayjob-k8sjob.yaml",
        "spec.deletionStrategy.onSuccess",
        {"policy": "DeleteNone"},
        "Cannot use both legacy",
    ),
    (
        "rayjob-k8sjob.yaml",
        "spec.deletionStrategy.deletionRules.3.condition.jobStatus",
        "FAILED",
        "exactly one of",
    ),
    ("rayjob-k8sjob.yaml", "spec.deletionStrategy.deletionRules", [], "deletionRules"),
    ("rayjob-k8sjob.yaml", "spec.rayClusterSpec", None, "one of RayClusterSpec or ClusterSelector"),
    ("rayjob-sidecar.yaml", "spec.shutdownAfterJobFinishes", False, "cannot have TTLSecondsAfterFinished"),
    (
        "rayjob-sidecar.yaml",
        "spec.submitterConfig",
        {"backoffLimit": 1},
        "SidecarMode doesn't support SubmitterConfig",
    ),
    (
        "rayservice.yaml",
        "spec.upgradeStrategy.clusterUpgradeOptions.stepSizePercent",
        20,
        "stepSizePercent must be less than or equal to maxSurgePercent",
    ),
    (
        "rayservice.yaml",
        "spec.upgradeStrategy.clusterUpgradeOptions",
        None,
        "clusterUpgradeOptions is required",
    ),
]


@pytest.mark.parametrize(("name", "path", "value", "message"), BAD, ids=[f"{b[1]}={b[2]}" for b in BAD])
def test_bad_objects_are_rejected(name: str, path: str, value: Any, message: str) -> None:
    obj = _edit(name, path, value)
    if value is None:
        keys = path.split(".")
        parent: Any = obj
        for key in keys[:-1]:
            parent = parent[int(key)] if isinstance(parent, list) else parent[key]
        del parent[keys[-1]]
    errors = _errors(obj)
    assert any(message in e for e in errors), errors


def test_interactive_mode_rejects_backoff_limit() -> None:
    obj = _edit("rayjob-sidecar.yaml", "spec.submissionMode", "InteractiveMode")
    obj["spec"]["backoffLimit"] = 2
    assert any("BackoffLimit is incompatible with InteractiveMode" in e for e in _errors(obj))
    obj["spec"]["backoffLimit"] = 0
    assert _errors(obj) == []


def test_cluster_selector_mode_rules() -> None:
    obj = load("rayjob-sidecar.yaml")
    del obj["spec"]["rayClusterSpec"]
    obj["spec"]["submissionMode"] = "K8sJobMode"
    obj["spec"]["clusterSelector"] = {"ray.io/cluster": "rc"}
    assert _errors(obj) == []
    obj["spec"]["suspend"] = True
    assert any("ClusterSelector mode doesn't support the suspend" in e for e in _errors(obj))
    obj["spec"]["suspend"] = False
    obj["spec"]["submissionMode"] = "SidecarMode"
    assert any("ClusterSelector is not supported in SidecarMode" in e for e in _errors(obj))


def test_managed_by_is_immutable() -> None:
    old = _edit("raycluster-minimal.yaml", "spec.managedBy", "kueue.x-k8s.io/multikueue")
    assert _errors(old) == []
    assert _errors(copy.deepcopy(old), old) == []
    new = _edit("raycluster-minimal.yaml", "spec.managedBy", "ray.io/kuberay-operator")
    assert any("managedBy field is immutable" in e for e in _errors(new, old))


def test_defaults_are_applied_like_kuberay() -> None:
    obj = load("raycluster-minimal.yaml")
    del obj["spec"]["workerGroupSpecs"][0]["minReplicas"]
    del obj["spec"]["workerGroupSpecs"][0]["maxReplicas"]
    schema = _schema("RayCluster")
    group = kschema.apply_defaults(obj, schema)["spec"]["workerGroupSpecs"][0]
    assert (group["minReplicas"], group["maxReplicas"], group["numOfHosts"]) == (0, 2147483647, 1)
    job = kschema.apply_defaults(load("rayjob-sidecar.yaml"), _schema("RayJob"))["spec"]
    assert (job["backoffLimit"], job["ttlSecondsAfterFinished"]) == (0, 10)


def test_duplicate_group_names_are_rejected_by_the_list_map() -> None:
    obj = load("raycluster-minimal.yaml")
    obj["spec"]["workerGroupSpecs"].append(copy.deepcopy(obj["spec"]["workerGroupSpecs"][0]))
    assert any("Duplicate value" in e and "wg" in e for e in _errors(obj))


def test_rayside_crds_dispatches_to_crdgen() -> None:
    from rayside import cli

    assert cli.main(["crds", "--check"]) == crdgen.EXIT_OK


def test_the_quantity_table_names_real_client_fields() -> None:
    import kubernetes.client.models as k8s_models

    from ray_operator import k8sschema

    for cls, attr in sorted(k8sschema.QUANTITY_FIELDS):
        assert attr in getattr(k8s_models, cls).openapi_types, (cls, attr)
    volume = k8sschema.schema_of("V1Volume")["properties"]["emptyDir"]["properties"]["sizeLimit"]
    assert volume == k8sschema.quantity()
    probe = k8sschema.schema_of("V1Probe")["properties"]
    assert probe["httpGet"]["properties"]["port"] == {"x-kubernetes-int-or-string": True}
    assert probe["grpc"]["properties"]["port"] == {"type": "integer"}
    env = k8sschema.schema_of("List[V1EnvVar]")
    assert env["type"] == "array" and env["items"]["required"] == ["name"]
