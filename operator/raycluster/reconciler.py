"""The RayCluster reconciler: read the caches, plan with pure functions, apply the plan in one batch.

One pass (`reconcile("ns/name")`): skip clusters managed elsewhere; leave a cluster being deleted alone
unless it carries the GCS-FT Redis cleanup finalizer (then `raycluster_deletion.RedisCleanup` runs the
cleanup); validate the spec (an invalid spec gets a `RayClusterSpecValid=False` condition and a Warning
event, and recovers after a fix); give a Redis-FT cluster that finalizer first (that pass ends there);
build the desired children and Pods with `ray_operator.builders`; let `planning.plan_cluster` decide;
apply the actions in order, stopping at the first failure; then compute the status and write it only if
it changed. The Ray auth token is generated here (the only randomness besides replica names) and is never
logged or put into events or status.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ray_operator import constants as c
from ray_operator.builders import names
from ray_operator.builders.auth import auth_secret, needs_auth_secret
from ray_operator.builders.autoscaler import (
    autoscaler_role,
    autoscaler_role_binding,
    autoscaler_service_account,
)
from ray_operator.builders.facts import cluster_facts
from ray_operator.builders.ingress import head_ingress, wants_ingress
from ray_operator.builders.names import RAND_ALPHABET
from ray_operator.builders.pods import head_pod, worker_pod
from ray_operator.builders.services import (
    head_service,
    headless_worker_service,
    needs_headless_service,
    serve_service,
    wants_serve_service,
)
from ray_operator.models import RayCluster
from ray_operator.raycluster.deletion import has_finalizer, needs_finalizer
from ray_operator.raycluster.plan import (
    Action,
    ClearWorkersToDelete,
    Create,
    Delete,
    Plan,
    PodSlot,
    plan_cluster,
)
from ray_operator.raycluster.reconciler_deletion import RedisCleanup
from ray_operator.raycluster.status import (
    Outcome,
    compute_status,
    get_condition,
    only_counters_changed,
    set_condition,
    status_changed,
)
from ray_operator.reconcilers.status_writer import StatusWriter
from ray_operator.runtime.events import EventRecorder
from ray_operator.runtime.expectations import Action as Expect
from ray_operator.runtime.expectations import ScaleExpectations
from ray_operator.runtime.informer import Cache
from ray_operator.schedulers import scheduler_of
from ray_operator.settings import OperatorSettings
from rayside.kubeclient import (
    AlreadyExists,
    Conflict,
    Invalid,
    KubeClient,
    KubeError,
    NotFound,
    resource_path,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SPEC_VALID = "RayClusterSpecValid"

_PLURALS = {
    "Pod": ("", "v1", "pods"),
    "Service": ("", "v1", "services"),
    "Secret": ("", "v1", "secrets"),
    "ServiceAccount": ("", "v1", "serviceaccounts"),
    "Role": ("rbac.authorization.k8s.io", "v1", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    "PodGroup": ("scheduling.volcano.sh", "v1beta1", "podgroups"),
    "Ingress": ("networking.k8s.io", "v1", "ingresses"),
}


def object_path(obj: Obj, namespace: str, name: str | None = None) -> str:
    """REST path of an object (collection path when name is None) from its apiVersion/kind."""
    kind = str(obj.get("kind"))
    api_version = str(obj.get("apiVersion") or "v1")
    group, _, version = api_version.rpartition("/")
    plural = _PLURALS.get(kind, (group, version, kind.lower() + "s"))[2]
    return resource_path(group=group, version=version, plural=plural, namespace=namespace, name=name)


def rand5() -> str:
    return "".join(secrets.choice(RAND_ALPHABET) for _ in range(5))


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Applied:
    """What applying a plan did: created/deleted Pod names by (node type, group), and the first failure."""

    created: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    failure: Outcome | None = None


def summarize(applied: Applied) -> list[tuple[str, str, str]]:
    """Events (type, reason, message) for one applied plan: one per group and verb, never per Pod."""
    events: list[tuple[str, str, str]] = []
    for verb, table in (("Created", applied.created), ("Deleted", applied.deleted)):
        for group, pods in table.items():
            kind = "HeadPod" if group == "" else "WorkerPod"
            where = "head Pod" if group == "" else f"worker Pod(s) of group {group}"
            shown = ", ".join(pods[:5]) + (", ..." if len(pods) > 5 else "")
            events.append(("Normal", f"{verb}{kind}", f"{verb} {len(pods)} {where}: {shown}"))
    if applied.failure is not None and applied.failure.marker:
        reason = applied.failure.marker.replace("Failed", "FailedTo", 1)
        events.append(("Warning", reason, applied.failure.error or ""))
    return events


class RayClusterReconciler:
    """Reconciles RayClusters from informer caches; `reconcile(key)` is the controller's callback."""

    def __init__(
        self,
        client: KubeClient,
        *,
        settings: OperatorSettings,
        clusters: Cache,
        pods: Cache,
        services: Cache,
        secrets_: Cache,
        recorder: EventRecorder,
        clock: Callable[[], str] = now_rfc3339,
        validate: Callable[[RayCluster], str | None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        redis_cleanup: RedisCleanup | None = None,
    ) -> None:
        self._client = client
        self._paid = client.prepaid()  # for the Pod/child writes of a pass: `_run_one` takes their tokens
        self._settings = settings
        self.clusters = clusters
        self.pods = pods
        self.services = services
        self.secrets = secrets_
        self._recorder = recorder
        self._now = clock
        self._validate = validate or _default_validate(settings)
        self._redis = redis_cleanup or RedisCleanup(
            client, settings=settings, clusters=clusters, recorder=recorder
        )
        self.expectations = ScaleExpectations(lambda ns, name: pods.get(ns, name) is not None)
        self._ensured: set[tuple[str, str, str, str]] = set()  # (uid, kind, namespace, name) seen to exist
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._last_status_write: dict[str, float] = {}
        self.stopping = threading.Event()
        self._pool = ThreadPoolExecutor(
            max_workers=settings.write_parallelism, thread_name_prefix="pod-writes"
        )
        self.failed_actions = 0
        self.status_writer = StatusWriter(
            client, cache=clusters, path=self._status_path, max_defer=settings.status_max_defer
        )

    def close(self) -> None:
        """After the controllers stopped: write pending status and send queued Events (each bounded),
        release the Pod writers."""
        self.status_writer.close()
        self._recorder.close()
        self._pool.shutdown(wait=False)

    # -- reading -------------------------------------------------------------------------------------
    def _existing(self, cluster: RayCluster, uid: str, ns: str, name: str) -> set[tuple[str, str]]:
        existing = {("Service", _name(o)) for o in self.services.by_cluster(ns, name)}
        existing |= {("Secret", _name(o)) for o in self.secrets.by_cluster(ns, name)}
        with self._lock:
            existing |= {(k, n) for (u, k, _ns, n) in self._ensured if u == uid}
        return existing

    def _children(self, cluster: RayCluster, existing: set[tuple[str, str]]) -> list[Obj]:
        build = self._settings.build
        children: list[Obj] = []
        facts = cluster_facts(cluster, build)
        if facts.autoscaling:
            template_sa = (cluster.spec.head_group_spec.template.get("spec") or {}).get("serviceAccountName")
            if not template_sa:
                children.append(autoscaler_service_account(cluster, facts=facts))
            children += [autoscaler_role(cluster, facts=facts), autoscaler_role_binding(cluster, facts=facts)]
        if wants_ingress(cluster):
            children.append(head_ingress(cluster))
        if needs_auth_secret(cluster) and ("Secret", names.auth_secret_name(cluster)) not in existing:
            children.append(auth_secret(cluster, secrets.token_bytes(32)))
        children.append(head_service(cluster, settings=build))
        if needs_headless_service(cluster):
            children.append(headless_worker_service(cluster, settings=build))
        if wants_serve_service(cluster):
            children.append(serve_service(cluster, settings=build))
        scheduler = scheduler_of(cluster, build)
        if scheduler is not None:
            children += scheduler.objects_on_submission(cluster)
        return children

    def _make_pod(self, cluster: RayCluster) -> Callable[[PodSlot], Obj]:
        build = self._settings.build
        groups = {g.group_name: g for g in cluster.spec.worker_group_specs or []}

        scheduler = scheduler_of(cluster, build)

        def make(slot: PodSlot) -> Obj:
            pod = build_pod(slot)
            group = c.HEAD_GROUP if slot.group is None else slot.group
            return pod if scheduler is None else scheduler.add_metadata_to_child(cluster, pod, group)

        def build_pod(slot: PodSlot) -> Obj:
            if slot.group is None:
                return head_pod(cluster, settings=build)
            return worker_pod(
                cluster,
                groups[slot.group],
                settings=build,
                replica_index=slot.replica_index,
                replica_name=slot.replica_name,
                host_index=slot.host_index,
            )

        return make

    # -- the pass -------------------------------------------------------------------------------------
    def reconcile(self, key: str) -> float | None:
        ns, _, name = key.partition("/")
        obj = self.clusters.get(ns, name)
        if obj is None:
            self.expectations.clear_cluster(ns, name)
            self._last_status_write.pop(key, None)
            self.status_writer.forget(ns, name)
            return None
        meta = obj.get("metadata", {})
        managed_by = (obj.get("spec") or {}).get("managedBy")
        if managed_by and managed_by != c.MANAGED_BY_KUBERAY:
            log.debug("raycluster %s/%s is managed by %s; skipping", ns, name, managed_by)
            return None
        if meta.get("deletionTimestamp"):
            if has_finalizer(obj):  # GCS-FT Redis cleanup (planning_deletion); no other cluster pays for it
                return self._redis.on_deletion(obj, self.pods.by_cluster(ns, name))
            return None
        try:
            cluster = RayCluster.model_validate(obj)
            problem = self._validate(cluster)
        except ValidationError as exc:
            cluster, problem = None, _first_error(exc)
        if problem is not None or cluster is None:
            self._report_invalid(obj, problem or "invalid spec")
            return None
        if needs_finalizer(obj, cleanup_enabled=self._settings.enable_gcs_ft_redis_cleanup):
            return self._redis.ensure_finalizer(obj)
        return self._reconcile_valid(cluster, obj)

    def _reconcile_valid(self, cluster: RayCluster, obj: Obj) -> float | None:
        meta = obj["metadata"]
        ns, name, uid = meta.get("namespace", ""), meta["name"], meta.get("uid", "")
        existing = self._existing(cluster, uid, ns, name)
        pods = self.pods.by_cluster(ns, name)
        groups = ["", *(g.group_name for g in cluster.spec.worker_group_specs or [])]
        unsatisfied = frozenset(g for g in groups if not self.expectations.satisfied((ns, name, g)))
        try:
            plan = plan_cluster(
                cluster,
                pods=pods,
                children=self._children(cluster, existing),
                existing=existing,
                gates=self._settings.gates,
                unsatisfied=unsatisfied,
                make_pod=self._make_pod(cluster),
                rand5=rand5,
                random_delete=self._settings.enable_random_pod_delete,
            )
        except ValueError as exc:  # a builder rejected the spec (e.g. RayStartConflict)
            self._report_invalid(obj, str(exc))
            return None
        applied = self._apply(plan, obj, ns, name, uid)
        for type_, reason, message in summarize(applied):
            self._recorder.record(obj, type_=type_, reason=reason, message=message)
        outcome = applied.failure or (Outcome(plan.error, plan.marker) if plan.error else Outcome())
        changed = self._write_status(cluster, obj, plan, outcome)
        busy = outcome.error is not None or changed or bool(plan.actions) or bool(unsatisfied)
        return self._settings.short_requeue_seconds if busy else self._settings.requeue_seconds

    # -- acting ---------------------------------------------------------------------------------------
    def _apply(self, plan: Plan, cluster_obj: Obj, ns: str, name: str, uid: str) -> Applied:
        """Apply actions in order; consecutive Pod writes go out in parallel (the client's token bucket
        still bounds the rate). The first failure stops everything not yet started."""
        applied = Applied()
        batch: list[Action] = []
        for action in plan.actions:
            if isinstance(action, Delete) or (isinstance(action, Create) and action.group is not None):
                batch.append(action)
                continue
            if not self._run_batch(batch, applied, ns, name, uid) or not self._run_one(
                action, applied, ns, name, uid
            ):
                return applied
            batch = []
        self._run_batch(batch, applied, ns, name, uid)
        return applied

    def _run_batch(self, batch: list[Action], applied: Applied, ns: str, name: str, uid: str) -> bool:
        if len(batch) <= 1:
            return all(self._run_one(a, applied, ns, name, uid) for a in batch)
        return all(list(self._pool.map(lambda a: self._run_one(a, applied, ns, name, uid), batch)))

    def _run_one(self, action: Action, applied: Applied, ns: str, name: str, uid: str) -> bool:
        if applied.failure is not None:
            return False
        # graceful shutdown: finish writes in flight, start no new ones. The write waits for its token
        # here, not inside the client, so a stop that comes while it waits sends nothing.
        if not self.stopping.is_set():
            self._client.limiter.acquire()
        if self.stopping.is_set():
            applied.failure = Outcome("operator is shutting down", None)
            return False
        try:
            if isinstance(action, Create):
                self._create(action, applied, ns, name, uid)
            elif isinstance(action, Delete):
                self._delete(action, applied, ns, name)
            else:
                self._clear_workers_to_delete(action, ns, name)
        except KubeError as exc:
            message = f"{type(exc).__name__} ({exc.status}): {exc.message}"
            log.debug("raycluster %s/%s: action failed: %s", ns, name, message)
            marker = action.marker if isinstance(action, Create | Delete) else None
            with self._lock:
                if applied.failure is None:
                    applied.failure = Outcome(message, marker)
                self.failed_actions += 1
            return False
        return True

    def _create(self, action: Create, applied: Applied, ns: str, name: str, uid: str) -> None:
        obj = action.obj
        kind = str(obj.get("kind"))
        try:
            created = self._paid.create(object_path(obj, ns), obj)
        except AlreadyExists:
            if not action.tolerate_exists or action.group is not None:
                raise
            created = obj
        if action.group is not None:
            pod_name = _name(created)
            self.expectations.expect((ns, name, action.group), pod_name, Expect.CREATE)
            with self._lock:
                applied.created.setdefault(action.group, []).append(pod_name)
        elif kind not in ("Service", "Secret"):
            with self._lock:
                self._ensured.add((uid, kind, ns, _name(obj)))
        log.debug("raycluster %s/%s: created %s %s", ns, name, kind, _name(created))

    def _delete(self, action: Delete, applied: Applied, ns: str, name: str) -> None:
        with contextlib.suppress(NotFound):
            self._paid.delete(
                resource_path(group="", version="v1", plural="pods", namespace=ns, name=action.name)
            )
        group = action.group if action.group is not None else ""
        self.expectations.expect(
            (ns, name, "" if group == c.HEAD_GROUP else group), action.name, Expect.DELETE
        )
        with self._lock:
            applied.deleted.setdefault("" if group == c.HEAD_GROUP else group, []).append(action.name)

    def _clear_workers_to_delete(self, action: ClearWorkersToDelete, ns: str, name: str) -> None:
        path = f"/spec/workerGroupSpecs/{action.index}/scaleStrategy/workersToDelete"
        ops = [
            {"op": "test", "path": path, "value": list(action.expected)},
            {"op": "replace", "path": path, "value": []},
        ]
        try:
            updated = self._paid.patch(
                resource_path(
                    group=c.GROUP, version=c.VERSION, plural="rayclusters", namespace=ns, name=name
                ),
                ops,
                patch_type="json",
            )
            self.clusters.observe(updated)
        except (Conflict, Invalid) as exc:  # changed meanwhile (e.g. by the autoscaler): next pass decides
            log.debug("raycluster %s/%s: workersToDelete not cleared: %s", ns, name, exc.message)

    # -- status ---------------------------------------------------------------------------------------
    def _status_path(self, ns: str, name: str) -> str:
        return resource_path(
            group=c.GROUP,
            version=c.VERSION,
            plural="rayclusters",
            namespace=ns,
            name=name,
            subresource="status",
        )

    def _current_status(self, obj: Obj) -> Obj:
        """The status as it will be once pending writes land (the cache's if none is pending)."""
        meta = obj["metadata"]
        pending = self.status_writer.pending(meta.get("namespace", ""), meta["name"])
        return dict(pending if pending is not None else obj.get("status") or {})

    def _write_status(self, cluster: RayCluster, obj: Obj, plan: Plan, outcome: Outcome) -> bool:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        old = self._current_status(obj)
        services = {_name(s): s for s in self.services.by_cluster(ns, name)}
        new = compute_status(
            cluster,
            old,
            pods=self.pods.by_cluster(ns, name),
            head_service=services.get(names.head_service_name(cluster)),
            phase=plan.phase,
            outcome=outcome,
            now=self._now(),
        )
        if get_condition(new, SPEC_VALID) is not None:
            set_condition(new["conditions"], SPEC_VALID, "True", "ValidSpec", "", now=self._now())
        if not status_changed(old, new):
            return False
        key = f"{ns}/{name}"
        now = self._monotonic()
        last = self._last_status_write.get(key)
        if (
            last is not None
            and only_counters_changed(old, new)
            and now - last < self._settings.status_interval
        ):
            return True  # counters alone are written at most every status_interval; requeued meanwhile
        self.status_writer.submit(ns, name, new)
        self._last_status_write[key] = now
        return True

    def _report_invalid(self, obj: Obj, problem: str) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        old = self._current_status(obj)
        current = get_condition(old, SPEC_VALID)
        if current is not None and current.get("status") == "False" and current.get("message") == problem:
            return
        message = f"The RayCluster spec is invalid {ns}/{name}: {problem}"
        self._recorder.record(obj, type_="Warning", reason="InvalidRayClusterSpec", message=message)
        new = {**old, "conditions": [dict(cond) for cond in old.get("conditions") or []]}
        set_condition(
            new["conditions"], SPEC_VALID, "False", "InvalidRayClusterSpec", problem, now=self._now()
        )
        new["observedGeneration"] = meta.get("generation", 0)
        self.status_writer.submit(ns, name, new)


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"spec field {where}: {err.get('msg')}"


def _default_validate(settings: OperatorSettings) -> Callable[[RayCluster], str | None]:
    try:
        from ray_operator import validation
    except ImportError:  # pragma: no cover - validation lands separately
        return lambda cluster: None
    check = getattr(validation, "validate_raycluster", None)
    if check is None:  # pragma: no cover
        return lambda cluster: None

    def validate(cluster: RayCluster) -> str | None:
        result = check(cluster, settings.build)
        return None if not result else str(result)

    return validate


__all__ = ["Applied", "RayClusterReconciler", "summarize"]
