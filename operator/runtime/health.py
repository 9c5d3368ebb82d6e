"""The operator's health probes and Prometheus metrics, served over HTTP by the stdlib on a thread.

Like a controller-runtime manager: `/healthz` answers 200 while the process runs; `/readyz` answers 200
once the informer caches have synced (standby replicas waiting for leadership are ready too) and 503
before, and 503 while `ApiServerMonitor` cannot reach the API server (it logs one WARNING when it loses
it and one line when it is back); `/metrics` is Prometheus text format 0.0.4. The metrics text is
rendered by the pure `render_metrics(snapshot)` from a `MetricsSnapshot`, which `collect()` reads from the
controllers, the Kubernetes client's request counts, the leader elector and (with `--enable-metrics`) the
RayCluster cache.
Names follow controller-runtime (`controller_runtime_*`, `workqueue_*`, `rest_client_requests_total`),
client-go (`leader_election_master_status`) and KubeRay (`kuberay_cluster_*`).
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ray_operator.runtime.leader import LeaderElector
from rayside.kubeclient import KubeClient, KubeError, ServerError, TransportError
from rayside.objects import JSON, labels_of, name_of, namespace_of
from rayside.runtime.controller import RECONCILE_BUCKETS, Controller, ReconcileStats
from rayside.runtime.workqueue import QueueStats

log = logging.getLogger(__name__)


BindAddress = tuple[str, int]
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
Response = tuple[int, str, str]  # (HTTP status, content type, body)
Route = Callable[[], Response]
_ORIGINATED_FROM_CRD = "ray.io/originated-from-crd"
_PROVISIONED = "RayClusterProvisioned"


# -- the snapshot -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterInfo:
    """What the kuberay_cluster_* metrics say about one RayCluster."""

    namespace: str
    name: str
    owner_kind: str  # RayJob | RayService | None (KubeRay's spelling for "created directly")
    provisioned: bool
    provisioned_seconds: float | None  # creation -> RayClusterProvisioned=True; None while not provisioned


@dataclass(frozen=True)
class LeaderStatus:
    name: str  # the Lease name
    leading: bool


@dataclass(frozen=True)
class MetricsSnapshot:
    """Everything `/metrics` shows, read at one moment."""

    controllers: tuple[tuple[ReconcileStats, QueueStats], ...] = ()
    kube_requests: tuple[tuple[str, int], ...] = ()  # (HTTP method, requests sent)
    leader: LeaderStatus | None = None  # None: leader election is off
    clusters: tuple[ClusterInfo, ...] | None = None  # None: --enable-metrics is off


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def cluster_info(obj: JSON) -> ClusterInfo:
    """The kuberay_cluster_* facts of one RayCluster object (pure)."""
    meta = obj.get("metadata") or {}
    conditions = (obj.get("status") or {}).get("conditions") or []
    cond = next((x for x in conditions if x.get("type") == _PROVISIONED), None)
    provisioned = cond is not None and cond.get("status") == "True"
    seconds = None
    if cond is not None and provisioned:
        created, at = _timestamp(meta.get("creationTimestamp")), _timestamp(cond.get("lastTransitionTime"))
        if created is not None and at is not None:
            seconds = max(0.0, (at - created).total_seconds())
    return ClusterInfo(
        namespace=namespace_of(obj),
        name=name_of(obj),
        owner_kind=str(labels_of(obj).get(_ORIGINATED_FROM_CRD) or "None"),
        provisioned=provisioned,
        provisioned_seconds=seconds,
    )


def collect(
    *,
    controllers: Sequence[Controller],
    request_counts: Mapping[str, int],
    leader: LeaderElector | None,
    clusters: Iterable[JSON] | None,
) -> MetricsSnapshot:
    """Read the live counters into a snapshot (each source is read under its own lock, briefly)."""
    return MetricsSnapshot(
        controllers=tuple((ctl.stats(), ctl.queue.stats()) for ctl in controllers),
        kube_requests=tuple(sorted(request_counts.items())),
        leader=None if leader is None else LeaderStatus(leader.name, leader.leading.is_set()),
        clusters=None if clusters is None else tuple(cluster_info(o) for o in clusters),
    )


# -- the text format (pure) ---------------------------------------------------------------------------------
Sample = tuple[str, Mapping[str, str], float]  # (name suffix, labels, value)


def format_value(value: float) -> str:
    """A sample value or `le` bound as Prometheus writes it: 3, 0.005, +Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_: str, samples: Iterable[Sample]) -> list[str]:
    rows = [
        f"{name}{suffix}"
        + ("{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}" if labels else "")
        + f" {format_value(value)}"
        for suffix, labels, value in samples
    ]
    if not rows:
        return []
    return [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", *rows]


def _histogram(stats: ReconcileStats) -> list[Sample]:
    labels = {"controller": stats.controller}
    samples: list[Sample] = []
    total = 0
    for bound, n in zip((*RECONCILE_BUCKETS, math.inf), stats.bucket_counts, strict=True):
        total += n
        samples.append(("_bucket", {**labels, "le": format_value(bound)}, total))
    return [*samples, ("_sum", labels, stats.duration_sum), ("_count", labels, total)]


def _controller_families(snapshot: MetricsSnapshot) -> list[str]:
    recs = [r for r, _ in snapshot.controllers]
    queues = [({"controller": r.controller, "name": r.controller}, q) for r, q in snapshot.controllers]
    return [
        *_family(
            "controller_runtime_reconcile_total",
            "counter",
            "Total number of reconciliations per controller",
            [("", {"controller": r.controller, "result": res}, n) for r in recs for res, n in r.results],
        ),
        *_family(
            "controller_runtime_reconcile_errors_total",
            "counter",
            "Total number of reconciliation errors per controller",
            [("", {"controller": r.controller}, dict(r.results).get("error", 0)) for r in recs],
        ),
        *_family(
            "controller_runtime_reconcile_time_seconds",
            "histogram",
            "Length of time per reconciliation per controller",
            [s for r in recs for s in _histogram(r)],
        ),
        *_family(
            "controller_runtime_max_concurrent_reconciles",
            "gauge",
            "Maximum number of concurrent reconciles per controller",
            [("", {"controller": r.controller}, r.max_concurrent) for r in recs],
        ),
        *_family(
            "controller_runtime_active_workers",
            "gauge",
            "Number of currently used workers per controller",
            [("", {"controller": r.controller}, r.active_workers) for r in recs],
        ),
        *_family(
            "workqueue_depth", "gauge", "Current depth of workqueue", [("", lb, q.depth) for lb, q in queues]
        ),
        *_family(
            "workqueue_adds_total",
            "counter",
            "Total number of adds handled by workqueue",
            [("", lb, q.adds) for lb, q in queues],
        ),
        *_family(
            "workqueue_retries_total",
            "counter",
            "Total number of retries handled by workqueue",
            [("", lb, q.retries) for lb, q in queues],
        ),
    ]


def _cluster_families(clusters: Sequence[ClusterInfo]) -> list[str]:
    ordered = sorted(clusters, key=lambda ci: (ci.namespace, ci.name))
    return [
        *_family(
            "kuberay_cluster_info",
            "gauge",
            "Metadata information about RayCluster custom resources",
            [
                ("", {"name": ci.name, "namespace": ci.namespace, "owner_kind": ci.owner_kind}, 1)
                for ci in ordered
            ],
        ),
        *_family(
            "kuberay_cluster_condition_provisioned",
            "gauge",
            "Indicates whether the RayCluster is provisioned",
            [
                (
                    "",
                    {"name": ci.name, "namespace": ci.namespace, "condition": str(ci.provisioned).lower()},
                    1,
                )
                for ci in ordered
            ],
        ),
        *_family(
            "kuberay_cluster_provisioned_duration_seconds",
            "gauge",
            "Seconds from creation to RayClusterProvisioned=True",
            [
                ("", {"name": ci.name, "namespace": ci.namespace}, ci.provisioned_seconds)
                for ci in ordered
                if ci.provisioned_seconds is not None
            ],
        ),
    ]


def render_metrics(snapshot: MetricsSnapshot) -> str:
    """The Prometheus text exposition (format 0.0.4) of `snapshot` (pure; empty families are left out)."""
    lines = _controller_families(snapshot)
    lines += _family(
        "rest_client_requests_total",
        "counter",
        "Number of HTTP requests to the Kubernetes API, by method",
        [("", {"method": method}, n) for method, n in snapshot.kube_requests],
    )
    if snapshot.leader is not None:
        lines += _family(
            "leader_election_master_status",
            "gauge",
            "Whether this replica holds the leader Lease: 1 leader, 0 standby",
            [("", {"name": snapshot.leader.name}, 1 if snapshot.leader.leading else 0)],
        )
    if snapshot.clusters is not None:
        lines += _cluster_families(snapshot.clusters)
    return "\n".join(lines) + "\n" if lines else ""


def readyz(synced: bool, api_problem: str | None = None) -> Response:
    """The readiness answer (pure): ready once the informer caches have synced, while the API server
    answers (`api_problem` says why it does not)."""
    if api_problem is not None:
        return 503, TEXT, api_problem
    if synced:
        return 200, TEXT, "ok"
    return 503, TEXT, "informer caches have not synced yet"


def probe_routes(
    synced: Callable[[], bool], api_problem: Callable[[], str | None] = lambda: None
) -> dict[str, Route]:
    return {"/healthz": lambda: (200, TEXT, "ok"), "/readyz": lambda: readyz(synced(), api_problem())}


def metrics_routes(snapshot: Callable[[], MetricsSnapshot]) -> dict[str, Route]:
    return {"/metrics": lambda: (200, METRICS_CONTENT_TYPE, render_metrics(snapshot()))}


# -- API server reachability --------------------------------------------------------------------------
@dataclass(frozen=True)
class Reachability:
    """What the operator knows about the API server: consecutive failed probes and since when."""

    reachable: bool = True
    failures: int = 0
    since: float = 0.0  # first failure of the current run, or when it was reached again
    reason: str = ""


def observe(
    state: Reachability, ok: bool, now: float, reason: str = "", *, threshold: int = 2
) -> tuple[Reachability, str | None]:
    """The next state after one probe (pure), and the transition: "lost", "restored" or None. The API server
    counts as lost after `threshold` consecutive failures, as restored on the first success."""
    if ok:
        if state.reachable:
            return (state if state.failures == 0 else Reachability(since=state.since)), None
        return Reachability(since=now), "restored"
    since = state.since if state.failures else now
    failures = state.failures + 1
    lost = state.reachable and failures >= threshold
    nxt = Reachability(reachable=state.reachable and not lost, failures=failures, since=since, reason=reason)
    return nxt, ("lost" if lost else None)


class ApiServerMonitor:
    """Probes the API server (`GET /version`, one attempt, short timeout) every `interval` seconds on a
    daemon thread. After `threshold` failures in a row it logs one WARNING and `problem()` makes /readyz
    fail; the first answer again logs once and makes it ready. Informers and workers retry quietly on
    their own, so this is the one place that says the operator is blind."""

    def __init__(
        self,
        client: KubeClient,
        *,
        interval: float = 2.0,
        threshold: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        probe = client.prepaid()  # never waits behind object writes for a QPS token
        probe.retries, probe.timeout = 1, max(0.5, min(interval, 5.0))
        self._client = probe
        self._interval = interval
        self._threshold = threshold
        self._clock = clock
        self._lock = threading.Lock()
        self._state = Reachability(since=clock())
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> Reachability:
        with self._lock:
            return self._state

    def problem(self) -> str | None:
        """Why the API server counts as unreachable, or None while it answers."""
        state = self.state
        if state.reachable:
            return None
        return f"cannot reach the API server for {self._clock() - state.since:.0f}s: {state.reason}"

    def probe_once(self) -> None:
        try:
            self._client.get("/version")
            ok, reason = True, ""
        except (ServerError, TransportError, OSError) as exc:
            ok, reason = False, _one_line(exc)
        except KubeError:  # any other HTTP answer (401, 403, 404...): the server is there
            ok, reason = True, ""
        now = self._clock()
        with self._lock:
            self._state, change = observe(self._state, ok, now, reason, threshold=self._threshold)
            state = self._state
        if change == "lost":
            log.warning(
                "API server %s unreachable (%d failed probes in %.0fs: %s); /readyz fails until it answers",
                self._client.host,
                state.failures,
                now - state.since,
                state.reason,
            )
        elif change == "restored":
            log.info("API server %s reachable again", self._client.host)

    def start(self, stop: threading.Event) -> ApiServerMonitor:
        def run() -> None:
            while not stop.wait(self._interval):
                self.probe_once()

        self._thread = threading.Thread(target=run, name="apiserver-monitor", daemon=True)
        self._thread.start()
        return self


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


# -- serving ------------------------------------------------------------------------------------------------
class EndpointError(RuntimeError):
    """An endpoint could not listen on its address (one line, naming the flag and the address)."""


def _handler(routes: Mapping[str, Route]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(urlsplit(self.path).path)
            try:
                status, content_type, body = route() if route else (404, TEXT, "404 page not found\n")
            except Exception:
                log.exception("endpoint %s failed", self.path)
                status, content_type, body = 500, TEXT, "internal error\n"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("endpoint %s: " + format, self.client_address[0], *args)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class EndpointServer:
    """One HTTP listener serving `routes` (path -> handler) on a daemon thread."""

    def __init__(self, address: BindAddress, routes: Mapping[str, Route]) -> None:
        server_class = _Server6 if ":" in address[0] else _Server
        self._httpd = server_class(address, _handler(dict(routes)))
        self.paths = tuple(sorted(routes))
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="endpoints", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> EndpointServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()


@dataclass
class Endpoints:
    """The running listeners; `port(path)` tells where a path is served (None if disabled)."""

    servers: list[EndpointServer]

    def port(self, path: str) -> int | None:
        return next((s.port for s in self.servers if path in s.paths), None)

    def close(self) -> None:
        for server in self.servers:
            server.close()


def start_endpoints(bindings: Sequence[tuple[str, BindAddress | None, Mapping[str, Route]]]) -> Endpoints:
    """Listen for each (flag, address, routes); a None address is disabled, equal fixed addresses share one
    listener. Raises EndpointError (everything already started is closed) when an address cannot be bound."""
    merged: dict[BindAddress, tuple[str, dict[str, Route]]] = {}
    separate: list[tuple[str, BindAddress, dict[str, Route]]] = []
    for flag, address, routes in bindings:
        if address is None:
            continue
        if address[1] != 0 and address in merged:
            merged[address][1].update(routes)
        elif address[1] != 0:
            merged[address] = (flag, dict(routes))
        else:
            separate.append((flag, address, dict(routes)))
    started = Endpoints([])
    for flag, address, routes in [(f, a, r) for a, (f, r) in merged.items()] + separate:
        try:
            started.servers.append(EndpointServer(address, routes).start())
        except OSError as exc:
            started.close()
            host = f"[{address[0]}]" if ":" in address[0] else address[0]
            shown = f"{host}:{address[1]}"
            raise EndpointError(f"{flag} {shown!r}: cannot listen: {exc.strerror or exc}") from None
    return started
