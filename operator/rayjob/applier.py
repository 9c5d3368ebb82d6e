"""The one place the RayJob controller acts: the per-pass context and the executor of `Decision.actions`.

`JobPass` carries what one reconcile pass is about (the raw RayJob, its parsed model, the caches, the
cluster's Ray token); `RayJobApplier.apply` performs the typed actions of `ray_operator.rayjob.actions` in
order: finalizer, batch-scheduler objects, the owned RayCluster, the submitter Job, HTTP submit and stop,
the RayJob's head Service, deletions (cluster, worker groups suspended, submitter, the RayJob itself) and
Events. It returns the requeue delay the Decision asked for. A failed Kubernetes write records a Warning
Event naming what failed and stops the remaining actions; the pass is retried soon (the next pass decides
again from what it then observes).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ray_operator import constants as c
from ray_operator import schedulers
from ray_operator.builders import rayjob as kuberay
from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayCluster, RayJob
from ray_operator.rayjob import actions as act
from ray_operator.rayjob.dashboard import DashboardClient, SubmitError
from ray_operator.rayjob.submitter import dashboard_address, rayjob_cluster, submitter_job
from ray_operator.runtime.cache import Cache
from ray_operator.runtime.events import EventRecorder
from rayside.kubeclient import AlreadyExists, Conflict, Invalid, KubeClient, KubeError, NotFound
from rayside.objects import (
    JOBS,
    JSON,
    RAYCLUSTERS,
    RAYJOBS,
    SERVICES,
    ObjectIdentity,
    controller_of,
    labels_of,
    name_of,
    path_of,
    resource_of,
    uid_of,
)

log = logging.getLogger(__name__)

FINALIZER = "ray.io/rayjob-finalizer"
BACKGROUND = {"propagationPolicy": "Background"}


@dataclass(frozen=True)
class Views:
    """The informer caches a RayJob pass reads (clusters, Pods, Services, Secrets shared with the
    RayCluster controller; RayJobs and submitter Jobs its own)."""

    rayjobs: Cache
    jobs: Cache
    clusters: Cache
    pods: Cache
    services: Cache
    secrets: Cache


@dataclass(frozen=True)
class JobPass(ObjectIdentity):
    """One reconcile pass over one RayJob."""

    obj: JSON
    job: RayJob
    views: Views
    token_of: Callable[[JobPass], str | None]
    """Reads the Ray token of the pass's cluster (`status.rayClusterName`); never logged."""

    def token(self) -> str | None:
        """The Ray token of the RayJob's cluster, or None (read lazily, only when the dashboard is asked)."""
        return self.token_of(self)

    @property
    def dashboard_url(self) -> str:
        return str((self.obj.get("status") or {}).get("dashboardURL") or "")

    @property
    def cluster_name(self) -> str:
        return str((self.obj.get("status") or {}).get("rayClusterName") or "")

    def owned(self, obj: JSON | None) -> JSON | None:
        """`obj` if this RayJob controls it, else None."""
        owner = controller_of(obj) if obj is not None else None
        return obj if owner is not None and owner.get("uid") == uid_of(self.obj) else None

    def cluster(self, name: str) -> JSON | None:
        return self.views.clusters.get(self.namespace, name)


class ActionFailed(Exception):
    """A Kubernetes write of an action failed; the message names the action and the API's answer."""


