"""The RayService reconciler: observe (caches, Gateway API objects, the clusters' Serve apps), decide with
`plan.decide`, act through the `Applier`, write the status.

One pass (`reconcile("ns/name")`) reads the RayService and its RayClusters, Services and serve-ready
Pods from informer caches, the Gateway and HTTPRoute with a GET (incremental upgrade only; not watched,
as KubeRay), and the Serve applications of the active/pending clusters whose head is ready from their
dashboards (`ServeClient`, injectable). The status is written synchronously (a merge patch against the
cached one), so the next pass never decides on a stale status. What lives only in memory, as in KubeRay:
the Serve configs applied per cluster (an LRU), the deletion times of dangling clusters, and the last
refusal of a config by Serve.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

import requests
from pydantic import ValidationError

from ray_operator import constants as c
from ray_operator.builders import names
from ray_operator.builders.names import RAND_ALPHABET
from ray_operator.models import RayCluster, RayService
from ray_operator.rayservice import conditions as cond
from ray_operator.rayservice.applier import Applier, Endpoint, ServeCache
from ray_operator.rayservice.dashboard import DashboardError, HttpServeClient, ServeClient
from ray_operator.rayservice.observed import (
    ANN_INITIALIZING_TIMEOUT,
    ANN_UPGRADE_TIMEOUT,
    ClusterView,
    HeadPod,
    Observed,
    ServeView,
)
from ray_operator.rayservice.plan import decide
from ray_operator.runtime.cache import Cache
from ray_operator.runtime.events import EventRecorder
from ray_operator.settings import OperatorSettings
from rayside.kubeclient import KubeClient, KubeError, NotFound
from rayside.objects import (
    GATEWAYS,
    HTTPROUTES,
    JSON,
    RAYSERVICES,
    SECRETS,
    annotations_of,
    controller_of,
    is_deleting,
    labels_of,
    name_of,
    split_key,
    uid_of,
)

log = logging.getLogger(__name__)


class Lister(Protocol):
    """The read side of an informer (or a group of per-namespace informers)."""

    def get(self, namespace: str, name: str) -> JSON | None: ...
    def list(self, namespace: str | None = None) -> builtins.list[JSON]: ...


def rand5() -> str:
    return "".join(secrets.choice(RAND_ALPHABET) for _ in range(5))


def utcnow() -> datetime:
    return datetime.now(UTC)


def head_port(cluster: JSON, name: str, default: int) -> int:
    """The head container port called `name` (e.g. `dashboard`, `serve`), else `default`."""
    template = ((cluster.get("spec") or {}).get("headGroupSpec") or {}).get("template") or {}
    for container in (template.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name and port.get("containerPort"):
                return int(port["containerPort"])
    return default


def dashboard_port(cluster: JSON) -> int:
    return head_port(cluster, "dashboard", c.DEFAULT_DASHBOARD_PORT)


def proxy_healthy(pod_ip: str, port: int) -> bool:
    """Whether the Serve proxy on a head Pod answers `GET /-/healthz` with 200 (2 s timeout)."""
    try:
        return requests.get(f"http://{pod_ip}:{port}/-/healthz", timeout=2.0).status_code == 200
    except requests.RequestException:
        return False


class SecretTokens:
    """The default `Endpoint`: `<cluster>-head-svc.<ns>.svc.<domain>:<dashboard port>` and the cluster's
    Ray token from its Secret (key `auth_token`), remembered per Secret."""

    def __init__(self, client: KubeClient, *, cluster_domain: str) -> None:
        self._client = client
        self._domain = cluster_domain
        self._tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def __call__(self, namespace: str, cluster: JSON) -> tuple[str, str | None]:
        model = RayCluster.model_validate(cluster)
        host = names.fqdn(names.head_service_name(model), namespace, self._domain)
        url = f"http://{host}:{dashboard_port(cluster)}"
        auth = model.spec.auth_options
        if auth is None or auth.mode != "token":
            return url, None
        return url, self._token(namespace, names.auth_secret_name(model))

    def _token(self, namespace: str, secret: str) -> str:
        with self._lock:
            known = self._tokens.get((namespace, secret))
        if known is not None:
            return known
        try:
            obj = self._client.get(SECRETS.path(namespace, secret))
        except KubeError as exc:
            raise DashboardError(f"Secret {namespace}/{secret} with the Ray token: {exc.reason}") from None
        encoded = (obj.get("data") or {}).get(c.AUTH_TOKEN_KEY) or ""
        try:
            token = base64.b64decode(encoded).decode()
        except (binascii.Error, UnicodeDecodeError):
            token = ""
        if not token:
            raise DashboardError(f"Secret {namespace}/{secret} has no usable key {c.AUTH_TOKEN_KEY}")
        with self._lock:
            self._tokens[(namespace, secret)] = token
        return token


def merge_patch(old: Mapping[str, object], new: Mapping[str, object]) -> JSON:
    """The JSON merge patch turning `old` into `new` (nested objects diffed; removed keys become null)."""
    body: JSON = {k: None for k in old if k not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            body[key] = merge_patch(before, value)
        else:
            body[key] = value
    return body


def _cluster_view(obj: JSON) -> ClusterView:
    ann = annotations_of(obj)
    raw_groups = ann.get("ray.io/num-worker-groups", "")
    status = obj.get("status") or {}
    head_ready = cond.is_true(status, "HeadPodReady") or status.get("state") == "ready"
    return ClusterView(
        name=name_of(obj),
        spec_hash=ann.get("ray.io/hash-without-replicas-and-workers-to-delete", ""),
        num_groups=int(raw_groups) if raw_groups.isdigit() else None,
        kuberay_version=ann.get(c.ANN_KUBERAY_VERSION, ""),
        head_ready=head_ready,
        deleting=is_deleting(obj),
        status=dict(status),
        obj=obj,
    )


def _annotation_problems(obj: JSON) -> str | None:
    for key in (ANN_INITIALIZING_TIMEOUT, ANN_UPGRADE_TIMEOUT):
        raw = annotations_of(obj).get(key)
        if raw and cond.parse_duration(raw) is None:
            return f"annotation {key} {raw!r} must be a positive duration (e.g. 90s, 5m, 1h) or whole seconds"
    return None


class RayServiceReconciler:
    """Reconciles RayServices; `reconcile(key)` is the controller's callback."""

    def __init__(
        self,
        client: KubeClient,
        *,
        settings: OperatorSettings,
        rayservices: Cache,
        clusters: Lister,
        services: Lister,
        pods: Cache,
        recorder: EventRecorder,
        serve: ServeClient | None = None,
        endpoint: Endpoint | None = None,
        clock: Callable[[], datetime] = utcnow,
        new_name: Callable[[], str] = rand5,
        zero_downtime_env: bool = True,
        proxy_health: Callable[[str, int], bool] = proxy_healthy,
    ) -> None:
        self._client = client
        self._settings = settings
        self._rayservices = rayservices
        self._clusters = clusters
        self._services = services
        self._pods = pods
        self._recorder = recorder
        self._serve = serve or HttpServeClient()
        self._endpoint = endpoint or SecretTokens(client, cluster_domain=settings.build.cluster_domain)
        self._now = clock
        self._new_name = new_name
        self._zero_downtime = zero_downtime_env
        self._proxy_health = proxy_health
        self._serve_cache = ServeCache()
        self._delete_at: dict[str, dict[str, datetime]] = {}
        self._lock = threading.Lock()
        self.applier = Applier(
            client,
            recorder=recorder,
            serve=self._serve,
            endpoint=self._endpoint,
            cache=self._serve_cache,
            clusters=self._clusters.get,
        )
        self.passes = 0

    def close(self) -> None:
        self._recorder.close()

    def reconcile(self, key: str) -> float | None:
        try:
            return self._reconcile(key)
        finally:
            with self._lock:
                self.passes += 1

    def _reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        obj = self._rayservices.get(ns, name)
        if obj is None:
            self._serve_cache.forget(key)
            self._delete_at.pop(key, None)
            return None
        managed_by = (obj.get("spec") or {}).get("managedBy")
        if managed_by and managed_by != c.MANAGED_BY_KUBERAY:
            log.debug("rayservice %s is managed by %s; skipping", key, managed_by)
            return None  # not even observed: no dashboard or Gateway requests for it
        observed = self._observe(key, obj)
        decision = decide(observed)
        applied = self.applier.apply(obj, decision.actions)
        self._delete_at[key] = decision.delete_at
        if decision.status is not None and not applied.failed:
            self._write_status(obj, decision.status)
        status = decision.status or obj.get("status") or {}
        keep = {
            str((status.get(side) or {}).get("rayClusterName") or "")
            for side in ("activeServiceStatus", "pendingServiceStatus")
        }
        self._serve_cache.keep_only(key, keep - {""})
        return decision.requeue

    def _write_status(self, obj: JSON, status: JSON) -> None:
        body = {"status": merge_patch(dict(obj.get("status") or {}), status)}
        try:
            updated = self._client.patch(RAYSERVICES.path_of(obj, "status"), body)
        except NotFound:
            return
        self._rayservices.observe(updated)

    # -- observing --------------------------------------------------------------------------------------
    def _parse(self, obj: JSON) -> tuple[RayService | None, str | None]:
        from ray_operator.validation import validate_rayservice

        try:
            service = RayService.model_validate(obj)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ()))
            return None, f"field {where}: {err.get('msg')}"
        problem = validate_rayservice(service, self._settings.build) or _annotation_problems(obj)
        if problem is None and service.spec.ray_cluster_config is None:
            problem = "spec.rayClusterConfig is required"
        return service, problem

    def _owned_clusters(self, obj: JSON) -> dict[str, ClusterView]:
        views: dict[str, ClusterView] = {}
        for cluster in self._clusters.list(str(obj["metadata"].get("namespace") or "")):
            labels = labels_of(cluster)
            if (
                labels.get(c.LABEL_ORIGINATED_FROM_CR_NAME) == name_of(obj)
                and labels.get(c.LABEL_ORIGINATED_FROM_CRD) == c.KIND_RAYSERVICE
            ):
                views[name_of(cluster)] = _cluster_view(cluster)
        return views

    def _owned_services(self, obj: JSON, clusters: Mapping[str, ClusterView]) -> dict[str, JSON]:
        rs = name_of(obj)
        serve_name = ((obj.get("spec") or {}).get("serveService") or {}).get("metadata", {}).get("name")
        wanted = {f"{rs}-head-svc", serve_name or names.serve_service_name(rs)}
        wanted |= {names.serve_service_name(n) for n in clusters}
        out: dict[str, JSON] = {}
        for svc in self._services.list(str(obj["metadata"].get("namespace") or "")):
            owner = controller_of(svc)
            if name_of(svc) in wanted or (owner is not None and owner.get("uid") == uid_of(obj)):
                out[name_of(svc)] = svc
        return out

    def _get_optional(self, path: str) -> JSON | None:
        try:
            return self._client.get(path)
        except NotFound:
            return None

    def _serve_views(self, key: str, obj: JSON, clusters: Mapping[str, ClusterView]) -> dict[str, ServeView]:
        ns = str(obj["metadata"].get("namespace") or "")
        status = obj.get("status") or {}
        raw = str((obj.get("spec") or {}).get("serveConfigV2") or "")
        memory = self._serve_cache.get(key)
        views: dict[str, ServeView] = {}
        for side in ("activeServiceStatus", "pendingServiceStatus"):
            cluster = clusters.get(str((status.get(side) or {}).get("rayClusterName") or ""))
            if cluster is None or not cluster.head_ready:
                continue
            refused = memory.refused.get(cluster.name)
            put_error = refused[1] if refused is not None and refused[0] == raw else None
            try:
                url, token = self._endpoint(ns, cluster.obj)
                apps = self._serve.get_applications(url, token)
            except DashboardError as exc:
                log.debug("rayservice %s: Serve applications of %s not read: %s", key, cluster.name, exc)
                views[cluster.name] = ServeView(error=str(exc), put_error=put_error)
                continue
            views[cluster.name] = ServeView(apps=apps, put_error=put_error)
        return views

    def _serve_pods(self, ns: str, clusters: Mapping[str, ClusterView]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in clusters:
            pods = self._pods.by_cluster(ns, name)
            counts[name] = sum(
                1
                for pod in pods
                if labels_of(pod).get(c.LABEL_SERVE) == "true"
                and not is_deleting(pod)
                and cond.is_true(pod.get("status") or {}, "Ready")
            )
        return counts

    def _heads(self, obj: JSON, clusters: Mapping[str, ClusterView]) -> dict[str, HeadPod]:
        """Head Pods of the active and pending clusters, with their proxy health (probed when Running)."""
        ns = str(obj["metadata"].get("namespace") or "")
        status = obj.get("status") or {}
        heads: dict[str, HeadPod] = {}
        for side in ("activeServiceStatus", "pendingServiceStatus"):
            cluster = clusters.get(str((status.get(side) or {}).get("rayClusterName") or ""))
            if cluster is None:
                continue
            for pod in self._pods.by_cluster(ns, cluster.name):
                if labels_of(pod).get(c.LABEL_NODE_TYPE) != c.NODE_TYPE_HEAD or is_deleting(pod):
                    continue
                pod_status = pod.get("status") or {}
                ip = pod_status.get("podIP")
                running = pod_status.get("phase") == "Running" and bool(ip)
                port = head_port(cluster.obj, "serve", c.DEFAULT_SERVE_PORT)
                healthy = running and self._proxy_health(str(ip), port)
                heads[cluster.name] = HeadPod(name_of(pod), labels_of(pod).get(c.LABEL_SERVE), healthy)
        return heads

    def _observe(self, key: str, obj: JSON) -> Observed:
        ns = str(obj["metadata"].get("namespace") or "")
        service, problem = self._parse(obj)
        clusters = self._owned_clusters(obj)
        gateway = route = None
        suspending = cond.is_true(obj.get("status") or {}, "Suspending")
        if service is not None and (incremental_wanted(service, self._settings) or suspending):
            gateway = self._get_optional(GATEWAYS.path(ns, f"{name_of(obj)}-gateway"))
            route = self._get_optional(HTTPROUTES.path(ns, f"{name_of(obj)}-httproute"))
        memory = self._serve_cache.get(key)
        return Observed(
            obj=obj,
            service=service,
            problem=problem,
            clusters=clusters,
            serve=self._serve_views(key, obj, clusters) if problem is None else {},
            cached=dict(memory.applied),
            services=self._owned_services(obj, clusters),
            gateway=gateway,
            route=route,
            serve_pods=self._serve_pods(ns, clusters),
            delete_at=dict(self._delete_at.get(key) or {}),
            now=self._now(),
            settings=self._settings.build,
            new_name=f"{name_of(obj)}-{self._new_name()}",
            zero_downtime_env=self._zero_downtime,
            heads=self._heads(obj, clusters) if problem is None else {},
        )


def incremental_wanted(service: RayService, settings: OperatorSettings) -> bool:
    strategy = service.spec.upgrade_strategy
    return (
        strategy is not None
        and strategy.type == "NewClusterWithIncrementalUpgrade"
        and settings.gates.enabled("RayServiceIncrementalUpgrade")
    )


__all__ = ["Lister", "RayServiceReconciler", "SecretTokens"]
