"""The RayCluster reconciler: read the caches into a `Pass`, decide with pure functions, apply the actions.

One pass (`reconcile("ns/name")`): skip clusters managed elsewhere; leave a cluster being deleted alone
unless it carries the GCS-FT Redis cleanup finalizer (then `reconciler_deletion.RedisCleanup` runs the
cleanup); validate the spec (an invalid spec gets a `RayClusterSpecValid=False` condition and a Warning
event, `status.invalid_spec`, and recovers after a fix); give a Redis-FT cluster that finalizer first (that
pass ends there); build the desired children and the Pod factory (`children.py`); let `plan.plan_cluster`
decide; hand the actions to the `Applier`, which stops at the first failure; then compute the status and
let `status.write_decision` say whether to write it now. A pass creates at most `max_creates_per_pass`
Pods; when the plan was truncated the pass returns 0 (requeue at the back of the queue), so other
clusters get their turn and the next chunk sees the current spec. An exception while building or
planning becomes the `RayClusterSpecValid=False` condition and one Warning event (`status.spec_problem`),
is logged at ERROR once per cluster uid and generation, and the cluster is retried after the slow
requeue, not in a hot loop. The Ray auth token is generated here (the only
randomness besides replica names) and is never logged or put into events or status.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import ValidationError

from ray_operator import constants as c
from ray_operator.builders import names
from ray_operator.builders.names import RAND_ALPHABET
from ray_operator.models import RayCluster
from ray_operator.raycluster.applier import (
    Applied,
    Applier,
    Pass,
    RecordEvent,
    Views,
    WriteStatus,
)
from ray_operator.raycluster.children import desired_children, pod_factory
from ray_operator.raycluster.deletion import has_finalizer, needs_finalizer
from ray_operator.raycluster.plan import Plan, plan_cluster
from ray_operator.raycluster.reconciler_deletion import RedisCleanup
from ray_operator.raycluster.status import (
    Outcome,
    compute_status,
    invalid_spec,
    mark_spec_valid,
    spec_problem,
    write_decision,
)
from ray_operator.runtime.cache import Cache
from ray_operator.runtime.events import EventRecorder
from ray_operator.runtime.expectations import ScaleExpectations
from ray_operator.runtime.status_writer import StatusWriter
from ray_operator.settings import OperatorSettings
from rayside.kubeclient import KubeClient
from rayside.objects import JSON, RAYCLUSTERS, generation_of, is_deleting, name_of, rv_number, split_key

log = logging.getLogger(__name__)


def rand5() -> str:
    return "".join(secrets.choice(RAND_ALPHABET) for _ in range(5))


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        token: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._settings = settings
        self.views = Views(clusters=clusters, pods=pods, services=services, secrets=secrets_)
        self._recorder = recorder
        self._now = clock
        self._monotonic = monotonic
        self._token = token
        self._validate = validate or _default_validate(settings)
        self.expectations = ScaleExpectations(lambda ns, name: pods.get(ns, name) is not None)
        self._last_status_write: dict[str, float] = {}
        self._failed_generation: dict[str, int] = {}  # uid -> generation whose failure was logged
        self._uid_by_key: dict[str, str] = {}
        self.status_writer = StatusWriter(
            client,
            cache=clusters,
            path=lambda ns, name: RAYCLUSTERS.path(ns, name, "status"),
            max_defer=settings.status_max_defer,
        )
        self.applier = Applier(
            client,
            expectations=self.expectations,
            status_writer=self.status_writer,
            recorder=recorder,
            write_parallelism=settings.write_parallelism,
        )
        self._redis = redis_cleanup or RedisCleanup(client, settings=settings, applier=self.applier)
        # Observable progress (tests and diagnostics wait on these instead of sleeping): completed passes,
        # and per key the resourceVersion (as a number) of the RayCluster its last completed pass read.
        self.passes = 0
        self.last_seen: dict[str, int] = {}
        self._passes_lock = threading.Lock()

    @property
    def stopping(self) -> threading.Event:
        """Set on shutdown: writes in flight finish, no new ones start."""
        return self.applier.stopping

    @stopping.setter
    def stopping(self, event: threading.Event) -> None:
        self.applier.stopping = event

    @property
    def failed_actions(self) -> int:
        return self.applier.failed_actions

    def close(self, timeout: float = 4.0) -> None:
        """After the controllers stopped: write pending status and send queued Events within `timeout`
        seconds in all (status first, Events get the rest, at least a second), release the Pod writers."""
        deadline = self._monotonic() + timeout
        self.status_writer.close(timeout * 0.6)
        self._recorder.close(max(1.0, deadline - self._monotonic()))
        self.applier.close()

    # -- the pass -------------------------------------------------------------------------------------
    def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        obj = self.views.clusters.get(ns, name)
        try:
            return self._reconcile(key, obj)
        finally:
            with self._passes_lock:
                self.passes += 1
                if obj is not None:
                    self.last_seen[key] = rv_number(obj)
                else:
                    self.last_seen.pop(key, None)

    def _reconcile(self, key: str, obj: JSON | None) -> float | None:
        ns, name = split_key(key)
        if obj is None:
            self.expectations.clear_cluster(ns, name)
            self._last_status_write.pop(key, None)
            self.status_writer.forget(ns, name)
            self._failed_generation.pop(self._uid_by_key.pop(key, ""), None)
            return None
        managed_by = (obj.get("spec") or {}).get("managedBy")
        if managed_by and managed_by != c.MANAGED_BY_KUBERAY:
            log.debug("raycluster %s is managed by %s; skipping", key, managed_by)
            return None
        ctx = Pass(obj=obj, views=self.views, now=self._now(), monotonic=self._monotonic())
        if is_deleting(obj):
            if has_finalizer(obj):  # GCS-FT Redis cleanup (raycluster.deletion); no other cluster pays for it
                return self._redis.on_deletion(ctx)
            return None
        try:
            cluster = RayCluster.model_validate(obj)
            problem = self._validate(cluster)
        except ValidationError as exc:
            cluster, problem = None, _first_error(exc)
        except Exception as exc:  # validation itself failed on this spec: report it, retry slowly
            return self._report_failure(ctx, exc)
        if problem is not None or cluster is None:
            self._report_invalid(ctx, problem or "invalid spec")
            return None
        if needs_finalizer(obj, cleanup_enabled=self._settings.enable_gcs_ft_redis_cleanup):
            return self._redis.ensure_finalizer(ctx)
        try:
            return self._reconcile_valid(replace(ctx, cluster=cluster), cluster)
        except Exception as exc:  # a builder or the planner failed on this spec: report it, retry slowly
            return self._report_failure(ctx, exc)

    def _report_failure(self, ctx: Pass, exc: Exception) -> float:
        """The pass failed with `exc`: condition + one Warning event, ERROR log once per uid/generation."""
        generation = generation_of(ctx.obj)
        if self._failed_generation.get(ctx.uid) != generation:
            self._failed_generation[ctx.uid] = generation
            self._uid_by_key[ctx.key] = ctx.uid
            unexpected = type(exc).__module__ == "builtins"
            log.error(
                "raycluster %s (generation %d): cannot reconcile: %s",
                ctx.key,
                generation,
                spec_problem(exc) if not unexpected else f"{type(exc).__name__}: {exc}",
                exc_info=exc if unexpected else None,
            )
        self._report_invalid(ctx, spec_problem(exc))
        return self._settings.requeue_seconds

    def _reconcile_valid(self, ctx: Pass, cluster: RayCluster) -> float | None:
        existing = {("Service", name_of(o)) for o in ctx.services()}
        existing |= {("Secret", name_of(o)) for o in ctx.secrets()}
        existing |= self.applier.ensured(ctx.uid)
        groups = ["", *(g.group_name for g in cluster.spec.worker_group_specs or [])]
        unsatisfied = frozenset(
            g for g in groups if not self.expectations.satisfied((ctx.namespace, ctx.name, g))
        )
        build = self._settings.build
        plan = plan_cluster(
            cluster,
            pods=ctx.pods(),
            children=desired_children(cluster, settings=build, existing=existing, token=self._token),
            existing=existing,
            gates=self._settings.gates,
            unsatisfied=unsatisfied,
            make_pod=pod_factory(cluster, settings=build),
            rand5=rand5,
            random_delete=self._settings.enable_random_pod_delete,
            max_creates=self._settings.max_creates_per_pass,
        )
        applied = self.applier.apply(ctx, plan.actions)
        self.applier.apply(ctx, [RecordEvent(*event) for event in summarize(applied)])
        outcome = applied.failure or (Outcome(plan.error, plan.marker) if plan.error else Outcome())
        changed = self._write_status(ctx, cluster, plan, outcome)
        if plan.truncated and outcome.error is None:
            return 0  # the next chunk: at the back of the queue, from the then-current spec and cache
        busy = outcome.error is not None or changed or bool(plan.actions) or bool(unsatisfied)
        return self._settings.short_requeue_seconds if busy else self._settings.requeue_seconds

    # -- status ---------------------------------------------------------------------------------------
    def _current_status(self, ctx: Pass) -> JSON:
        """The status as it will be once pending writes land (the cache's if none is pending)."""
        pending = self.status_writer.pending(ctx.namespace, ctx.name)
        return dict(pending if pending is not None else ctx.obj.get("status") or {})

    def _write_status(self, ctx: Pass, cluster: RayCluster, plan: Plan, outcome: Outcome) -> bool:
        """Compute the status and write it if `write_decision` says so; True when it changed."""
        old = self._current_status(ctx)
        services = {name_of(s): s for s in ctx.services()}
        new = compute_status(
            cluster,
            old,
            pods=ctx.pods(),
            head_service=services.get(names.head_service_name(cluster)),
            phase=plan.phase,
            outcome=outcome,
            now=ctx.now,
        )
        mark_spec_valid(new, now=ctx.now)
        decision = write_decision(
            old,
            new,
            last_write=self._last_status_write.get(ctx.key),
            now=ctx.monotonic,
            interval=self._settings.status_interval,
        )
        if decision == "write":
            self.applier.apply(ctx, [WriteStatus(new)])
            self._last_status_write[ctx.key] = ctx.monotonic
        return decision != "skip"  # deferred counters: requeued soon, written then

    def _report_invalid(self, ctx: Pass, problem: str) -> None:
        report = invalid_spec(
            self._current_status(ctx),
            problem,
            key=ctx.key,
            generation=generation_of(ctx.obj),
            now=ctx.now,
        )
        if report is not None:
            status, message = report
            self.applier.apply(
                ctx, [RecordEvent("Warning", "InvalidRayClusterSpec", message), WriteStatus(status)]
            )


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
