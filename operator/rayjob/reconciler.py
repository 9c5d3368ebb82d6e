"""The RayJob reconciler: observe, decide with `next_state`, write status on change, act (applier).

One pass over one RayJob: read it from the cache, its RayCluster and head Pod (caches shared with the
RayCluster controller), its submitter (the batch Job, or the head Pod's sidecar container), and, when
`wants_dashboard(status)`, the Ray job from the cluster's dashboard with the cluster's token (from its
Secret; never logged). The frozen `Observed` goes to `state.next_state`; the new status is written through
the status subresource *before* the actions run and only when it differs, so an attempt's submission id
and cluster name are on the API server before anything is created or submitted for them (a restarted
operator never picks a second id for the same attempt). Then the applier executes the actions in order
and the pass returns the requeue delay the Decision asked for.

A RayJob being deleted with our finalizer first has a live Ray job stopped (best effort), then loses the
finalizer; garbage collection removes what it owns.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import ValidationError

from ray_operator import constants as c
from ray_operator import schedulers
from ray_operator.builders import names
from ray_operator.builders.settings import BuildSettings
from ray_operator.features import FeatureGates
from ray_operator.models import RayCluster, RayJob
from ray_operator.raycluster.reconciler import rand5
from ray_operator.rayjob.actions import RecordEvent, RequeueAfter
from ray_operator.rayjob.applier import FINALIZER, ActionFailed, JobPass, RayJobApplier, Views
from ray_operator.rayjob.dashboard import DashboardClient
from ray_operator.rayjob.observed import (
    ClusterView,
    Dashboard,
    DeploymentStatus,
    Observed,
    Spec,
    Status,
    SubmissionMode,
    SubmitterView,
    Timeouts,
    wants_dashboard,
)
from ray_operator.rayjob.readers import cluster_view, sidecar_view, submitter_view
from ray_operator.rayjob.state import next_state
from ray_operator.rayjob.statusbody import read_status, status_body
from ray_operator.rayjob.submitter import dashboard_address
from ray_operator.validation_jobs import validate_rayjob
from rayside.kubeclient import KubeClient, KubeError, NotFound
from rayside.objects import (
    JSON,
    RAYJOBS,
    SECRETS,
    generation_of,
    is_deleting,
    labels_of,
    rv_number,
    split_key,
)

log = logging.getLogger(__name__)
RETRY_SECONDS = 2.0
"""Requeue after a failed action or status write."""


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"spec field {where}: {err.get('msg')}"


def _decode(secret: JSON | None) -> str | None:
    encoded = ((secret or {}).get("data") or {}).get("auth_token")
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


class RayJobReconciler:
    """Reconciles RayJobs from informer caches; `reconcile(key)` is the controller's callback."""

    def __init__(
        self,
        client: KubeClient,
        *,
        views: Views,
        applier: RayJobApplier,
        dashboard: DashboardClient,
        build: BuildSettings,
        gates: FeatureGates,
        timeouts: Timeouts | None = None,
        delete_self_after_finish: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        suffix: Callable[[], str] | None = None,
    ) -> None:
        self._client = client
        self.views = views
        self.applier = applier
        self._dashboard = dashboard
        self._build = build
        self._gates = gates
        self._timeouts = timeouts or Timeouts()
        self._delete_self = delete_self_after_finish
        self._clock = clock
        self._suffix = suffix or rand5
        self.passes = 0
        self.last_seen: dict[str, int] = {}
        self.status_writes = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self._dashboard.close()

    # -- the pass -------------------------------------------------------------------------------------
    def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        obj = self.views.rayjobs.get(ns, name)
        try:
            return None if obj is None else self._reconcile(obj)
        finally:
            with self._lock:
                self.passes += 1
                if obj is not None:
                    self.last_seen[key] = rv_number(obj)
                else:
                    self.last_seen.pop(key, None)

    def _reconcile(self, obj: JSON) -> float | None:
        managed_by = (obj.get("spec") or {}).get("managedBy")
        if managed_by and managed_by != c.MANAGED_BY_KUBERAY:
            return None  # e.g. MultiKueue: another controller owns this RayJob
        status = read_status(obj.get("status"))
        if is_deleting(obj):
            self._finalize(self._bare_pass(obj), status)
            return None
        try:
            job = RayJob.model_validate(obj)
        except ValidationError as exc:
            return self._unparseable(obj, status, _first_error(exc))
        ctx = JobPass(obj=obj, job=job, views=self.views, token_of=self._token)
        observed = self._observe(ctx, job, status, validate_rayjob(job, self._build))
        decision = next_state(observed, self._gates)
        try:
            ctx = self._write_status(ctx, decision.status)
            return self.applier.apply(ctx, decision.actions)
        except (ActionFailed, KubeError) as exc:
            log.debug("rayjob %s: pass failed: %s", ctx.key, exc)
            return RETRY_SECONDS

    def _bare_pass(self, obj: JSON) -> JobPass:
        """A pass over a RayJob whose spec is not read (deletion, unreadable spec): events, status, stop."""
        job = RayJob.model_construct(metadata=obj.get("metadata") or {})
        return JobPass(obj=obj, job=job, views=self.views, token_of=self._token)

    def _unparseable(self, obj: JSON, status: Status, problem: str) -> float | None:
        """A spec the model cannot read: only a RayJob with nothing running is moved to ValidationFailed
        (events and status only); an attempt under way continues until the spec reads again."""
        meta = obj.get("metadata") or {}
        spec = Spec(name=str(meta.get("name")), namespace=str(meta.get("namespace") or "default"))
        idle = (DeploymentStatus.NEW, DeploymentStatus.SUSPENDED, DeploymentStatus.VALIDATION_FAILED)
        if status.deployment not in idle:
            return self._timeouts.requeue
        observed = Observed(
            spec=spec,
            status=status,
            now=self._clock(),
            generation=generation_of(obj),
            validation_error=problem,
        )
        decision = next_state(observed, self._gates)
        kept = [a for a in decision.actions if isinstance(a, RecordEvent | RequeueAfter)]
        try:
            ctx = self._write_status(self._bare_pass(obj), decision.status)
            return self.applier.apply(ctx, kept)
        except (ActionFailed, KubeError):
            return RETRY_SECONDS

    # -- observing ------------------------------------------------------------------------------------
    def _observe(self, ctx: JobPass, job: RayJob, status: Status, problem: str | None) -> Observed:
        spec = Spec.from_rayjob(job, delete_self_after_finish=self._delete_self)
        spec = replace(spec, submitter_in_gang=schedulers.submitter_in_gang(job, self._build))
        cluster_obj = ctx.cluster(status.cluster_name) if status.cluster_name else None
        if cluster_obj is not None and not spec.selected_cluster and ctx.owned(cluster_obj) is None:
            cluster_obj = None  # a cluster of that name that is not ours is not our cluster
        head = self._head_pod(ctx, status.cluster_name) if cluster_obj is not None else None
        view = self._cluster_view(ctx, cluster_obj, head)
        submitter = SubmitterView()
        if spec.mode is SubmissionMode.K8S_JOB:
            submitter = submitter_view(ctx.owned(self.views.jobs.get(ctx.namespace, ctx.name)))
        elif spec.mode is SubmissionMode.SIDECAR:
            submitter = sidecar_view(head)
        dashboard: Dashboard = None
        if wants_dashboard(status):
            dashboard = self._dashboard.job_info(status.dashboard_url, status.job_id, ctx.token())
        finalizers = (ctx.obj.get("metadata") or {}).get("finalizers") or []
        return Observed(
            spec=spec,
            status=status,
            now=self._clock(),
            cluster=view,
            submitter=submitter,
            dashboard=dashboard,
            generation=generation_of(ctx.obj),
            validation_error=problem,
            finalizer_present=FINALIZER in finalizers,
            suffix=self._suffix(),
            timeouts=self._timeouts,
        )

    def _head_pod(self, ctx: JobPass, cluster: str) -> JSON | None:
        pods = self.views.pods.by_cluster(ctx.namespace, cluster)
        heads = [p for p in pods if labels_of(p).get(c.LABEL_NODE_TYPE) == c.NODE_TYPE_HEAD]
        live = [p for p in heads if not is_deleting(p)]
        chosen = live or heads
        return chosen[0] if chosen else None

    def _cluster_view(self, ctx: JobPass, cluster_obj: JSON | None, head: JSON | None) -> ClusterView:
        if cluster_obj is None:
            return cluster_view(None)
        annotations = (cluster_obj.get("metadata") or {}).get("annotations") or {}
        restart_disabled = annotations.get(c.ANN_DISABLE_PROVISIONED_HEAD_RESTART) == "true"
        url = ""
        with contextlib.suppress(ValidationError):
            url = dashboard_address(RayCluster.model_validate(cluster_obj), self._build)
        return cluster_view(cluster_obj, head_pod=head, dashboard_url=url, restart_disabled=restart_disabled)

    def _token(self, ctx: JobPass) -> str | None:
        """The Ray token of the RayJob's cluster (None without token auth). Never logged."""
        raw = ctx.cluster(ctx.cluster_name) if ctx.cluster_name else None
        if raw is None:
            return None
        try:
            cluster = RayCluster.model_validate(raw)
        except ValidationError:
            return None
        auth = cluster.spec.auth_options
        if auth is None or auth.mode != "token":
            return None
        secret_name = auth.secret_name or names.auth_secret_name(cluster)
        secret = self.views.secrets.get(ctx.namespace, secret_name)
        if secret is None:
            try:
                secret = self._client.get(SECRETS.path(ctx.namespace, secret_name))
            except (NotFound, KubeError):
                return None
        return _decode(secret)

    # -- acting ---------------------------------------------------------------------------------------
    def _write_status(self, ctx: JobPass, status: Status) -> JobPass:
        """Write `status` if it differs from what the RayJob shows; the pass continues with the result."""
        cluster_obj = ctx.cluster(status.cluster_name) if status.cluster_name else None
        new = status_body(status, (cluster_obj or {}).get("status"))
        old = dict(ctx.obj.get("status") or {})
        if new == old:
            return ctx
        body = {k: None for k in old if k not in new} | new
        updated = self._client.patch(RAYJOBS.path(ctx.namespace, ctx.name, "status"), {"status": body})
        with self._lock:
            self.status_writes += 1
        self.views.rayjobs.observe(updated)
        return replace(ctx, obj=updated)

    def _finalize(self, ctx: JobPass, status: Status) -> None:
        finalizers = (ctx.obj.get("metadata") or {}).get("finalizers") or []
        if FINALIZER not in finalizers:
            return
        live = status.job_status.live and status.job_id and status.dashboard_url
        if live and self._dashboard.stop(status.dashboard_url, status.job_id, ctx.token()):
            self.applier.event(
                ctx, "Normal", "StoppedRayJob", f"Stopped Ray job {status.job_id} (RayJob deleted)"
            )
        self.applier.remove_finalizer(ctx)


__all__ = ["RETRY_SECONDS", "RayJobReconciler"]
