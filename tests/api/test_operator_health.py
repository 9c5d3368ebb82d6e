"""The operator's /healthz, /readyz and /metrics endpoints against localkube, over real HTTP.

The operator runs in-process on a thread through `run_operator` (the code path of `rayside operator`,
endpoints included) on free ports; the tests act through the Kubernetes API with the official client
and read the endpoints with `requests` and Prometheus' own text parser.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from localkube.cluster import LocalKube
from localkube.testing import running
from ray_operator.cli import install_crds, run_operator
from ray_operator.runtime.health import EndpointError, probe_routes, start_endpoints
from ray_operator.settings import load_settings
from tests.support import kube
from tests.support.faultproxy import FaultProxy
from tests.support.rayhead import free_port

pytestmark = pytest.mark.api
NS = "default"
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def wait_for(check: Any, what: str, timeout: float = 60.0) -> Any:
    return kube.wait_for(check, timeout, what, interval=0.1)


class Endpoints:
    """`rayside operator` with both endpoints on free 127.0.0.1 ports, on a thread."""

    def __init__(self, lk: LocalKube, *flags: str) -> None:
        self.metrics_port, self.probe_port = free_port(), free_port()
        argv = [
            "--kubeconfig",
            str(lk.kubeconfig),
            "--metrics-bind-address",
            f"127.0.0.1:{self.metrics_port}",
            "--health-probe-bind-address",
            f"127.0.0.1:{self.probe_port}",
            *flags,
        ]
        self.settings = load_settings(argv, environ={})
        self._stop = threading.Event()
        self.exit_code: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.exit_code = run_operator(self.settings, self._stop)

    def start(self) -> Endpoints:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive()

    def probe(self, path: str) -> int | None:
        try:
            return requests.get(f"http://127.0.0.1:{self.probe_port}{path}", timeout=5).status_code
        except requests.ConnectionError:
            return None  # not listening yet

    def metrics(self) -> Series:
        resp = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10)
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith(
            "text/plain; version=0.0.4"
        )
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(resp.text)
            for s in family.samples
        }


def total(series: Series, metric: str, /, **labels: str) -> float:
    """The sum of `metric` over the series whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lbs), v in series.items() if n == metric and want <= lbs)


@pytest.fixture
def lk() -> Iterator[LocalKube]:
    with running(bookmark_interval=1.0, kubelet="simulated", kubelet_options={"ready_delay": 0.2}) as server:
        install_crds(server.kube_client())
        yield server


def raycluster(name: str) -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "ray", "image": "rayproject/ray:2.52.0"}]}}
    group = {"groupName": "wg", "replicas": 1, "minReplicas": 0, "maxReplicas": 3, "template": template}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "rayVersion": "2.52.0",
            "headGroupSpec": {"rayStartParams": {}, "template": template},
            "workerGroupSpecs": [group],
        },
    }


def test_probes_and_metrics_follow_reconciles(lk: LocalKube) -> None:
    op = Endpoints(lk, "--enable-metrics").start()
    try:
        wait_for(lambda: op.probe("/readyz") == 200, "readyz 200 after the caches synced")
        assert op.probe("/healthz") == 200 and op.probe("/nope") == 404
        before = op.metrics()
        assert total(before, "controller_runtime_max_concurrent_reconciles", controller="raycluster") == 1
        assert total(before, "rest_client_requests_total", method="GET") > 0  # the informers' lists
        reconciles = total(before, "controller_runtime_reconcile_total", controller="raycluster")
        client.CustomObjectsApi(lk.api_client()).create_namespaced_custom_object(
            "ray.io", "v1", NS, "rayclusters", raycluster("rc")
        )
        key = frozenset({("name", "rc"), ("namespace", NS)})

        def provisioned() -> Series | None:
            now = op.metrics()
            return now if ("kuberay_cluster_provisioned_duration_seconds", key) in now else None

        after = wait_for(provisioned, "kuberay_cluster_provisioned_duration_seconds for rc")
        assert total(after, "controller_runtime_reconcile_total", controller="raycluster") > reconciles
        assert total(after, "controller_runtime_reconcile_time_seconds_count") >= 1
        assert total(after, "workqueue_adds_total", name="raycluster") >= 1
        assert total(after, "rest_client_requests_total", method="POST") >= 3  # head + worker Pods, Service
        assert total(after, "kuberay_cluster_info", name="rc", owner_kind="None") == 1
        assert total(after, "kuberay_cluster_condition_provisioned", name="rc", condition="true") == 1
        assert not [n for n, _ in after if n.startswith("leader_election")]  # no election: no such series
    finally:
        op.stop()
    assert op.exit_code == 0
    with pytest.raises(requests.ConnectionError):  # the listeners close with the operator
        requests.get(f"http://127.0.0.1:{op.probe_port}/healthz", timeout=5)