class RayJobApplier:
    """Executes RayJob actions; the only code of the RayJob controller that writes."""

    def __init__(
        self,
        client: KubeClient,
        *,
        dashboard: DashboardClient,
        recorder: EventRecorder,
        settings: BuildSettings,
    ) -> None:
        self._client = client
        self._dashboard = dashboard
        self._recorder = recorder
        self._settings = settings
        self.failed_actions = 0
        self.submissions = 0

    def event(self, ctx: JobPass, type_: str, reason: str, message: str) -> None:
        self._recorder.record(ctx.obj, type_=type_, reason=reason, message=message)

    def apply(self, ctx: JobPass, actions: Sequence[act.Action]) -> float | None:
        """Perform `actions` in order; returns the requeue delay asked for. Raises ActionFailed."""
        requeue: float | None = None
        for action in actions:
            if isinstance(action, act.RequeueAfter):
                requeue = action.seconds
                continue
            try:
                self._run(ctx, action)
            except KubeError as exc:
                self.failed_actions += 1
                what = type(action).__name__
                message = f"{what} failed: {type(exc).__name__} ({exc.status}): {exc.message}"
                log.debug("rayjob %s: %s", ctx.key, message)
                self.event(ctx, "Warning", f"FailedTo{what}", message)
                raise ActionFailed(message) from None
        return requeue

    def _run(self, ctx: JobPass, action: act.Action) -> None:
        if isinstance(action, act.RecordEvent):
            self.event(ctx, action.type, action.reason, action.message)
        elif isinstance(action, act.AddFinalizer):
            self._add_finalizer(ctx)
        elif isinstance(action, act.BatchSchedule):
            self._batch_schedule(ctx)
        elif isinstance(action, act.CreateCluster):
            self._create_cluster(ctx, action)
        elif isinstance(action, act.CreateSubmitterJob):
            self._create_submitter(ctx, action)
        elif isinstance(action, act.SubmitHTTP):
            self._submit(ctx, action)
        elif isinstance(action, act.StopRayJob):
            self._stop(ctx, action)
        elif isinstance(action, act.EnsureHeadService):
            self._ensure_head_service(ctx, action)
        elif isinstance(action, act.DeleteCluster):
            self._delete_cluster(ctx, action.cluster)
        elif isinstance(action, act.DeleteWorkers):
            self._suspend_workers(ctx, action.cluster)
        elif isinstance(action, act.DeleteSubmitter):
            self._delete(ctx, JOBS.path(ctx.namespace, ctx.name), "submitter Job")
        elif isinstance(action, act.DeleteSelf):
            self._delete(ctx, RAYJOBS.path(ctx.namespace, ctx.name), "RayJob")
        elif isinstance(action, act.CleanupBatchScheduling):
            self._batch_cleanup(ctx)

    # -- the RayJob itself -----------------------------------------------------------------------------
    def _add_finalizer(self, ctx: JobPass) -> None:
        finalizers = list((ctx.obj.get("metadata") or {}).get("finalizers") or [])
        if FINALIZER in finalizers:
            return
        meta = ctx.obj.get("metadata") or {}
        body = {
            "metadata": {"finalizers": [*finalizers, FINALIZER], "resourceVersion": meta["resourceVersion"]}
        }
        updated = self._client.patch(RAYJOBS.path(ctx.namespace, ctx.name), body)
        ctx.views.rayjobs.observe(updated)

    def remove_finalizer(self, ctx: JobPass) -> None:
        """Drop our finalizer from a RayJob being deleted (a changed or vanished RayJob is left alone)."""
        meta = ctx.obj.get("metadata") or {}
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        body = {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}}
        with contextlib.suppress(NotFound, Conflict):
            self._client.patch(RAYJOBS.path(ctx.namespace, ctx.name), body)

    # -- children --------------------------------------------------------------------------------------
    def _create(self, ctx: JobPass, obj: JSON, *, what: str) -> bool:
        """Create `obj` in the RayJob's namespace; False (no event) when one of that name exists already."""
        try:
            self._client.create(resource_of(obj).path(ctx.namespace), obj)
        except AlreadyExists:
            log.debug("rayjob %s: %s %s exists already", ctx.key, what, name_of(obj))
            return False
        log.debug("rayjob %s: created %s %s", ctx.key, what, name_of(obj))
        return True

    def _batch_schedule(self, ctx: JobPass) -> None:
        scheduler = schedulers.scheduler_of(ctx.job, self._settings)
        if scheduler is None:
            return
        for obj in scheduler.objects_on_submission(ctx.job):
            self._create(ctx, obj, what=str(obj.get("kind")))

    def _batch_cleanup(self, ctx: JobPass) -> None:
        scheduler = schedulers.scheduler_of(ctx.job, self._settings)
        if scheduler is None:
            return
        raw = ctx.owned(ctx.cluster(ctx.cluster_name)) if ctx.cluster_name else None
        live = RayCluster.model_validate(raw) if raw is not None else None
        for obj in scheduler.objects_on_completion(ctx.job, live):
            path = path_of(obj)
            try:
                self._client.patch(path, {"spec": obj.get("spec") or {}})
            except NotFound:
                self._create(ctx, obj, what=str(obj.get("kind")))

    def _create_cluster(self, ctx: JobPass, action: act.CreateCluster) -> None:
        obj = rayjob_cluster(ctx.job, name=action.name, job_id=action.job_id, settings=self._settings)
        obj = schedulers.stamp(ctx.job, obj, group="", settings=self._settings)
        if self._create(ctx, obj, what="RayCluster"):
            self.event(
                ctx, "Normal", "CreatedRayCluster", f"Created RayCluster {ctx.namespace}/{action.name}"
            )

    def _create_submitter(self, ctx: JobPass, action: act.CreateSubmitterJob) -> None:
        name = ctx.cluster_name
        raw = ctx.cluster(name)
        with_cluster = not action.dashboard_url
        if raw is None and with_cluster:  # created together with the cluster: build what was just created
            raw = rayjob_cluster(ctx.job, name=name, job_id=action.job_id, settings=self._settings)
            raw["metadata"]["namespace"] = ctx.namespace
        if raw is None:
            raise NotFound(404, "NotFound", f"RayCluster {ctx.namespace}/{name} is not in the cache yet")
        cluster = RayCluster.model_validate(raw)
        obj = submitter_job(
            ctx.job,
            cluster=cluster,
            job_id=action.job_id,
            dashboard_url=action.dashboard_url or dashboard_address(cluster, self._settings),
            settings=self._settings,
            with_cluster=with_cluster,
        )
        template = obj["spec"]["template"]
        obj["spec"]["template"] = schedulers.stamp(
            ctx.job, template, group=c.SUBMITTER_GROUP, settings=self._settings
        )
        if self._create(ctx, obj, what="submitter Job"):
            self.event(ctx, "Normal", "CreatedJob", f"Created Kubernetes Job {ctx.namespace}/{ctx.name}")

    def _ensure_head_service(self, ctx: JobPass, action: act.EnsureHeadService) -> None:
        raw = ctx.cluster(action.cluster)
        if raw is None:
            return
        want = kuberay.rayjob_head_service(ctx.job, RayCluster.model_validate(raw), settings=self._settings)
        have = ctx.views.services.get(ctx.namespace, name_of(want))
        if have is None:
            if self._create(ctx, want, what="head Service"):
                self.event(
                    ctx, "Normal", "CreatedService", f"Created Service {ctx.namespace}/{name_of(want)}"
                )
            return
        selector = want["spec"]["selector"]
        if (have.get("spec") or {}).get("selector") != selector and ctx.owned(have) is not None:
            self._client.patch(SERVICES.path(ctx.namespace, name_of(want)), {"spec": {"selector": selector}})

    # -- deletions -------------------------------------------------------------------------------------
    def _delete(self, ctx: JobPass, path: str, what: str) -> None:
        try:
            self._client.delete(path, BACKGROUND)
        except NotFound:
            return
        log.debug("rayjob %s: deleted %s", ctx.key, what)

    def _delete_cluster(self, ctx: JobPass, name: str) -> None:
        raw = ctx.cluster(name)
        if raw is not None and ctx.owned(raw) is None:
            log.debug("rayjob %s: RayCluster %s is not ours; not deleting it", ctx.key, name)
            return
        self._delete(ctx, RAYCLUSTERS.path(ctx.namespace, name), "RayCluster")
        self.event(ctx, "Normal", "DeletedRayCluster", f"Deleted RayCluster {ctx.namespace}/{name}")

    def _suspend_workers(self, ctx: JobPass, name: str) -> None:
        raw = ctx.owned(ctx.cluster(name))
        if raw is None:
            return
        groups = (raw.get("spec") or {}).get("workerGroupSpecs") or []
        ops: list[JSON] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": raw["metadata"]["resourceVersion"]}
        ]
        ops += [
            {"op": "add", "path": f"/spec/workerGroupSpecs/{index}/suspend", "value": True}
            for index, group in enumerate(groups)
            if not group.get("suspend")
        ]
        if len(ops) == 1:
            return
        try:
            # not written through to the shared cache: the RayCluster controller must see this change as
            # a watch event (a cached copy that is already current would swallow it)
            self._client.patch(RAYCLUSTERS.path(ctx.namespace, name), ops, patch_type="json")
        except (Conflict, Invalid):  # changed meanwhile: the next pass decides again
            return
        self.event(
            ctx,
            "Normal",
            "DeletedWorkers",
            f"Suspended the worker groups of RayCluster {ctx.namespace}/{name}",
        )

    # -- the Ray dashboard -----------------------------------------------------------------------------
    def _submit(self, ctx: JobPass, action: act.SubmitHTTP) -> None:
        body = kuberay.http_submit_body(ctx.job, job_id=action.job_id)
        try:
            self._dashboard.submit(ctx.dashboard_url, body, ctx.token())
        except SubmitError as exc:
            self.event(ctx, "Warning", "FailedToSubmitRayJob", f"Ray job {action.job_id}: {exc}")
            return
        self.submissions += 1
        self.event(
            ctx, "Normal", "SubmittedRayJob", f"Submitted Ray job {action.job_id} to {ctx.dashboard_url}"
        )

    def _stop(self, ctx: JobPass, action: act.StopRayJob) -> None:
        if not ctx.dashboard_url:
            return
        if self._dashboard.stop(ctx.dashboard_url, action.job_id, ctx.token()):
            self.event(ctx, "Normal", "StoppedRayJob", f"Stopped Ray job {action.job_id}")


def is_ours(obj: JSON) -> bool:
    """A Job or RayCluster created for a RayJob (label `ray.io/originated-from-crd: RayJob`)."""
    return labels_of(obj).get(c.LABEL_ORIGINATED_FROM_CRD) == c.KIND_RAYJOB


__all__ = ["FINALIZER", "ActionFailed", "JobPass", "RayJobApplier", "Views", "is_ours"]
