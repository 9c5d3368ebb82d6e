"""Autoscaler provider benchmark: API requests, bytes and latency per update, rayside's provider against Ray
2.60's built-in KubeRay provider, over the same cluster states on localkube (https, token auth, simulated
kubelet, in a child process).

Both are driven as Ray's v1 autoscaler drives a `BatchingNodeProvider` in one update: `non_terminated_nodes`,
`safe_to_scale`, then (scenario) `create_node` / `terminate_node`, then `post_process` (which writes).
Ray's `KubeRayNodeProvider` authenticates as in a pod (token file, CA, KUBERNETES_SERVICE_HOST/PORT);
rayside's `RaysideNodeProvider` uses the kubeconfig. Every HTTP request either sends is counted at the
`requests` transport (method, request and response body bytes). Scenarios per cluster of N Running worker
pods: `idle` (nothing to do), `launch` (+1 worker: demand -> replicas patch), `terminate` (one worker ->
workersToDelete patch). The CR is put back after each update (not counted). Latency is the median of
`--repeat` updates; "demand->patch" is the time from the start of a launch update to its PATCH answered.

    python benchmarks/autoscaler_update.py --sizes 10 100 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

from ray_operator.cli import install_crds  # noqa: E402
from rayside.kubeclient import KubeClient  # noqa: E402
from rayside.objects import JSON, PODS, RAYCLUSTERS  # noqa: E402

NS, NAME, GROUP = "default", "rc", "cpu"
CONTAINER = [{"name": "ray", "image": "rayproject/ray:2.60.0", "resources": {"limits": {"cpu": "1"}}}]
SCENARIOS = ("idle", "launch", "terminate")


@dataclass
class Traffic:
    """Requests seen at the transport while `on` is set (thread-safe)."""

    on: bool = False
    requests: int = 0
    sent: int = 0
    received: int = 0
    patch_done: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.requests = self.sent = self.received = 0
            self.patch_done = 0.0


def count_transport(traffic: Traffic) -> None:
    """Wrap requests' HTTPAdapter.send, the one transport both providers use, to count what crosses it."""
    send = requests.adapters.HTTPAdapter.send

    def counted(self: Any, request: Any, *args: Any, **kw: Any) -> Any:
        response = send(self, request, *args, **kw)
        if traffic.on:
            body = request.body or b""
            with traffic.lock:
                traffic.requests += 1
                traffic.sent += len(body if isinstance(body, bytes) else str(body).encode())
                traffic.received += len(response.content)
                if request.method == "PATCH":
                    traffic.patch_done = time.perf_counter()
        return response

    requests.adapters.HTTPAdapter.send = counted  # type: ignore[method-assign]


def make_cluster(kc: KubeClient, workers: int) -> None:
    group = {
        "groupName": GROUP,
        "replicas": workers,
        "minReplicas": 0,
        "maxReplicas": workers + 10,
        "rayStartParams": {},
        "template": {"spec": {"containers": CONTAINER}},
    }
    head = {"rayStartParams": {"num-cpus": "0"}, "template": {"spec": {"containers": CONTAINER}}}
    body = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {"headGroupSpec": head, "workerGroupSpecs": [group]},
    }
    kc.create(RAYCLUSTERS.path(NS), body)
    pods = [(f"{NAME}-head", "headgroup", "head")] + [
        (f"{NAME}-w{i}", GROUP, "worker") for i in range(workers)
    ]
    for name, grp, kind in pods:
        labels = {"ray.io/cluster": NAME, "ray.io/node-type": kind, "ray.io/group": grp}
        kc.create(
            PODS.path(NS), {"metadata": {"name": name, "labels": labels}, "spec": {"containers": CONTAINER}}
        )