def test_not_ready_until_the_caches_sync() -> None:
    with running(
        bookmark_interval=1.0, kubelet="simulated"
    ) as lk:  # no CRDs yet: RayClusters cannot be listed
        op = Endpoints(lk).start()
        try:
            wait_for(lambda: op.probe("/healthz") == 200, "healthz 200 while the process runs")
            assert op.probe("/readyz") == 503
            install_crds(lk.kube_client())
            wait_for(lambda: op.probe("/readyz") == 200, "readyz 200 once the RayCluster cache synced")
        finally:
            op.stop()


def test_standby_replica_is_ready_and_reports_leadership(lk: LocalKube) -> None:
    ops = [Endpoints(lk, "--leader-elect").start(), Endpoints(lk, "--leader-elect").start()]
    try:
        for op in ops:
            wait_for(lambda op=op: op.probe("/readyz") == 200, "readyz 200 on leader and standby")

        def statuses() -> list[float] | None:
            found = [
                total(op.metrics(), "leader_election_master_status", name="ray-operator-leader") for op in ops
            ]
            return found if sorted(found) == [0, 1] else None

        assert sorted(wait_for(statuses, "one leader and one standby")) == [0, 1]
    finally:
        for op in ops:
            op.stop()


def test_equal_addresses_share_one_listener_and_a_taken_port_is_one_line() -> None:
    port = free_port()
    both = start_endpoints(
        [
            ("--metrics-bind-address", ("127.0.0.1", port), {"/metrics": lambda: (200, "text/plain", "m")}),
            ("--health-probe-bind-address", ("127.0.0.1", port), probe_routes(lambda: False)),
        ]
    )
    try:
        assert both.port("/metrics") == both.port("/readyz") == port and len(both.servers) == 1
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text == "m"
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 503
        with pytest.raises(EndpointError) as info:
            start_endpoints([("--metrics-bind-address", ("127.0.0.1", port), {})])
        assert str(info.value).startswith(f"--metrics-bind-address '127.0.0.1:{port}': cannot listen:")
    finally:
        both.close()


def test_cli_exits_1_with_one_line_when_the_port_is_taken(lk: LocalKube) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["operator", "--kubeconfig", str(lk.kubeconfig), "--metrics-bind-address", "0"]
        argv += ["--health-probe-bind-address", f"127.0.0.1:{port}"]
        cmd = [sys.executable, "-m", "rayside.cli", *argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("rayside operator:")]
    assert lines == [f"rayside operator: --health-probe-bind-address '127.0.0.1:{port}': cannot listen: "
                     f"Address already in use"]  # fmt: skip


def _proxied_kubeconfig(lk: LocalKube, proxy: FaultProxy, path: Path) -> Path:
    config = yaml.safe_load(Path(str(lk.kubeconfig)).read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"http://{proxy.address}"
    path.write_text(yaml.safe_dump(config))
    return path


def test_readyz_fails_and_one_warning_while_the_api_server_is_cut_off(
    lk: LocalKube, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = urlsplit(lk.url).hostname, urlsplit(lk.url).port
    proxy = FaultProxy(upstream=(str(host), int(port or 80))).start()
    kubeconfig = _proxied_kubeconfig(lk, proxy, tmp_path / "kubeconfig")
    caplog.set_level(logging.INFO, logger="ray_operator.runtime.health")
    op = Endpoints(lk, "--kubeconfig", str(kubeconfig)).start()

    def records(level: int) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name.endswith(".health") and r.levelno == level]

    def readyz() -> tuple[int, str]:
        resp = requests.get(f"http://127.0.0.1:{op.probe_port}/readyz", timeout=5)
        return resp.status_code, resp.text

    try:
        wait_for(lambda: op.probe("/readyz") == 200, "readyz 200 through the proxy")
        proxy.close_listener()
        proxy.drop_all()
        wait_for(lambda: readyz()[0] == 503 and records(logging.WARNING), "503 and a WARNING", timeout=10)
        assert "cannot reach the API server" in readyz()[1]
        # several more failed probes later, still one WARNING (not one per request)
        wait_for(lambda: re.search(r"for ([6-9]|\d\d+)s", readyz()[1]), "6 s without the API server")
        (warning,) = records(logging.WARNING)
        assert "unreachable" in warning and proxy.address in warning
        assert op.probe("/healthz") == 200  # alive, just not ready
        proxy.open_listener()
        wait_for(lambda: op.probe("/readyz") == 200, "ready again once the API server answers")
        assert len(records(logging.WARNING)) == 1
        assert len([m for m in records(logging.INFO) if "reachable again" in m]) == 1
    finally:
        op.stop()
        proxy.stop()
