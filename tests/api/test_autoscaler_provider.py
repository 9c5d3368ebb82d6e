"""The autoscaler v2 provider (autoscaler_provider.provider) against localkube over HTTP.

Pods are created directly through the API with the labels the operator gives them (no operator runs), so
each test sees exactly the requests the provider sends: the JSON patch bodies are recorded at the HTTP
session, and per-verb counts come from the client's statistics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from autoscaler_provider.provider import RaysideCloudProvider, RaysideConfigReader
from autoscaler_provider.scaler import Scaler
from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import install_crds
from rayside.kubeclient import KubeClient, KubeError
from rayside.objects import JSON, PODS, RAYCLUSTERS, resource_version_of

pytestmark = pytest.mark.api
NS = "default"
CONTAINER = [{"name": "ray", "image": "rayproject/ray:2.60.0", "resources": {"limits": {"cpu": "1"}}}]


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running() as server:
        install_crds(server.kube_client())
        yield server


class Recorder:
    """A KubeClient whose HTTP session remembers every PATCH body it sends."""

    def __init__(self, lk: LocalKube) -> None:
        self.client: KubeClient = lk.kube_client(retries=1)
        self.patches: list[Any] = []
        send = self.client.session.request

        def request(method: str, url: str, **kw: Any) -> Any:
            if method == "PATCH":
                self.patches.append(json.loads(kw["data"]))
            return send(method, url, **kw)

        self.client.session.request = request


def group(name: str, replicas: int, hi: int = 5, hosts: int = 1, **extra: Any) -> JSON:
    spec: JSON = {
        "groupName": name,
        "replicas": replicas,
        "minReplicas": 0,
        "maxReplicas": hi,
        "numOfHosts": hosts,
        "rayStartParams": {},
        "template": {"spec": {"containers": CONTAINER}},
    }
    spec.update(extra)
    return spec


def make_cluster(kc: KubeClient, *groups: JSON) -> JSON:
    body = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "rc", "namespace": NS},
        "spec": {
            "headGroupSpec": {
                "rayStartParams": {"num-cpus": "0"},
                "template": {"spec": {"containers": CONTAINER}},
            },
            "workerGroupSpecs": list(groups),
        },
    }
    created: JSON = kc.create(RAYCLUSTERS.path(NS), body)
    make_pod(kc, "rc-head-x", "headgroup", kind="head")
    return created


def make_pod(kc: KubeClient, name: str, grp: str, kind: str = "worker", slice_name: str = "") -> None:
    labels = {"ray.io/cluster": "rc", "ray.io/node-type": kind, "ray.io/group": grp}
    if slice_name:
        labels["ray.io/worker-group-replica-name"] = slice_name
    pod = {"metadata": {"name": name, "namespace": NS, "labels": labels}, "spec": {"containers": CONTAINER}}
    kc.create(PODS.path(NS), pod)


def writes(patch: list[JSON]) -> list[JSON]:
    """A patch without its guarding `test` ops."""
    return [op for op in patch if op["op"] != "test"]


def spec_of(kc: KubeClient) -> JSON:
    spec: JSON = kc.get(RAYCLUSTERS.path(NS, "rc"))["spec"]
    return spec


def provider_for(rec: Recorder, busy: frozenset[str] = frozenset()) -> tuple[RaysideCloudProvider, Scaler]:
    scaler = Scaler(rec.client, "rc", NS, busy_nodes=lambda: busy)
    return RaysideCloudProvider(scaler), scaler


def update(provider: RaysideCloudProvider, reader: RaysideConfigReader | None = None) -> dict[str, Any]:
    """One autoscaler update as v2 runs it: refresh the config, list instances (flushes), poll errors."""
    if reader is not None:
        reader.refresh_cached_autoscaling_config()
    return dict(provider.get_non_terminated())


def test_single_host_terminate_one_read_one_patch(lk: LocalKube) -> None:
    rec = Recorder(lk)
    make_cluster(rec.client, group("cpu", 3))
    for name in ("w1", "w2", "w3"):
        make_pod(rec.client, name, "cpu")
    provider, scaler = provider_for(rec)
    reader = RaysideConfigReader(scaler)
    assert set(update(provider, reader)) == {"rc-head-x", "w1", "w2", "w3"}
    provider.terminate(["w2"], "t1")
    before = rec.client.stats
    update(provider, reader)
    after = rec.client.stats
    sent = {k: n for k in after if (n := after[k] - before.get(k, 0))}
    assert sent == {"GET": 2, "PATCH": 1}  # one GET of the CR, one LIST of its pods
    assert rec.patches[0] == [
        {"op": "test", "path": "/spec/workerGroupSpecs/0/groupName", "value": "cpu"},
        {"op": "test", "path": "/spec/workerGroupSpecs/0/replicas", "value": 3},
        {"op": "test", "path": "/spec/workerGroupSpecs/0/minReplicas", "value": 0},
        {"op": "test", "path": "/spec/workerGroupSpecs/0/maxReplicas", "value": 5},
        {"op": "test", "path": "/spec/workerGroupSpecs/0/numOfHosts", "value": 1},
        {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 2},
        {"op": "add", "path": "/spec/workerGroupSpecs/0/scaleStrategy", "value": {"workersToDelete": ["w2"]}},
    ]
    spec = spec_of(rec.client)["workerGroupSpecs"][0]
    assert (spec["replicas"], spec["scaleStrategy"]["workersToDelete"]) == (2, ["w2"])
    provider.terminate(["w2"], "t1")  # a replayed request id sends nothing
    update(provider, reader)
    assert len(rec.patches) == 1 and provider.poll_errors() == []


def test_64_host_slice_scaled_up_in_one_update(lk: LocalKube) -> None:
    rec = Recorder(lk)
    make_cluster(rec.client, group("v6e", 0, hi=2, hosts=64))
    provider, scaler = provider_for(rec)
    reader = RaysideConfigReader(scaler)
    assert reader.get_cached_autoscaling_config().get_node_type_configs()["v6e"].max_worker_nodes == 128
    # One whole update as __main__'s autoscaler runs it: config, instances, errors, decisions, flush.
    before = rec.client.stats
    assert set(update(provider, reader)) == {"rc-head-x"} and provider.poll_errors() == []
    provider.launch({"v6e": 10}, "l1")  # v2 never has more than 10 launches outstanding by default
    provider.flush()
    after = rec.client.stats
    assert {k: n for k in after if (n := after[k] - before.get(k, 0))} == {"GET": 2, "PATCH": 1}
    assert writes(rec.patches[0]) == [
        {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 1}
    ]
    assert spec_of(rec.client)["workerGroupSpecs"][0]["replicas"] == 1
    provider.launch({"v6e": 10}, "l1")  # a replayed request id
    provider.launch({"v6e": 10}, "l2")  # claims 10 of the 54 hosts already on their way: no second slice
    update(provider, reader)
    provider.flush()
    assert len(rec.patches) == 1 and provider.poll_errors() == []


def test_conflict_is_retried_on_a_fresh_read(lk: LocalKube) -> None:
    rec = Recorder(lk)
    make_cluster(rec.client, group("a", 1), group("b", 1))
    make_pod(rec.client, "b1", "b")
    provider, scaler = provider_for(rec)
    stale = scaler.refresh()
    # Meanwhile someone reorders the groups: index 0 is now "b".
    other = lk.kube_client()
    groups = spec_of(other)["workerGroupSpecs"]
    other.patch(RAYCLUSTERS.path(NS, "rc"), {"spec": {"workerGroupSpecs": groups[::-1]}}, "merge")
    scaler.terminate(["b1"], "t1")
    scaler.flush(stale)
    assert len(rec.patches) == 2  # the first failed its groupName test
    by_name = {g["groupName"]: g for g in spec_of(rec.client)["workerGroupSpecs"]}
    assert by_name["b"]["replicas"] == 0 and by_name["b"]["scaleStrategy"]["workersToDelete"] == ["b1"]
    assert by_name["a"]["replicas"] == 1 and "scaleStrategy" not in by_name["a"]
    assert provider.poll_errors() == []


def test_status_writes_do_not_invalidate_a_plan_but_replicas_edits_do(lk: LocalKube) -> None:
    rec = Recorder(lk)
    make_cluster(rec.client, group("a", 1))
    _, scaler = provider_for(rec)
    other = lk.kube_client()
    stale = scaler.refresh()
    other.patch(RAYCLUSTERS.path(NS, "rc", "status"), {"status": {"desiredWorkerReplicas": 1}}, "merge")
    assert resource_version_of(other.get(RAYCLUSTERS.path(NS, "rc"))) != resource_version_of(stale.raycluster)
    scaler.launch({"a": 1}, "l1")
    scaler.flush(stale)
    assert len(rec.patches) == 1 and spec_of(other)["workerGroupSpecs"][0]["replicas"] == 2
    stale = scaler.refresh()
    edited = spec_of(other)["workerGroupSpecs"]
    edited[0]["replicas"] = 4  # a user scales up by hand meanwhile: kept, and the launch adds to it
    other.patch(RAYCLUSTERS.path(NS, "rc"), {"spec": {"workerGroupSpecs": edited}}, "merge")
    scaler.launch({"a": 1}, "l2")
    scaler.flush(stale)
    assert len(rec.patches) == 3 and spec_of(other)["workerGroupSpecs"][0]["replicas"] == 5


def test_api_errors_never_terminate(lk: LocalKube) -> None:
    rec = Recorder(lk)
    make_cluster(rec.client, group("cpu", 2))
    make_pod(rec.client, "w1", "cpu")
    make_pod(rec.client, "w2", "cpu")
    provider, _ = provider_for(rec)
    update(provider)
    lk.faults.set(error_rates={"list": {500: 1.0}})
    with pytest.raises(KubeError):  # a failed pod list is an error, never an empty cluster
        update(provider)
    lk.faults.set(error_rates={"patch": {503: 1.0}})
    provider.terminate(["w1"], "t1")
    update(provider)
    errors = provider.poll_errors()
    assert [(type(e).__name__, e.cloud_instance_id) for e in errors] == [("TerminateNodeError", "w1")]
    lk.faults.clear()
    spec = spec_of(rec.client)["workerGroupSpecs"][0]
    assert spec["replicas"] == 2 and "scaleStrategy" not in spec
    assert set(update(provider)) == {"rc-head-x", "w1", "w2"}


def test_pending_deletes_gate_then_launch_and_clear(lk: LocalKube) -> None:
    rec = Recorder(lk)
    make_cluster(rec.client, group("tpu", 0, hi=2, hosts=4, scaleStrategy={"workersToDelete": ["a2"]}))
    make_pod(rec.client, "a2", "tpu", slice_name="tpu-a")
    provider, _ = provider_for(rec)
    provider.launch({"tpu": 4}, "l1")
    update(provider)
    errors = provider.poll_errors()
    assert [(e.node_type, e.count) for e in errors] == [("tpu", 4)]
    assert "Waiting for them to be deleted" in str(errors[0]) and rec.patches == []
    rec.client.delete(PODS.path(NS, "a2"))
    provider.launch({"tpu": 4}, "l1")  # the same id may be retried after the gate
    update(provider)
    assert writes(rec.patches[0]) == [
        {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 1},
        {"op": "add", "path": "/spec/workerGroupSpecs/0/scaleStrategy/workersToDelete", "value": []},
    ]


def test_busy_slice_is_kept_and_idle_slice_removed_whole(lk: LocalKube) -> None:
    rec = Recorder(lk)
    make_cluster(rec.client, group("tpu", 2, hosts=2))
    for name, slice_name in (("a0", "tpu-a"), ("a1", "tpu-a"), ("b0", "tpu-b"), ("b1", "tpu-b")):
        make_pod(rec.client, name, "tpu", slice_name=slice_name)
    provider, _ = provider_for(rec, busy=frozenset({"a0"}))
    update(provider)
    provider.terminate(["a1", "b0"], "t1")
    update(provider)
    assert writes(rec.patches[0]) == [
        {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 1},
        {
            "op": "add",
            "path": "/spec/workerGroupSpecs/0/scaleStrategy",
            "value": {"workersToDelete": ["b0", "b1"]},
        },
    ]
    assert [(type(e).__name__, e.cloud_instance_id) for e in provider.poll_errors()] == [
        ("TerminateNodeError", "a1")
    ]


def test_unknown_busy_state_keeps_every_pod_but_still_launches(lk: LocalKube) -> None:
    rec = Recorder(lk)
    make_cluster(rec.client, group("cpu", 1), group("gpu", 0))
    make_pod(rec.client, "w1", "cpu")

    def gcs_down() -> frozenset[str]:
        raise ConnectionError("GCS unavailable")

    scaler = Scaler(rec.client, "rc", NS, busy_nodes=gcs_down)
    provider = RaysideCloudProvider(scaler)
    update(provider)
    provider.terminate(["w1"], "t1")
    provider.launch({"gpu": 1}, "l1")
    provider.flush()
    assert writes(rec.patches[0]) == [
        {"op": "replace", "path": "/spec/workerGroupSpecs/1/replicas", "value": 1}
    ]
    assert [(type(e).__name__, e.cloud_instance_id) for e in provider.poll_errors()] == [
        ("TerminateNodeError", "w1")
    ]


def rep(index: int, value: int) -> JSON:
    return {"op": "replace", "path": f"/spec/workerGroupSpecs/{index}/replicas", "value": value}


def listed(index: int, names: list[str]) -> JSON:
    return {
        "op": "add",
        "path": f"/spec/workerGroupSpecs/{index}/scaleStrategy",
        "value": {"workersToDelete": names},
    }


SLICE_A = [("a0", "tpu", "tpu-a"), ("a1", "tpu", "tpu-a"), ("a2", "tpu", "tpu-a"), ("a3", "tpu", "tpu-a")]
Scenario = tuple[list[JSON], list[tuple[str, str, str]], str, Any, list[JSON], list[tuple[str, int]]]
SCENARIOS: dict[str, Scenario] = {
    # name: (groups, pods (name, group, slice), call, argument, writes, launch errors (type, count))
    "5 partial slice rounds up": (
        [group("tpu", 1, hi=3, hosts=4)], SLICE_A, "launch", {"tpu": 1}, [rep(0, 2)], []
    ),
    "5 over max: capped, 4 rejected": (
        [group("tpu", 1, hi=3, hosts=4)], SLICE_A, "launch", {"tpu": 12}, [rep(0, 3)], [("tpu", 4)]
    ),
    "10 normalisation": (
        [group("a", 7, hi=5), group("b", 0, minReplicas=2), group("c", 1)],
        [*((f"a{i}", "a", "") for i in range(5)), ("c1", "c", ""), ("c2", "c", "")],
        "launch", {"c": 1}, [rep(0, 5), rep(1, 2), rep(2, 3)], [],
    ),
    "12 head and ghost": (
        [group("cpu", 1)], [("w1", "cpu", "")], "terminate", ["rc-head-x", "ghost"], [], []
    ),
    "15 max lowered: the whole slice": (
        [group("tpu", 1, hi=0, hosts=4)], SLICE_A, "terminate", ["a0", "a1", "a2", "a3"],
        [rep(0, 0), listed(0, ["a0", "a1", "a2", "a3"])], [],
    ),
    "6b two slices touched: replicas -2": (
        [group("tpu", 2, hosts=2)],
        [("a0", "tpu", "tpu-a"), ("a1", "tpu", "tpu-a"), ("b0", "tpu", "tpu-b"), ("b1", "tpu", "tpu-b")],
        "terminate", ["a1", "b0"], [rep(0, 0), listed(0, ["a0", "a1", "b0", "b1"])], [],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_patches(lk: LocalKube, name: str) -> None:
    groups, pods, call, argument, want, launch_errors = SCENARIOS[name]
    rec = Recorder(lk)
    make_cluster(rec.client, *groups)
    for pod_name, grp, slice_name in pods:
        make_pod(rec.client, pod_name, grp, slice_name=slice_name)
    provider, _ = provider_for(rec)
    update(provider)
    getattr(provider, call)(argument, "r1")
    provider.flush()
    assert [writes(p) for p in rec.patches] == ([want] if want else [])
    assert [(e.node_type, e.count) for e in provider.poll_errors()] == launch_errors
    if want:  # the CR holds what was written
        for op in want:
            index, field = op["path"].split("/")[3:5]
            stored = spec_of(rec.client)["workerGroupSpecs"][int(index)][field]
            assert stored == op["value"]
