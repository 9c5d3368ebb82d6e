"""The operator's settings: flags and environment read once, at startup, into one frozen value.

`load_settings(argv, environ)` parses `rayside operator` flags and KubeRay's operator env knobs
(operator-spec §6) and raises `SettingsError` with a one-line message naming the flag, the value and what
is allowed. Nothing else in the operator reads flags or the environment.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

from ray_operator.builders.settings import BATCH_SCHEDULERS, BatchScheduler, BuildSettings
from ray_operator.features import FeatureGateError, FeatureGates


class SettingsError(ValueError):
    """A bad flag or environment value (a user mistake: reported in one line, exit code 2)."""


BindAddress = tuple[str, int]  # (host, port); host "" = every interface, port 0 = any free port
_ADDRESS = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]*)):(?P<port>[0-9]{1,5})$")


def parse_bind_address(flag: str, value: str) -> BindAddress | None:
    """`:8080`, `127.0.0.1:8080`, `[::1]:8080` -> (host, port); `0` or empty -> None (endpoint disabled),
    as controller-runtime's bind-address flags. Raises SettingsError naming the flag and the value."""
    value = value.strip()
    if value in ("", "0"):
        return None
    match = _ADDRESS.match(value)
    port = int(match["port"]) if match else -1
    if match is None or port > 65535:
        raise SettingsError(
            f"{flag} {value!r} is not a listen address; use HOST:PORT or :PORT (e.g. :8080), or 0 to disable"
        )
    return (match["v6"] or match["host"] or "", port)


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()  # () = all namespaces
    reconcile_concurrency: int = 1
    kube_qps: float = 100.0
    kube_burst: int = 200
    kubeconfig: str | None = None
    context: str | None = None
    leader_elect: bool = False
    leader_election_namespace: str = "default"
    leader_election_id: str = "ray-operator-leader"
    identity: str = ""
    install_crds: bool = False
    requeue_seconds: float = 300.0  # RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV
    short_requeue_seconds: float = 2.0
    status_interval: float = 5.0  # min seconds between writes that only change ready/available counters
    status_max_defer: float = 10.0  # status writes yield to object writes for at most this long
    max_creates_per_pass: int = 500  # Pod creates one RayCluster pass may plan; more requeue the cluster
    write_parallelism: int = 16  # Pod creates/deletes of one pass in flight at once (all passes share them)
    pod_event_delay: float = 0.5  # Pod events queue their cluster after this delay, coalescing bursts
    enable_random_pod_delete: bool = False  # ENABLE_RANDOM_POD_DELETE
    enable_gcs_ft_redis_cleanup: bool = True  # ENABLE_GCS_FT_REDIS_CLEANUP (anything but "false" = on)
    log_level: str = "INFO"
    metrics_address: BindAddress | None = ("", 8080)  # None = disabled ("0")
    health_probe_address: BindAddress | None = ("", 8082)
    enable_metrics: bool = False  # KubeRay's --enable-metrics: the kuberay_cluster_* metrics
    build: BuildSettings = field(default_factory=BuildSettings)
    # -- RayJob controller (see docs/operator.md, RayJob) --
    rayjob_requeue_seconds: float = 3.0  # --rayjob-requeue-seconds: pass period while a RayJob is live
    rayjob_transition_grace_seconds: float = 300.0  # RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS
    rayjob_status_check_timeout_seconds: float = 300.0  # RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS
    delete_rayjob_after_finish: bool = False  # DELETE_RAYJOB_CR_AFTER_JOB_FINISHES

    @property
    def gates(self) -> FeatureGates:
        return self.build.feature_gates


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SettingsError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rayside operator", description="Run the ray.io/v1 RayCluster operator.")
    p.add_argument(
        "--namespace",
        "--watch-namespace",
        action="append",
        default=[],
        metavar="NS",
        help="namespace to watch (repeat or comma-separate; default: all)",
    )
    p.add_argument("--reconcile-concurrency", type=int, default=1, metavar="N")
    p.add_argument("--kube-qps", "--qps", type=float, default=100.0, metavar="Q")
    p.add_argument("--kube-burst", "--burst", type=int, default=200, metavar="B")
    p.add_argument(
        "--max-creates-per-pass",
        type=int,
        default=500,
        metavar="N",
        help="Pods one RayCluster pass creates at most; the rest follow in later passes (default 500)",
    )
    p.add_argument("--feature-gates", default="", metavar="A=true,B=false")
    p.add_argument(
        "--batch-scheduler", default="", metavar="NAME", help=f"one of {', '.join(BATCH_SCHEDULERS)}"
    )
    p.add_argument("--leader-elect", "--enable-leader-election", action="store_true")
    p.add_argument("--leader-election-namespace", default=None, metavar="NS")
    p.add_argument("--kubeconfig", default=None, metavar="PATH")
    p.add_argument("--context", default=None)
    p.add_argument("--install-crds", action="store_true", help="create or update the ray.io CRDs on startup")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "--metrics-bind-address",
        "--metrics-addr",
        default=":8080",
        metavar="ADDR",
        help="serve Prometheus /metrics on HOST:PORT (default :8080; 0 disables)",
    )
    p.add_argument(
        "--health-probe-bind-address",
        default=":8082",
        metavar="ADDR",
        help="serve /healthz and /readyz on HOST:PORT (default :8082; 0 disables)",
    )
    p.add_argument("--enable-metrics", action="store_true", help="also export the kuberay_cluster_* metrics")
    _rayjob_flags(p)
    return p