def wait_running(kc: KubeClient, count: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        items = kc.get(PODS.path(NS), params={"labelSelector": f"ray.io/cluster={NAME}"})["items"]
        if sum((p.get("status") or {}).get("phase") == "Running" for p in items) >= count:
            return
        time.sleep(0.5)
    raise SystemExit(f"pods not Running after 300 s (wanted {count})")


def restore(kc: KubeClient, workers: int) -> None:
    group = {"replicas": workers, "scaleStrategy": {"workersToDelete": []}}
    spec = kc.get(RAYCLUSTERS.path(NS, NAME))["spec"]
    spec["workerGroupSpecs"][0].update(group)
    kc.patch(RAYCLUSTERS.path(NS, NAME), {"spec": {"workerGroupSpecs": spec["workerGroupSpecs"]}}, "merge")


def provider_config(kubeconfig: str | None = None) -> JSON:
    config: JSON = {
        "namespace": NS,
        "disable_node_updaters": True,
        "disable_launch_config_check": True,
        "foreground_node_launch": True,
        "worker_liveness_check": False,
    }
    if kubeconfig:
        config["kubeconfig"] = kubeconfig
    return config


@dataclass(frozen=True)
class Server:
    """A localkube child process: its kubeconfig, CA file and token file."""

    kubeconfig: Path
    ca: Path
    token: Path


def ray_provider(server: Server) -> Any:
    """Ray's KubeRayNodeProvider with in-pod credentials pointing at localkube (set before its import)."""
    os.environ.update(
        KUBERNETES_SERVICE_HOST="127.0.0.1",
        KUBERNETES_SERVICE_PORT_HTTPS=str(PORT),
        RAY_KUBERAY_CA_CERT_PATH=str(server.ca),
        RAY_HEAD_POD_NAME=f"{NAME}-head",
    )
    from ray.autoscaler._private.kuberay import node_provider

    node_provider.IN_CLUSTER_TOKEN_PATH = str(server.token)
    node_provider.KUBERAY_CA_CERT_PATH = os.environ["RAY_KUBERAY_CA_CERT_PATH"]
    node_provider.RAY_HEAD_POD_NAME = os.environ["RAY_HEAD_POD_NAME"]
    logging.getLogger("ray").setLevel(logging.ERROR)  # Ray logs each list and patch at INFO
    return node_provider.KubeRayNodeProvider(provider_config(), NAME)


def rayside_provider(server: Server) -> Any:
    from autoscaler_provider.provider import RaysideNodeProvider
    from autoscaler_provider.scaler import Scaler

    client = KubeClient.from_config(kubeconfig=str(server.kubeconfig))
    scaler = Scaler(client, NAME, NS, busy_nodes=frozenset)
    return RaysideNodeProvider(provider_config(str(server.kubeconfig)), NAME, scaler=scaler)


def one_update(provider: Any, scenario: str, victim: str) -> None:
    """One v1 autoscaler update as StandardAutoscaler drives a BatchingNodeProvider."""
    provider.non_terminated_nodes({})
    if not provider.safe_to_scale():
        raise SystemExit(f"{type(provider).__name__}: not safe to scale")
    if scenario == "launch":
        provider.create_node({}, {"ray-user-node-type": GROUP}, 1)
    elif scenario == "terminate":
        provider.terminate_node(victim)
    provider.post_process()


@dataclass
class Result:
    requests: float
    sent: float
    received: float
    latency_ms: float
    to_patch_ms: float


def measure(
    provider: Any, scenario: str, traffic: Traffic, repeat: int, reset: Callable[[], None], victim: str
) -> Result:
    counts, latencies, to_patch = [], [], []
    for _ in range(repeat):
        traffic.reset()
        traffic.on = True
        start = time.perf_counter()
        one_update(provider, scenario, victim)
        end = time.perf_counter()
        traffic.on = False
        counts.append((traffic.requests, traffic.sent, traffic.received))
        latencies.append((end - start) * 1000)
        if traffic.patch_done:
            to_patch.append((traffic.patch_done - start) * 1000)
        reset()
    reqs, sent, received = (statistics.mean(c[i] for c in counts) for i in range(3))
    return Result(reqs, sent, received, statistics.median(latencies), statistics.median(to_patch or [0.0]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Ray's provider fixes the API server address when its module is imported: every size uses the same port.
PORT = free_port()


@contextlib.contextmanager
def localkube(tmp: Path) -> Iterator[Server]:
    """`python -m localkube` (https, token, simulated kubelet) in a child process, so the server does not
    share this process's GIL with the providers being measured."""
    token = tmp / "token"
    token.write_text("bench-token")  # read as is by Ray: no newline
    argv = [sys.executable, "-m", "localkube", "--port", str(PORT), "--state-dir", str(tmp / "state")]
    argv += ["--kubelet", "simulated", "--https", "--token-file", str(token)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=tmp)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("kubeconfig: "):
                kubeconfig = Path(line.split(": ", 1)[1].strip())
                yield Server(kubeconfig, tmp / "state" / "pki" / "ca.crt", token)
                break
        else:
            raise SystemExit(f"localkube exited with {proc.wait()} before it was ready")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def cluster(workers: int) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="autoscaler-bench-") as tmp, localkube(Path(tmp)) as server:
        kc = KubeClient.from_config(kubeconfig=str(server.kubeconfig), qps=1000, burst=1000)
        install_crds(kc)
        make_cluster(kc, workers)
        wait_running(kc, workers + 1)
        yield server


def run_size(workers: int, repeat: int, traffic: Traffic) -> dict[tuple[str, str], Result]:
    out: dict[tuple[str, str], Result] = {}
    with cluster(workers) as server:
        kc = KubeClient.from_config(kubeconfig=str(server.kubeconfig))
        providers = {"ray": ray_provider(server), "rayside": rayside_provider(server)}
        for name, provider in providers.items():
            one_update(provider, "idle", "")  # warm up connections and imports
            for scenario in SCENARIOS:
                out[(name, scenario)] = measure(
                    provider, scenario, traffic, repeat, lambda: restore(kc, workers), f"{NAME}-w0"
                )
    return out


def fmt_bytes(n: float) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.2f} MiB"


def table(results: dict[int, dict[tuple[str, str], Result]]) -> str:
    head = "| workers | update | requests (Ray / rayside) | bytes received (Ray / rayside, ratio) |"
    head += " latency ms (Ray / rayside, ratio) | demand->patch ms (Ray / rayside) |"
    lines = [head, "|---|---|---|---|---|---|"]
    for workers, res in results.items():
        for scenario in SCENARIOS:
            r, s = res[("ray", scenario)], res[("rayside", scenario)]
            patch = f"{r.to_patch_ms:.1f} / {s.to_patch_ms:.1f}" if scenario != "idle" else "-"
            ratio = r.received / max(s.received, 1)
            lines.append(
                f"| {workers:,} | {scenario} | {r.requests:g} / {s.requests:g} | "
                f"{fmt_bytes(r.received)} / {fmt_bytes(s.received)} ({ratio:.2f}x) | "
                f"{r.latency_ms:.1f} / {s.latency_ms:.1f} ({r.latency_ms / max(s.latency_ms, 1e-9):.2f}x) | "
                f"{patch} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], help="worker pods")
    parser.add_argument("--repeat", type=int, default=5, help="updates per scenario (median latency)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("ray").setLevel(logging.ERROR)
    traffic = Traffic()
    count_transport(traffic)
    results = {n: run_size(n, args.repeat, traffic) for n in args.sizes}
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
