"""Conformance 60b: two instances of the official client's `LeaderElection` on one Lease elect one leader."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from localkube.cluster import LocalKube
from tests.support.kube import wait_for

pytestmark = pytest.mark.api


def candidate(lk: LocalKube, identity: str, leaders: list[str]) -> threading.Thread:
    lock = LeaseLock("elected", "default", identity)
    lock.api_instance = client.CoordinationV1Api(lk.api_client())  # not the global default client
    config = electionconfig.Config(
        lock,
        lease_duration=4,
        renew_deadline=3,
        retry_period=1,
        onstarted_leading=lambda: leaders.append(identity),
        onstopped_leading=lambda: None,
    )
    # LeaderElection.run() never returns for a follower; a daemon thread ends with the test process
    thread = threading.Thread(target=leaderelection.LeaderElection(config).run, daemon=True)
    thread.start()
    return thread


# The candidates' threads cannot be stopped (the library has no stop); they die with a connection error once
# the test's server is gone, which pytest would otherwise report as a warning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_two_python_leader_elections_elect_exactly_one_leader(lk: LocalKube) -> None:
    leaders: list[str] = []
    for identity in ("candidate-a", "candidate-b"):
        candidate(lk, identity, leaders)
    wait_for(lambda: leaders, timeout=30, what="a leader")
    coordination = client.CoordinationV1Api(lk.api_client())
    first = coordination.read_namespaced_lease("elected", "default").spec.renew_time

    def renewed_past_a_lease_duration() -> bool:  # the other candidate had its chance to take over
        renewed = coordination.read_namespaced_lease("elected", "default").spec.renew_time
        return bool(renewed and first and (renewed - first).total_seconds() >= 6)

    wait_for(renewed_past_a_lease_duration, timeout=30, what="renewals over 6 s (lease duration 4 s)")
    assert len(leaders) == 1, leaders
    lease: Any = coordination.read_namespaced_lease("elected", "default")
    assert lease.spec.holder_identity == leaders[0]
    assert lease.spec.lease_duration_seconds == 4
