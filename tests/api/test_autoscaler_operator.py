"""The provider's patches as the rayside operator carries them out (localkube, simulated kubelet): the
operator deletes exactly the listed single-host pod and every host of the listed slice, and the workers
left are exactly the others (no replacement pods)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from autoscaler_provider.provider import RaysideCloudProvider
from autoscaler_provider.scaler import Scaler
from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import install_crds
from rayside.objects import PODS, RAYCLUSTERS, labels_of, name_of
from tests.api.test_operator import OperatorThread, group, raycluster
from tests.support.kube import wait_for

pytestmark = pytest.mark.api
NS = "default"


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running(bookmark_interval=1.0, kubelet="simulated", kubelet_options={"ready_delay": 0.2}) as server:
        install_crds(server.kube_client())
        yield server


def live_workers(lk: LocalKube) -> dict[str, dict[str, str]]:
    pods, _ = lk.kube_client().list_all(PODS.path(NS), {"labelSelector": "ray.io/cluster=rc"})
    return {
        name_of(p): labels_of(p)
        for p in pods
        if labels_of(p).get("ray.io/node-type") == "worker" and not p["metadata"].get("deletionTimestamp")
    }


def test_operator_deletes_exactly_the_listed_pods_and_slices(lk: LocalKube) -> None:
    kc = lk.kube_client()
    body = raycluster("rc", group("cpu", 3), group("tpu", 2, numOfHosts=2), enableInTreeAutoscaling=True)
    kc.create(RAYCLUSTERS.path(NS), body)
    operator = OperatorThread(lk).start()
    try:
        wait_for(lambda: len(live_workers(lk)) == 7, 60, "7 worker pods")
        before = live_workers(lk)
        cpu = sorted(n for n, labels in before.items() if labels["ray.io/group"] == "cpu")
        slices: dict[str, list[str]] = {}
        for name, labels in before.items():
            if labels["ray.io/group"] == "tpu":
                slices.setdefault(labels["ray.io/worker-group-replica-name"], []).append(name)
        doomed_slice, kept_slice = sorted(slices)
        provider = RaysideCloudProvider(Scaler(kc, "rc", NS))
        provider.get_non_terminated()
        provider.terminate([cpu[1], slices[doomed_slice][0]], "t1")
        provider.flush()
        assert provider.poll_errors() == []
        want = {cpu[0], cpu[2], *slices[kept_slice]}
        wait_for(lambda: set(live_workers(lk)) == want, 60, f"workers {sorted(want)}")
        spec = kc.get(RAYCLUSTERS.path(NS, "rc"))["spec"]["workerGroupSpecs"]
        assert [g["replicas"] for g in spec] == [2, 1]
    finally:
        operator.stop()
