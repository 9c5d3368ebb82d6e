"""The RayCluster controller's pure decisions that used to live in the reconciler: status write throttling,
the RayClusterSpecValid condition, and the children it owns (autoscaler RBAC via the builders, PodGroups via
the scheduler protocol)."""

from __future__ import annotations

import copy
from typing import Any

from ray_operator.builders import BuildSettings, names
from ray_operator.models import RayCluster
from ray_operator.raycluster.children import desired_children, pod_factory
from ray_operator.raycluster.plan import PodSlot
from ray_operator.raycluster.status import (
    SPEC_VALID,
    get_condition,
    invalid_spec,
    mark_spec_valid,
    write_decision,
)
from tests.unit.operator.golden import load

NOW = "2026-01-01T00:00:00Z"
OLD = {"state": "ready", "readyWorkerReplicas": 1, "availableWorkerReplicas": 1, "conditions": []}


def test_unchanged_status_is_never_written() -> None:
    new = {**OLD, "lastUpdateTime": NOW, "desiredCPU": "9"}
    assert write_decision(OLD, new, last_write=None, now=100.0, interval=5.0) == "skip"


def test_counter_only_changes_wait_for_the_interval() -> None:
    new = {**OLD, "readyWorkerReplicas": 2}
    assert write_decision(OLD, new, last_write=98.0, now=100.0, interval=5.0) == "defer"
    assert write_decision(OLD, new, last_write=90.0, now=100.0, interval=5.0) == "write"
    assert write_decision(OLD, new, last_write=None, now=100.0, interval=5.0) == "write"


def test_other_changes_are_written_at_once() -> None:
    new = {**OLD, "readyWorkerReplicas": 2, "state": "suspended"}
    assert write_decision(OLD, new, last_write=99.9, now=100.0, interval=5.0) == "write"


def test_invalid_spec_reported_once_per_problem_and_cleared_by_a_valid_pass() -> None:
    report = invalid_spec({}, "bad group", key="ns/rc", generation=4, now=NOW)
    assert report is not None
    status, message = report
    assert message == "The RayCluster spec is invalid ns/rc: bad group"
    cond = get_condition(status, SPEC_VALID)
    assert cond is not None and (cond["status"], cond["reason"]) == ("False", "InvalidRayClusterSpec")
    assert status["observedGeneration"] == 4
    assert invalid_spec(status, "bad group", key="ns/rc", generation=4, now=NOW) is None
    assert invalid_spec(status, "other problem", key="ns/rc", generation=5, now=NOW) is not None
    fixed = mark_spec_valid(copy.deepcopy(status), now=NOW)
    assert get_condition(fixed, SPEC_VALID)["status"] == "True"  # type: ignore[index]
    assert mark_spec_valid({"conditions": []}, now=NOW) == {"conditions": []}  # never added by a valid pass


def cluster(labels: dict[str, str] | None = None, **spec: Any) -> RayCluster:
    data = copy.deepcopy(load("raycluster-minimal.yaml"))
    data["metadata"]["labels"] = labels or {}
    data["spec"].update(spec)
    return RayCluster.model_validate(data)


def kinds(children: list[dict[str, Any]]) -> list[str]:
    return [str(child["kind"]) for child in children]


def test_children_use_the_builders_rbac_and_the_scheduler_pod_group() -> None:
    settings = BuildSettings(batch_scheduler="volcano")
    children = desired_children(
        cluster(enableInTreeAutoscaling=True), settings=settings, existing=set(), token=bytes
    )
    assert kinds(children) == ["ServiceAccount", "Role", "RoleBinding", "Service", "PodGroup"]
    plain = desired_children(cluster(), settings=BuildSettings(), existing=set(), token=bytes)
    assert kinds(plain) == ["Service"]


def test_a_head_service_account_in_the_template_is_not_created() -> None:
    rc = cluster(enableInTreeAutoscaling=True)
    rc.spec.head_group_spec.template.setdefault("spec", {})["serviceAccountName"] = "mine"
    children = desired_children(rc, settings=BuildSettings(), existing=set(), token=bytes)
    assert kinds(children) == ["Role", "RoleBinding", "Service"]


def test_auth_secret_only_when_missing_and_token_from_the_injected_source() -> None:
    rc = cluster(rayVersion="2.52.0", authOptions={"mode": "token"})
    calls: list[int] = []

    def token(size: int) -> bytes:
        calls.append(size)
        return b"x" * size

    assert "Secret" in kinds(desired_children(rc, settings=BuildSettings(), existing=set(), token=token))
    assert calls == [32]
    present = {("Secret", names.auth_secret_name(rc))}
    assert "Secret" not in kinds(
        desired_children(rc, settings=BuildSettings(), existing=present, token=token)
    )


def test_pods_are_stamped_by_the_scheduler() -> None:
    make = pod_factory(cluster({"ray.io/scheduler-name": "kai-scheduler"}), settings=BuildSettings())
    assert make(PodSlot(None))["spec"]["schedulerName"] == "kai-scheduler"
    plain = pod_factory(cluster(), settings=BuildSettings())
    assert "schedulerName" not in plain(PodSlot(None))["spec"]
