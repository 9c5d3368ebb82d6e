"""The RayService controller's decisions as one pure function: `decide(Observed) -> Decision`.

A pass, in order: ignore objects managed elsewhere; delete clusters left over from earlier upgrades (after
`rayClusterDeletionDelaySeconds`); finalizer add/remove; validation; the suspend state machine; create the
pending cluster or update a cluster in place (worker groups appended); Serve configs (in place for
Serve-config-only changes); where the head/serve Services point; the Gateway and HTTPRoute of an
incremental upgrade; then the status: promotion, rollback completion, deadlines, whether a new pending
cluster is needed (a changed hash of `rayClusterConfig`, which ignores replicas, min/max, workersToDelete,
tolerations and suspend), endpoints and conditions.

Beyond KubeRay: annotation `rayside.io/upgrade-timeout` (Go duration or seconds) bounds an upgrade. When
it runs out the pending cluster is dropped (NewCluster) or rolled back (incremental), the old cluster keeps
serving, and `UpgradeInProgress=False/UpgradeTimeout` says why; the same spec is not tried again until
the RayService's generation changes. Condition `ServeConfigApplied` carries Serve's own error text when a
config is rejected or an application fails to deploy.
"""

from __future__ import annotations

from datetime import timedelta

from ray_operator import constants as c
from ray_operator.rayservice import conditions as cond
from ray_operator.rayservice import serving
from ray_operator.rayservice.observed import (
    DEFAULT_DELETION_DELAY,
    FINALIZER,
    READY,
    REQUEUE_SECONDS,
    ROLLBACK_IN_PROGRESS,
    SUSPENDED,
    SUSPENDING,
    UPGRADE_IN_PROGRESS,
    Decision,
    DeleteCluster,
    DeleteObject,
    Observed,
    RecordEvent,
    SetFinalizer,
)
from ray_operator.rayservice.passctx import Ctx
from rayside.objects import JSON, is_deleting, key_of, meta_of

__all__ = ["decide"]


def decide(o: Observed) -> Decision:
    """Everything one pass does for one RayService (see the module docstring for the order)."""
    spec = o.obj.get("spec") or {}
    managed_by = spec.get("managedBy")
    if managed_by and managed_by != c.MANAGED_BY_KUBERAY:
        return Decision(requeue=None, delete_at=dict(o.delete_at))
    ctx = Ctx(o)
    deleting = is_deleting(o.obj)
    leftovers = _clean_dangling(ctx, immediately=deleting)
    if deleting:
        if not o.clusters:
            ctx.actions.append(SetFinalizer(False))
            ctx.requeue = None
        return ctx.decision(write=False)
    if FINALIZER not in (meta_of(o.obj).get("finalizers") or []):
        ctx.actions.append(SetFinalizer(True))
        return ctx.decision(write=False)
    if o.problem is not None or o.service is None:
        return _invalid(ctx, o.problem or "the RayService spec is invalid")
    if _suspend(ctx, bool(o.service.spec.suspend)):
        return ctx.decision()
    if cond.reason_of(ctx.status, READY) == "InitializingTimeout":
        ctx.requeue = REQUEUE_SECONDS if leftovers else None
        return ctx.decision()
    serving.run(ctx, o.service)
    return ctx.decision()


def _deletion_delay(o: Observed) -> float:
    delay = (o.obj.get("spec") or {}).get("rayClusterDeletionDelaySeconds")
    return float(delay) if isinstance(delay, int) and delay >= 0 else DEFAULT_DELETION_DELAY


def _clean_dangling(ctx: Ctx, *, immediately: bool) -> bool:
    """Schedule and perform deletion of owned clusters that are neither active nor pending; True while any
    remain."""
    o = ctx.o
    keep = set() if immediately else {ctx.active_name, ctx.pending_name} - {""}
    delay = timedelta(seconds=0 if immediately else _deletion_delay(o))
    remaining = False
    for name, view in o.clusters.items():
        if name in keep:
            continue
        remaining = True
        if view.deleting:
            continue
        due = o.delete_at.get(name)
        if due is None:
            due = o.now + delay
            ctx.delete_at[name] = due
        if o.now >= due:
            ctx.actions.append(
                DeleteCluster(name, "the RayService is deleted" if immediately else "dangling")
            )
            ctx.delete_at.pop(name, None)
        else:
            ctx.delete_at[name] = due
    return remaining


