"""Specs the CRD accepts but the builders reject must not break the operator: the cluster gets a
`RayClusterSpecValid=False` condition and ONE Warning event naming the field (never Python's own text),
the failure is logged at ERROR once per generation, and other clusters keep reconciling. The operator runs
in-process (`OperatorThread`) against localkube with the simulated kubelet; the test acts through the API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from kubernetes import client

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import install_crds
from tests.api.test_operator import NS, Api, OperatorThread, group, raycluster, wait_for

pytestmark = pytest.mark.api
FIELD = "spec.workerGroupSpecs[0].rayStartParams.dashboard-agent-listen-port"


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running(kubelet="simulated", kubelet_options={"ready_delay": 0.2}) as server:
        install_crds(server.kube_client())
        yield server


@pytest.fixture
def operator(lk: LocalKube) -> Iterator[OperatorThread]:
    op = OperatorThread(lk).start()  # one worker: the bad cluster must not hold it
    yield op
    op.stop()


@pytest.fixture
def api(lk: LocalKube) -> Api:
    return Api(client.CoreV1Api(lk.api_client()), client.CustomObjectsApi(lk.api_client()))


def warnings_of(api: Api, name: str) -> list[client.CoreV1Event]:
    items = api.core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items
    return [e for e in items if e.type == "Warning"]


def test_a_value_the_builders_reject_is_a_condition_and_one_event(
    api: Api, operator: OperatorThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="ray_operator.raycluster.reconciler")
    bad = group("wg", replicas=1, rayStartParams={"dashboard-agent-listen-port": "abc"})
    api.create(raycluster("bad", bad))
    api.create(raycluster("good", group("wg", replicas=1)))

    cond = wait_for(lambda: api.condition("RayClusterSpecValid", "bad"), what="bad's spec condition")
    assert cond["status"] == "False"
    assert cond["message"] == f'{FIELD}: "abc" is not a port number (1-65535)'
    wait_for(lambda: warnings_of(api, "bad"), what="bad's Warning event")
    wait_for(lambda: api.ready("good", workers=1), what="the valid cluster ready")
    assert api.pods("bad") == []

    # more passes of the same generation (a label change does not bump it): no second event, no new log
    touched = int(api.patch({"metadata": {"labels": {"touched": "1"}}}, "bad")["metadata"]["resourceVersion"])
    seen = operator.operator.reconciler.last_seen
    wait_for(lambda: seen.get(f"{NS}/bad", 0) >= touched, what="a pass of bad that read the label change")
    (event,) = warnings_of(api, "bad")
    assert FIELD in event.message and "int()" not in event.message and (event.count or 1) == 1
    errors = [r for r in caplog.records if "bad" in r.getMessage() and r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]

    # a fix recovers the cluster
    api.patch({"spec": {"workerGroupSpecs": [group("wg", replicas=1)]}}, "bad")
    wait_for(lambda: api.ready("bad", workers=1), what="bad ready after the fix")
    assert (api.condition("RayClusterSpecValid", "bad") or {}).get("status") == "True"