# -- RayJob controller flags and env knobs -------------------------------------------------------------
DEFAULT_SUBMITTER_IMAGE = "rayside/submitter"
"""The image `Dockerfile.submitter` builds (`docker build -f Dockerfile.submitter -t rayside/submitter .`)."""


def _rayjob_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--submitter-image",
        default=DEFAULT_SUBMITTER_IMAGE,
        metavar="IMAGE",
        help="image of the RayJob submitter (K8sJobMode Job, SidecarMode container) running "
        f"`python3.11 -m submitter` (default {DEFAULT_SUBMITTER_IMAGE}); empty: KubeRay's `ray job submit` "
        "script in the Ray head image",
    )
    p.add_argument("--rayjob-requeue-seconds", type=float, default=3.0, metavar="S", help=argparse.SUPPRESS)


def _env_seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"environment {name}={raw!r} must be a number of seconds") from None
    _positive(f"environment {name}", value)
    return value


def _with_rayjob(
    settings: OperatorSettings, args: argparse.Namespace, environ: Mapping[str, str]
) -> OperatorSettings:
    """`settings` with the RayJob controller's flags and env knobs."""
    _positive("--rayjob-requeue-seconds", args.rayjob_requeue_seconds)
    return replace(
        settings,
        build=replace(settings.build, submitter_image=args.submitter_image.strip() or None),
        rayjob_requeue_seconds=args.rayjob_requeue_seconds,
        rayjob_transition_grace_seconds=_env_seconds(
            environ, "RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS", 300.0
        ),
        rayjob_status_check_timeout_seconds=_env_seconds(
            environ, "RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS", 300.0
        ),
        delete_rayjob_after_finish=_bool_env(environ, "DELETE_RAYJOB_CR_AFTER_JOB_FINISHES", False),
    )


def _bool_env(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise SettingsError(f"environment {name}={raw!r} must be true or false")


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise SettingsError(f"{name} {value!r} must be greater than 0")


def _build_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> BuildSettings:
    try:
        gates = FeatureGates.parse(args.feature_gates)
    except FeatureGateError as exc:
        raise SettingsError(str(exc)) from None
    scheduler = args.batch_scheduler or None
    if scheduler is not None and scheduler not in BATCH_SCHEDULERS:
        raise SettingsError(
            f"--batch-scheduler {scheduler!r} is not supported; allowed: {', '.join(BATCH_SCHEDULERS)}"
        )
    return BuildSettings(
        cluster_domain=environ.get("CLUSTER_DOMAIN") or "cluster.local",
        feature_gates=gates,
        batch_scheduler=cast(BatchScheduler | None, scheduler),
        enable_init_container_injection=_bool_env(environ, "ENABLE_INIT_CONTAINER_INJECTION", True),
        enable_probes_injection=_bool_env(environ, "ENABLE_PROBES_INJECTION", True),
        enable_login_shell=_bool_env(environ, "ENABLE_LOGIN_SHELL", False),
        enable_head_cluster_ip_service=_bool_env(environ, "ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE", False),
    )


def load_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> OperatorSettings:
    """Parse flags + env into OperatorSettings; raises SettingsError on bad input."""
    environ = os.environ if environ is None else environ
    args = parser().parse_args(list(argv))
    _positive("--reconcile-concurrency", args.reconcile_concurrency)
    _positive("--kube-qps", args.kube_qps)
    _positive("--kube-burst", args.kube_burst)
    _positive("--max-creates-per-pass", args.max_creates_per_pass)
    namespaces = tuple(ns.strip() for item in args.namespace for ns in item.split(",") if ns.strip())
    requeue_raw = environ.get("RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV") or "300"
    try:
        requeue = float(requeue_raw)
    except ValueError:
        raise SettingsError(
            f"environment RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV={requeue_raw!r} must be a number"
        ) from None
    _positive("RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV", requeue)
    pod_ns = environ.get("POD_NAMESPACE") or (namespaces[0] if namespaces else "default")
    settings = OperatorSettings(
        namespaces=namespaces,
        reconcile_concurrency=args.reconcile_concurrency,
        kube_qps=args.kube_qps,
        kube_burst=args.kube_burst,
        max_creates_per_pass=args.max_creates_per_pass,
        kubeconfig=args.kubeconfig,
        context=args.context,
        leader_elect=args.leader_elect,
        leader_election_namespace=args.leader_election_namespace or pod_ns,
        identity=environ.get("POD_NAME") or f"{os.uname().nodename}-{os.getpid()}-{secrets.token_hex(3)}",
        install_crds=args.install_crds,
        requeue_seconds=requeue,
        enable_random_pod_delete=_bool_env(environ, "ENABLE_RANDOM_POD_DELETE", False),
        enable_gcs_ft_redis_cleanup=(environ.get("ENABLE_GCS_FT_REDIS_CLEANUP") or "").lower() != "false",
        log_level=args.log_level,
        metrics_address=parse_bind_address("--metrics-bind-address", args.metrics_bind_address),
        health_probe_address=parse_bind_address(
            "--health-probe-bind-address", args.health_probe_bind_address
        ),
        enable_metrics=args.enable_metrics,
        build=_build_settings(args, environ),
    )
    return _with_rayjob(settings, args, environ)