def _invalid(ctx: Ctx, problem: str) -> Decision:
    o = ctx.o
    metadata = problem.startswith(("RayService name", "annotation"))
    reason = "InvalidRayServiceMetadata" if metadata else "InvalidRayServiceSpec"
    text = problem if metadata else f"The RayService spec is invalid: {problem}"
    before = cond.get_condition(ctx.status, READY)
    cond.set_condition(ctx.status, READY, "False", "ValidationFailed", text, now=o.now)
    ctx.stamp_generation()
    if before is None or before.get("message") != text or before.get("reason") != "ValidationFailed":
        ctx.actions.append(RecordEvent("Warning", reason, f"{key_of(o.obj)}: {text}"))
    ctx.requeue = None
    return ctx.decision()


def _reset_serving(status: JSON) -> None:
    status["activeServiceStatus"] = {}
    status["pendingServiceStatus"] = {}
    status["numServeEndpoints"] = 0
    status["serviceStatus"] = ""


def _suspend(ctx: Ctx, requested: bool) -> bool:
    """The suspend state machine; True when the pass ends here."""
    o, status = ctx.o, ctx.status
    if cond.is_true(status, SUSPENDED):
        if requested:
            ctx.requeue = None
            return True
        ctx.stamp_generation()
        cond.set_condition(status, SUSPENDED, "False", "RayServiceResumed", "RayService resumed", now=o.now)
        message = "RayService is initializing after resuming from suspend."
        for type_ in (READY, UPGRADE_IN_PROGRESS):
            cond.remove_condition(status, type_)
            cond.set_condition(status, type_, "False", "Initializing", message, now=o.now)
        return False
    if not cond.is_true(status, SUSPENDING):
        if not requested:
            return False
        ctx.stamp_generation()
        cond.set_condition(status, SUSPENDING, "True", "SuspendRequested", "Suspend requested", now=o.now)
        for type_ in (READY, UPGRADE_IN_PROGRESS, ROLLBACK_IN_PROGRESS):
            cond.set_condition(
                status, type_, "False", "SuspendInProgress", "RayService is suspending", now=o.now
            )
        _reset_serving(status)
        return True
    _delete_owned(ctx)
    return True


def _delete_owned(ctx: Ctx) -> None:
    """Suspending: delete every owned cluster, Service, Gateway and HTTPRoute; Suspended once none remain."""
    o, status = ctx.o, ctx.status
    remaining = False
    for name, view in o.clusters.items():
        remaining = True
        if not view.deleting:
            ctx.actions.append(DeleteCluster(name, "suspend"))
    for name, svc in o.services.items():
        if serving.owned_by_me(svc, o.obj):
            remaining = True
            ctx.actions.append(DeleteObject("Service", name, "suspend"))
    for kind, obj in (("Gateway", o.gateway), ("HTTPRoute", o.route)):
        if obj is not None:
            remaining = True
            ctx.actions.append(DeleteObject(kind, str(meta_of(obj).get("name")), "suspend"))
    if remaining:
        cond.set_condition(
            status, SUSPENDING, "True", "SuspendInProgress", "Deleting owned resources", now=o.now
        )
        return
    cond.set_condition(status, SUSPENDING, "False", "SuspendComplete", "Suspend complete", now=o.now)
    cond.set_condition(status, SUSPENDED, "True", "SuspendComplete", "RayService is suspended.", now=o.now)
    cond.set_condition(status, READY, "False", "SuspendComplete", "RayService is suspended.", now=o.now)
    for type_ in (UPGRADE_IN_PROGRESS, ROLLBACK_IN_PROGRESS):
        cond.set_condition(status, type_, "False", "SuspendComplete", "RayService is suspended.", now=o.now)
    _reset_serving(status)
