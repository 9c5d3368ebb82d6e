"""The operator's health/metrics endpoint, pure parts: the Prometheus text renderer (golden text), the
snapshot helpers, readiness, the controller and queue counters behind the metrics, and the bind-address
flags. No I/O: the HTTP side is tested in tests/api/test_operator_health.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ray_operator.cli import main
from ray_operator.crdgen import CRD_DIR
from ray_operator.runtime.health import (
    ClusterInfo,
    LeaderStatus,
    MetricsSnapshot,
    Reachability,
    cluster_info,
    format_value,
    observe,
    readyz,
    render_metrics,
)
from ray_operator.settings import SettingsError, load_settings, parse_bind_address
from rayside.runtime.controller import RECONCILE_BUCKETS, Controller, ReconcileStats, result_of
from rayside.runtime.workqueue import QueueStats, WorkQueue


def _snapshot() -> MetricsSnapshot:
    buckets = [0] * (len(RECONCILE_BUCKETS) + 1)
    buckets[0], buckets[4], buckets[-1] = 2, 1, 1  # two passes <= 5 ms, one <= 100 ms, one over 60 s
    stats = ReconcileStats(
        controller="raycluster",
        results=(("success", 1), ("error", 1), ("requeue", 0), ("requeue_after", 2)),
        bucket_counts=tuple(buckets),
        duration_sum=61.5,
        active_workers=1,
        max_concurrent=4,
    )
    return MetricsSnapshot(
        controllers=((stats, QueueStats(depth=3, adds=7, retries=1)),),
        kube_requests=(("GET", 5), ("POST", 2)),
        leader=LeaderStatus("ray-operator-leader", True),
        clusters=(
            ClusterInfo("ns", "b", "RayJob", False, None),
            ClusterInfo("default", 'a"x', "None", True, 12.25),
        ),
    )


GOLDEN = """\
# HELP controller_runtime_reconcile_total Total number of reconciliations per controller
# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="raycluster",result="success"} 1
controller_runtime_reconcile_total{controller="raycluster",result="error"} 1
controller_runtime_reconcile_total{controller="raycluster",result="requeue"} 0
controller_runtime_reconcile_total{controller="raycluster",result="requeue_after"} 2
# HELP controller_runtime_reconcile_errors_total Total number of reconciliation errors per controller
# TYPE controller_runtime_reconcile_errors_total counter
controller_runtime_reconcile_errors_total{controller="raycluster"} 1
# HELP controller_runtime_reconcile_time_seconds Length of time per reconciliation per controller
# TYPE controller_runtime_reconcile_time_seconds histogram
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.005"} 2
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.01"} 2
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.025"} 2
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.05"} 2
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.1"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.15"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.2"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.25"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.3"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.35"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.4"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.45"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.5"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.6"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.7"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.8"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="0.9"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="1"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="1.25"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="1.5"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="1.75"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="2"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="2.5"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="3"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="3.5"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="4"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="4.5"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="5"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="6"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="7"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="8"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="9"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="10"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="15"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="20"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="25"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="30"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="40"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="50"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="60"} 3
controller_runtime_reconcile_time_seconds_bucket{controller="raycluster",le="+Inf"} 4
controller_runtime_reconcile_time_seconds_sum{controller="raycluster"} 61.5
controller_runtime_reconcile_time_seconds_count{controller="raycluster"} 4
# HELP controller_runtime_max_concurrent_reconciles Maximum number of concurrent reconciles per controller
# TYPE controller_runtime_max_concurrent_reconciles gauge
controller_runtime_max_concurrent_reconciles{controller="raycluster"} 4
# HELP controller_runtime_active_workers Number of currently used workers per controller
# TYPE controller_runtime_active_workers gauge
controller_runtime_active_workers{controller="raycluster"} 1
# HELP workqueue_depth Current depth of workqueue
# TYPE workqueue_depth gauge
workqueue_depth{controller="raycluster",name="raycluster"} 3
# HELP workqueue_adds_total Total number of adds handled by workqueue
# TYPE workqueue_adds_total counter
workqueue_adds_total{controller="raycluster",name="raycluster"} 7
# HELP workqueue_retries_total Total number of retries handled by workqueue
# TYPE workqueue_retries_total counter
workqueue_retries_total{controller="raycluster",name="raycluster"} 1
# HELP rest_client_requests_total Number of HTTP requests to the Kubernetes API, by method
# TYPE rest_client_requests_total counter
rest_client_requests_total{method="GET"} 5
rest_client_requests_total{method="POST"} 2
# HELP leader_election_master_status Whether this replica holds the leader Lease: 1 leader, 0 standby
# TYPE leader_election_master_status gauge
leader_election_master_status{name="ray-operator-leader"} 1
# HELP kuberay_cluster_info Metadata information about RayCluster custom resources
# TYPE kuberay_cluster_info gauge
kuberay_cluster_info{name="a\\"x",namespace="default",owner_kind="None"} 1
kuberay_cluster_info{name="b",namespace="ns",owner_kind="RayJob"} 1
# HELP kuberay_cluster_condition_provisioned Indicates whether the RayCluster is provisioned
# TYPE kuberay_cluster_condition_provisioned gauge
kuberay_cluster_condition_provisioned{name="a\\"x",namespace="default",condition="true"} 1
kuberay_cluster_condition_provisioned{name="b",namespace="ns",condition="false"} 1
# HELP kuberay_cluster_provisioned_duration_seconds Seconds from creation to RayClusterProvisioned=True
# TYPE kuberay_cluster_provisioned_duration_seconds gauge
kuberay_cluster_provisioned_duration_seconds{name="a\\"x",namespace="default"} 12.25
"""


def test_render_metrics_golden() -> None:
    assert render_metrics(_snapshot()) == GOLDEN


def test_rendered_text_parses_with_the_prometheus_parser() -> None:
    families = {f.name: f for f in text_string_to_metric_families(render_metrics(_snapshot()))}
    hist = families["controller_runtime_reconcile_time_seconds"]
    assert hist.type == "histogram"
    counts = {s.labels.get("le"): s.value for s in hist.samples if s.name.endswith("_bucket")}
    assert counts["0.005"] == 2 and counts["0.1"] == 3 and counts["60"] == 3 and counts["+Inf"] == 4
    info = families["kuberay_cluster_info"].samples
    assert {s.labels["name"] for s in info} == {'a"x', "b"}


def test_optional_families_are_left_out() -> None:
    text = render_metrics(MetricsSnapshot(kube_requests=(("GET", 1),)))
    assert text == (
        "# HELP rest_client_requests_total Number of HTTP requests to the Kubernetes API, by method\n"
        "# TYPE rest_client_requests_total counter\n"
        'rest_client_requests_total{method="GET"} 1\n'
    )
    assert render_metrics(MetricsSnapshot()) == ""
    standby = render_metrics(MetricsSnapshot(leader=LeaderStatus("l", False), clusters=()))
    assert 'leader_election_master_status{name="l"} 0' in standby and "kuberay_" not in standby


@pytest.mark.parametrize(
    ("value", "text"),
    [(3, "3"), (3.0, "3"), (0.005, "0.005"), (61.5, "61.5"), (1e-07, "1e-07"), (float("inf"), "+Inf")],
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


def test_cluster_info_from_a_raycluster() -> None:
    obj: dict[str, Any] = {
        "metadata": {
            "name": "rc",
            "namespace": "ns",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"ray.io/originated-from-crd": "RayService"},
        },
        "status": {
            "conditions": [
                {"type": "HeadPodReady", "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"},
                {
                    "type": "RayClusterProvisioned",
                    "status": "True",
                    "lastTransitionTime": "2026-01-01T00:01:30Z",
                },
            ]
        },
    }
    assert cluster_info(obj) == ClusterInfo("ns", "rc", "RayService", True, 90.0)
    fresh = {"metadata": {"name": "x", "namespace": "d"}}
    assert cluster_info(fresh) == ClusterInfo("d", "x", "None", False, None)
    obj["status"]["conditions"][1]["status"] = "False"
    assert cluster_info(obj) == ClusterInfo("ns", "rc", "RayService", False, None)


def test_readyz() -> None:
    assert readyz(True) == (200, "text/plain; charset=utf-8", "ok")
    status, _, body = readyz(False)
    assert status == 503 and "not synced" in body
    assert readyz(True, "cannot reach the API server for 3s: refused") == (
        503,
        "text/plain; charset=utf-8",
        "cannot reach the API server for 3s: refused",
    )


# (probe ok?, time) -> (reachable, failures, since, transition); threshold 2
REACHABILITY = [
    (True, 1.0, (True, 0, 0.0, None)),
    (False, 2.0, (True, 1, 2.0, None)),  # one failure is not yet lost
    (True, 3.0, (True, 0, 2.0, None)),  # and is forgiven by the next success
    (False, 4.0, (True, 1, 4.0, None)),
    (False, 5.0, (False, 2, 4.0, "lost")),  # the second failure in a row: lost, once
    (False, 6.0, (False, 3, 4.0, None)),
    (False, 9.0, (False, 4, 4.0, None)),  # no second "lost"
    (True, 10.0, (True, 0, 10.0, "restored")),  # restored, once
    (True, 11.0, (True, 0, 10.0, None)),
]


def test_reachability_transitions_once_each_way() -> None:
    state = Reachability()
    for ok, now, (reachable, failures, since, change) in REACHABILITY:
        state, got = observe(state, ok, now, "" if ok else "refused", threshold=2)
        assert (state.reachable, state.failures, state.since, got) == (reachable, failures, since, change), (
            now
        )


# -- the counters behind the metrics ---------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_result_labels() -> None:
    assert [result_of(None), result_of(0), result_of(2.0)] == ["success", "requeue", "requeue_after"]


def test_controller_counts_results_and_times_passes() -> None:
    clock = FakeClock()
    queue = WorkQueue(clock=clock)
    outcomes: dict[str, float | Exception | None] = {
        "a": None,
        "b": 300.0,
        "c": RuntimeError("boom"),
        "d": 0.0,
    }
    durations = {"a": 0.004, "b": 0.07, "c": 2.2, "d": 75.0}

    def reconcile(key: str) -> float | None:
        clock.now += durations[key]
        outcome = outcomes[key]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    ctl = Controller(name="raycluster", queue=queue, reconcile=reconcile, workers=3, clock=clock)
    for key in "abcd":
        queue.add(key)
    queue.add("a")  # de-duplicated while waiting: not an add
    assert queue.stats() == QueueStats(depth=4, adds=4, retries=0)
    for _ in range(4):
        assert ctl.process_one()
    stats = ctl.stats()
    assert dict(stats.results) == {"success": 1, "error": 1, "requeue": 1, "requeue_after": 1}
    assert ctl.errors == 1 and stats.count == 4 and stats.max_concurrent == 3 and stats.active_workers == 0
    assert stats.duration_sum == pytest.approx(77.274)
    le = dict(zip((*RECONCILE_BUCKETS, float("inf")), stats.bucket_counts, strict=True))
    assert (le[0.005], le[0.1], le[2.5], le[float("inf")]) == (1, 1, 1, 1)
    # "d" (requeue, delay 0) went straight back; "c" waits for its backoff; "b" for its 300 s
    assert queue.stats() == QueueStats(depth=1, adds=5, retries=1)


# -- flags -------------------------------------------------------------------------------------------------
def test_endpoint_flags_defaults_and_values() -> None:
    s = load_settings([], environ={})
    assert s.metrics_address == ("", 8080) and s.health_probe_address == ("", 8082) and not s.enable_metrics
    s = load_settings(
        ["--metrics-addr", "127.0.0.1:9090", "--health-probe-bind-address", "0", "--enable-metrics"],
        environ={},
    )
    assert s.metrics_address == ("127.0.0.1", 9090) and s.health_probe_address is None and s.enable_metrics
    s = load_settings(["--metrics-bind-address", "[::1]:0"], environ={})
    assert s.metrics_address == ("::1", 0)


@pytest.mark.parametrize("value", ["8080", "localhost", ":http", ":70000", "a b:1", "http://x:1"])
def test_bad_bind_address_is_one_clear_line(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_bind_address("--metrics-bind-address", value)
    message = str(info.value)
    assert (
        message.startswith(f"--metrics-bind-address {value!r} is not a listen address")
        and "\n" not in message
    )
    assert "or 0 to disable" in message


def test_cli_bad_address_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--health-probe-bind-address", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rayside operator: --health-probe-bind-address 'nope'") and err.count("\n") == 1


def test_deployment_manifest_probes_match_its_flags() -> None:
    path = CRD_DIR.parent / "deployment.yaml"
    deployment, service = yaml.safe_load_all(path.read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    settings = load_settings(container["args"][1:], environ={})  # args[0] is the `operator` subcommand
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert settings.health_probe_address is not None and settings.metrics_address is not None
    assert ports[container["livenessProbe"]["httpGet"]["port"]] == settings.health_probe_address[1]
    assert ports[container["readinessProbe"]["httpGet"]["port"]] == settings.health_probe_address[1]
    assert (
        container["livenessProbe"]["httpGet"]["path"],
        container["readinessProbe"]["httpGet"]["path"],
    ) == (
        "/healthz",
        "/readyz",
    )
    assert ports[service["spec"]["ports"][0]["targetPort"]] == settings.metrics_address[1]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
