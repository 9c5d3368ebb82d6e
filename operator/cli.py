"""`rayside operator` (run the RayCluster and RayJob controllers) and `rayside get token` (print a
cluster's Ray token).

Exit codes, both commands: 0 success / graceful stop; 1 runtime failure (API server unreachable, object
missing, leadership lost, caches never synced, a metrics/probe address that cannot be bound); 2 usage
error (bad flag or value; one-line message).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

import yaml
from requests.adapters import HTTPAdapter

from ray_operator.crdgen import CRD_DIR
from ray_operator.runtime import health
from ray_operator.settings import OperatorSettings, SettingsError, load_settings
from rayside.kubeclient import AlreadyExists, KubeClient, KubeError, NotFound
from rayside.objects import CRDS, RAYCLUSTERS, SECRETS

if TYPE_CHECKING:
    from ray_operator.raycluster.assembly import RayClusterOperator
    from ray_operator.rayservice.assembly import RayServiceController

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("ray_operator")


class ConfigError(Exception):
    """The kubeconfig (or in-cluster config) cannot be used: a user error, reported in one line, exit 2."""


def _config_problem(kubeconfig: str | None, context: str | None, exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError) or (kubeconfig and not os.path.exists(kubeconfig)):
        return f"--kubeconfig {kubeconfig!r} does not exist"
    if isinstance(exc, TypeError | KeyError | AttributeError):  # the loader choked on the file's shape
        reason = "not a kubeconfig (expected YAML with clusters, contexts and users)"
    else:
        reason = " ".join(str(exc).split()) or type(exc).__name__
    if kubeconfig or os.environ.get("KUBECONFIG") or context:
        where = f"--kubeconfig {kubeconfig!r}" if kubeconfig else "the kubeconfig"
        shown = f" (context {context!r})" if context else ""
        return f"{where}{shown} cannot be used: {reason}"
    return (
        "no kubeconfig found (give --kubeconfig PATH, set $KUBECONFIG or write ~/.kube/config) and not "
        f"running in a cluster: {reason}"
    )


def _client(
    kubeconfig: str | None, context: str | None, *, qps: float = 50.0, burst: int = 100
) -> KubeClient:
    """The API client from the kubeconfig (or in-cluster config); raises ConfigError when it is unusable."""
    from kubernetes.config import ConfigException

    try:
        client = KubeClient.from_config(kubeconfig=kubeconfig, context=context, qps=qps, burst=burst)
    except (ConfigException, OSError, TypeError, ValueError, KeyError, AttributeError) as exc:
        # the kubernetes loader raises TypeError/KeyError/AttributeError for a file that is not a kubeconfig
        raise ConfigError(_config_problem(kubeconfig, context, exc)) from None
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64)  # workers + long-lived watches
    client.session.mount("http://", adapter)
    client.session.mount("https://", adapter)
    return client


def crd_documents() -> list[dict[str, Any]]:
    """The CRDs shipped in `manifests/crds/` (parsed by libyaml when present: the files hold the full pod
    template schema, ~1.4 MB, which the pure-Python parser takes over a second to read)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs: list[dict[str, Any]] = []
    for entry in sorted(CRD_DIR.glob("*.yaml")):
        docs += [d for d in yaml.load_all(entry.read_text(), Loader=loader) if d]
    return docs


def install_crds(client: KubeClient) -> None:
    """Create each CRD, or replace it when it exists (keeping its resourceVersion)."""
    base = CRDS.path()
    for crd in crd_documents():
        name = crd["metadata"]["name"]
        try:
            client.create(base, crd)
            log.info("installed CRD %s", name)
        except AlreadyExists:
            current = client.get(f"{base}/{name}")
            crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            client.replace(f"{base}/{name}", crd)
            log.info("updated CRD %s", name)


def serve_endpoints(
    settings: OperatorSettings,
    operator: RayClusterOperator,
    monitor: health.ApiServerMonitor | None = None,
) -> health.Endpoints:
    """Start `/metrics` and `/healthz` + `/readyz` on the configured addresses (raises EndpointError);
    with a `monitor`, /readyz fails while it cannot reach the API server."""
    manager = operator.manager
    cluster_informers = [i for i in manager.informers if i.path.rsplit("/", 1)[-1] == "rayclusters"]

    def snapshot() -> health.MetricsSnapshot:
        clusters = [o for i in cluster_informers for o in i.list()] if settings.enable_metrics else None
        return health.collect(
            controllers=manager.controllers,
            request_counts=operator.client.stats,
            leader=manager.leader,
            clusters=clusters,
        )

    return health.start_endpoints(
        [
            ("--metrics-bind-address", settings.metrics_address, health.metrics_routes(snapshot)),
            (
                "--health-probe-bind-address",
                settings.health_probe_address,
                health.probe_routes(manager.synced.is_set, monitor.problem if monitor else lambda: None),
            ),
        ]
    )


