"""The generated CRDs served by localkube: every KubeRay sample is admitted over HTTP, and the hostile inputs
that used to pass (a 2^40 replica count, `env` as a map, `limits` as a list) are refused with a 422 naming the
field, so they never reach a reconcile."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import install_crds
from rayside.kubeclient import Invalid, KubeClient
from rayside.objects import resource_for
from tests.support.kube import wait_for
from tests.unit.operator.golden import SAMPLES, load

pytestmark = pytest.mark.api
NS = "default"


@pytest.fixture(scope="module")
def kc() -> Iterator[KubeClient]:
    with running() as lk:
        client = lk_client(lk)
        install_crds(client)
        wait_for(lambda: _served(client), 30, "the ray.io CRDs served")
        yield client


def lk_client(lk: LocalKube) -> KubeClient:
    client: KubeClient = lk.kube_client(qps=100, burst=100)
    return client


def _served(client: KubeClient) -> bool:
    try:
        client.list(resource_for("ray.io/v1", "RayCluster").path(NS))
        return True
    except Exception:
        return False


def _create(client: KubeClient, obj: dict[str, Any]) -> dict[str, Any]:
    return client.create(resource_for(obj["apiVersion"], obj["kind"]).path(NS), obj)


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_is_admitted(kc: KubeClient, name: str) -> None:
    obj = copy.deepcopy(load(name))
    obj["metadata"] = {"name": f"sample-{name.removesuffix('.yaml')}", "namespace": NS}
    created = _create(kc, obj)
    sent = dict(_templates(obj["spec"]))
    assert sent and dict(_templates(created["spec"])) == sent  # pod templates kept whole, nothing pruned


def _templates(node: Any, path: str = "spec") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("template", "submitterPodTemplate"):
                yield f"{path}.{key}", value
            else:
                yield from _templates(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _templates(item, f"{path}[{i}]")


def _hostile(name: str, edit: Any) -> dict[str, Any]:
    obj = copy.deepcopy(load("raycluster-minimal.yaml"))
    obj["metadata"] = {"name": name, "namespace": NS}
    edit(obj["spec"])
    return obj


def _container(spec: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    return container


HOSTILE = {
    "replicas-2-to-the-40": (
        lambda s: s["workerGroupSpecs"][0].update(replicas=1099511627776),
        "spec.workerGroupSpecs[0].replicas",
    ),
    "env-as-a-map": (
        lambda s: _container(s).update(env={"A": "1"}),
        "spec.workerGroupSpecs[0].template.spec.containers[0].env",
    ),
    "limits-as-a-list": (
        lambda s: _container(s).update(resources={"limits": ["1"]}),
        "spec.workerGroupSpecs[0].template.spec.containers[0].resources.limits",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_specs_are_refused_naming_the_field(kc: KubeClient, case: str) -> None:
    edit, field = HOSTILE[case]
    with pytest.raises(Invalid) as info:
        _create(kc, _hostile(f"hostile-{case}", edit))
    assert field in info.value.message