def run_operator(settings: OperatorSettings, stop: threading.Event) -> int:
    """Run the operator (and its metrics/probe endpoints) until `stop` is set; returns the exit code."""
    from ray_operator.raycluster.assembly import build_operator

    client = _client(settings.kubeconfig, settings.context, qps=settings.kube_qps, burst=settings.kube_burst)
    if settings.install_crds:
        install_crds(client)
    operator = build_operator(client, settings)
    rayservices = _attach_rayservice_controller(operator, client, settings)
    monitor = health.ApiServerMonitor(client).start(stop)
    endpoints = serve_endpoints(settings, operator, monitor)
    try:
        scope = ", ".join(settings.namespaces) or "all namespaces"
        log.info(
            "operator started (%s, %d workers; metrics port %s, probe port %s)",
            scope,
            settings.reconcile_concurrency,
            endpoints.port("/metrics") or "off",
            endpoints.port("/readyz") or "off",
        )
        code = operator.run(stop)
    finally:
        endpoints.close()
        rayservices.reconciler.close()
    log.info("operator stopped; kube requests: %s", json.dumps(client.stats, sort_keys=True))
    return code


def _attach_rayservice_controller(
    operator: RayClusterOperator, client: KubeClient, settings: OperatorSettings
) -> RayServiceController:
    """The RayService controller on the same manager (sharing its caches); with --install-crds and the
    RayServiceIncrementalUpgrade gate on, also the minimal Gateway API CRDs when the cluster has none."""
    from ray_operator.features import RAY_SERVICE_INCREMENTAL_UPGRADE
    from ray_operator.rayservice.assembly import attach_to
    from ray_operator.rayservice.gatewaycrds import install_gateway_crds

    if settings.install_crds and settings.gates.enabled(RAY_SERVICE_INCREMENTAL_UPGRADE):
        install_gateway_crds(client)
    return attach_to(operator, client, settings)


def main(argv: Sequence[str] | None = None) -> int:
    """`rayside operator [flags]`; see `--help`."""
    try:
        settings = load_settings(list(sys.argv[1:] if argv is None else argv))
    except SettingsError as exc:
        print(f"rayside operator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    try:
        return run_operator(settings, stop)
    except health.EndpointError as exc:
        print(f"rayside operator: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except ConfigError as exc:
        print(f"rayside operator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KubeError, OSError) as exc:
        print(f"rayside operator: cannot talk to the API server: {exc}", file=sys.stderr)
        return EXIT_FAILURE


# -- rayside get token ----------------------------------------------------------------------------------
class _UsageError(Exception):
    pass


class _TokenParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _token_of(client: KubeClient, namespace: str, name: str) -> str:
    from ray_operator.builders import names
    from ray_operator.models import RayCluster

    try:
        obj = client.get(RAYCLUSTERS.path(namespace, name))
    except NotFound:
        raise LookupError(f"RayCluster {namespace}/{name} not found") from None
    cluster = RayCluster.model_validate(obj)
    auth = cluster.spec.auth_options
    if auth is None or auth.mode != "token":
        raise LookupError(f"RayCluster {namespace}/{name} does not use token auth (spec.authOptions.mode)")
    secret_name = auth.secret_name or names.auth_secret_name(cluster)
    try:
        secret = client.get(SECRETS.path(namespace, secret_name))
    except NotFound:
        raise LookupError(f"Secret {namespace}/{secret_name} not found (is the operator running?)") from None
    encoded = (secret.get("data") or {}).get("auth_token")
    if encoded:
        try:
            return base64.b64decode(encoded).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise LookupError(
                f"Secret {namespace}/{secret_name} key auth_token is not valid base64"
            ) from None
    plain = (secret.get("stringData") or {}).get("auth_token")
    if plain:
        return str(plain)
    raise LookupError(f"Secret {namespace}/{secret_name} has no key auth_token")


def get_token_main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """`rayside get token NAME [-n NS] [--kubeconfig PATH]`: print the cluster's Ray auth token."""
    out = out or sys.stdout
    parser = _TokenParser(prog="rayside get token", description="Print a RayCluster's Ray auth token.")
    parser.add_argument("name", help="RayCluster name")
    parser.add_argument("-n", "--namespace", default=None)
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--context", default=None)
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as exc:
        print(f"rayside get token: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        client = _client(args.kubeconfig, args.context)
        namespace = args.namespace or _default_namespace(args.kubeconfig, args.context)
        token = _token_of(client, namespace, args.name)
    except ConfigError as exc:
        print(f"rayside get token: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LookupError as exc:
        print(f"rayside get token: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except (KubeError, OSError) as exc:
        print(f"rayside get token: cannot talk to the API server: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(token, file=out)
    return EXIT_OK


def _default_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the kubeconfig's current (or given) context, else `default`."""
    from kubernetes import config as k8s_config

    try:
        contexts, current = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
    except (k8s_config.ConfigException, TypeError):
        return "default"
    chosen = next((c for c in contexts if c.get("name") == context), current) if context else current
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")
