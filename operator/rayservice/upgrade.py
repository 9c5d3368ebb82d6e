"""Upgrade decisions and the status part of a RayService pass (pure): rollback, target-capacity and
traffic steps, promotion, rollback completion, upgrade and initializing deadlines, preparing a new pending
cluster, endpoints and conditions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from ray_operator.features import RAY_SERVICE_INCREMENTAL_UPGRADE
from ray_operator.models import RayService
from ray_operator.rayservice import conditions as cond
from ray_operator.rayservice import incremental as inc
from ray_operator.rayservice.observed import (
    ANN_INITIALIZING_TIMEOUT,
    ANN_UPGRADE_TIMEOUT,
    READY,
    ROLLBACK_IN_PROGRESS,
    UPGRADE_IN_PROGRESS,
    UPGRADE_TIMEOUT,
    ApplyServeConfig,
    ClusterView,
    Observed,
    RecordEvent,
)
from ray_operator.rayservice.passctx import Ctx
from rayside.objects import JSON, annotations_of, generation_of

if TYPE_CHECKING:
    from ray_operator.rayservice.serving import Serving

ACTIVE, PENDING = "activeServiceStatus", "pendingServiceStatus"


def incremental(service: RayService, o: Observed) -> bool:
    strategy = service.spec.upgrade_strategy
    return (
        o.settings.feature_gates.enabled(RAY_SERVICE_INCREMENTAL_UPGRADE)
        and strategy is not None
        and strategy.type == "NewClusterWithIncrementalUpgrade"
    )


def zero_downtime(service: RayService, o: Observed) -> bool:
    """Whether a changed cluster spec gets a new cluster (NewCluster, incremental) or not (None)."""
    strategy = service.spec.upgrade_strategy
    kind = strategy.type if strategy is not None else None
    if kind is None:
        return o.zero_downtime_env
    if kind == "NewClusterWithIncrementalUpgrade":
        return o.settings.feature_gates.enabled(RAY_SERVICE_INCREMENTAL_UPGRADE)
    return kind == "NewCluster"


def _options(service: RayService) -> tuple[int, int, int]:
    """(maxSurgePercent, stepSizePercent, intervalSeconds) of a validated incremental spec."""
    strategy = service.spec.upgrade_strategy
    options = strategy.cluster_upgrade_options if strategy is not None else None
    assert options is not None
    surge = 100 if options.max_surge_percent is None else options.max_surge_percent
    return surge, options.step_size_percent or 0, options.interval_seconds or 1


def levels(ctx: Ctx) -> inc.Levels:
    a, p = ctx.status.get(ACTIVE) or {}, ctx.status.get(PENDING) or {}
    return inc.Levels(
        active_tc=a.get("targetCapacity"),
        pending_tc=p.get("targetCapacity"),
        active_traffic=a.get("trafficRoutedPercent"),
        pending_traffic=p.get("trafficRoutedPercent"),
    )


def timed_out_generation(ctx: Ctx) -> bool:
    """An upgrade of this very generation already ran out of time: do not try it again."""
    item = cond.get_condition(ctx.status, UPGRADE_IN_PROGRESS)
    return (
        item is not None
        and item.get("reason") == UPGRADE_TIMEOUT
        and item.get("observedGeneration") == generation_of(ctx.o.obj)
    )


def decide_rollback(ctx: Ctx, s: Serving) -> None:
    o = ctx.o
    if s.active is None:
        ctx.actions.append(
            RecordEvent(
                "Warning", "RollbackImpossible", "Active cluster not found, rollback cannot be initiated"
            )
        )
        return
    if s.pending is None:
        return
    reason = cond.reason_of(ctx.status, ROLLBACK_IN_PROGRESS)
    if reason == UPGRADE_TIMEOUT:
        return  # a timed-out upgrade rolls back to the end
    if s.goal_hash == s.active.spec_hash:
        message = "Goal state reverted to original cluster, rolling back."
    elif s.goal_hash == s.pending.spec_hash:
        cond.remove_condition(ctx.status, ROLLBACK_IN_PROGRESS)
        return
    else:
        message = "Goal state changed mid-upgrade, rolling back to original cluster."
    cond.set_condition(
        ctx.status, ROLLBACK_IN_PROGRESS, "True", "DesiredClusterSpecChanged", message, now=o.now
    )


def _route_ready(ctx: Ctx) -> bool:
    o = ctx.o
    gw = (o.gateway or {}).get("status") or {}
    gw_ok = all(cond.is_true(gw, t) for t in ("Accepted", "Programmed"))
    parents = ((o.route or {}).get("status") or {}).get("parents") or []
    route_ok = any(all(cond.is_true(p, t) for t in ("Accepted", "ResolvedRefs")) for p in parents)
    return gw_ok and route_ok


def step_capacity(ctx: Ctx, service: RayService, s: Serving, view: ClusterView, role: str) -> None:
    """Move the `role` cluster's Serve target_capacity one step (PUT the config with the new value)."""
    if not (ctx.active_name and ctx.pending_name) or ctx.o.gateway is None or ctx.o.route is None:
        return
    if not _route_ready(ctx):
        return
    rollback = cond.is_true(ctx.status, ROLLBACK_IN_PROGRESS)
    now_levels = levels(ctx)
    if not inc.needs_capacity_update(now_levels, rollback=rollback):
        return
    surge, _, _ = _options(service)
    goal = inc.capacity_goal(now_levels, role=role, rollback=rollback, surge=surge)
    if goal is not None:
        cached = ctx.o.cached.get(view.name)
        if cached is None or cached.target_capacity != goal:
            raw = cached.raw if cached is not None else (service.spec.serve_config_v2 or "")
            config = yaml.safe_load(raw) if raw.strip() else {}
            config = {**(config if isinstance(config, dict) else {}), "target_capacity": goal}
            ctx.actions.append(ApplyServeConfig(view.name, config, raw, capacity=True))
            ctx.detail(ACTIVE if role == "active" else PENDING)["targetCapacity"] = goal
            message = f"{role} cluster {view.name}: target_capacity {goal}"
            ctx.actions.append(RecordEvent("Normal", "UpdatedServeTargetCapacity", message))


def next_weights(ctx: Ctx, service: RayService, s: Serving) -> tuple[int, int]:
    rollback = cond.is_true(ctx.status, ROLLBACK_IN_PROGRESS)
    _, step, interval = _options(service)
    side = ACTIVE if rollback else PENDING
    last = cond.parse_time((ctx.status.get(side) or {}).get("lastTrafficMigratedTime"))
    if s.pending is None:
        return levels(ctx).a_traffic, 0
    return inc.next_weights(
        levels(ctx),
        rollback=rollback,
        pending_ready=s.pending_ready,
        last_moved=last,
        now=ctx.o.now,
        step=step,
        interval=interval,
    )


def _record_traffic(ctx: Ctx, side: str, value: int) -> None:
    detail = ctx.detail(side)
    if detail.get("trafficRoutedPercent") != value or not detail.get("lastTrafficMigratedTime"):
        detail["lastTrafficMigratedTime"] = cond.fmt(ctx.o.now)
    detail["trafficRoutedPercent"] = value


def _promote(ctx: Ctx, service: RayService, s: Serving) -> bool:
    """Apply the Services' target to the status; True when the pending cluster is serving."""
    if s.target is None:
        return False
    if s.incremental and s.weights is not None:
        _record_traffic(ctx, ACTIVE, s.weights[0])
        if s.pending is not None:
            _record_traffic(ctx, PENDING, s.weights[1])
    pending_serving = bool(ctx.pending_name) and s.target == ctx.pending_name
    if s.incremental:
        now = levels(ctx)
        promote = (
            cond.is_true(ctx.status, UPGRADE_IN_PROGRESS)
            and not cond.is_true(ctx.status, ROLLBACK_IN_PROGRESS)
            and s.pending is not None
            and now.a_tc == 0
            and now.p_traffic == 100
        ) or (not ctx.active_name and bool(ctx.pending_name))
    else:
        promote = s.target != ctx.active_name and s.target == ctx.pending_name
    if promote:
        ctx.status[ACTIVE] = dict(ctx.status.get(PENDING) or {})
        ctx.status[PENDING] = {}
    return pending_serving


def _finish_rollback(ctx: Ctx, s: Serving) -> None:
    if not (s.incremental and cond.is_true(ctx.status, ROLLBACK_IN_PROGRESS)):
        return
    head_ready = s.pending is not None and s.pending.head_ready
    if not inc.rollback_done(levels(ctx), pending_head_ready=head_ready):
        return
    rolled = cond.get_condition(ctx.status, ROLLBACK_IN_PROGRESS) or {}
    ctx.status[PENDING] = {}
    cond.remove_condition(ctx.status, ROLLBACK_IN_PROGRESS)
    if rolled.get("reason") == UPGRADE_TIMEOUT:
        _give_up_condition(ctx, str(rolled.get("message") or "The upgrade timed out"))
    else:
        message = "Rollback complete, active Ray cluster exists and no pending Ray cluster"
        cond.set_condition(
            ctx.status, UPGRADE_IN_PROGRESS, "False", "NoPendingCluster", message, now=ctx.o.now
        )


def _give_up_condition(ctx: Ctx, why: str) -> None:
    """UpgradeInProgress=False/UpgradeTimeout, frozen at this generation (not retried until it moves)."""
    message = f"{why}. Change the spec to try again."
    cond.set_condition(ctx.status, UPGRADE_IN_PROGRESS, "False", UPGRADE_TIMEOUT, message, now=ctx.o.now)
    for item in ctx.status.get("conditions") or []:
        if item.get("type") == UPGRADE_IN_PROGRESS:
            item["observedGeneration"] = generation_of(ctx.o.obj)


def _upgrade_deadline(ctx: Ctx, s: Serving) -> None:
    """rayside: an upgrade older than `rayside.io/upgrade-timeout` is abandoned (incremental: rolled back)."""
    raw = annotations_of(ctx.o.obj).get(ANN_UPGRADE_TIMEOUT) or ""
    limit = cond.parse_duration(raw) if raw else None
    item = cond.get_condition(ctx.status, UPGRADE_IN_PROGRESS)
    if limit is None or item is None or item.get("status") != "True" or not ctx.pending_name:
        return
    since = cond.parse_time(item.get("lastTransitionTime"))
    if since is None or (ctx.o.now - since).total_seconds() < limit or not ctx.active_name:
        return
    if cond.is_true(ctx.status, ROLLBACK_IN_PROGRESS):
        return
    apps = (ctx.status.get(PENDING) or {}).get("applicationStatuses") or {}
    shown = ", ".join(f"{k}={v.get('status')}" for k, v in sorted(apps.items())) or "no applications"
    message = (
        f"Upgrade to RayCluster {ctx.pending_name} did not finish within {raw} ({shown}); "
        f"keeping RayCluster {ctx.active_name}"
    )
    ctx.actions.append(RecordEvent("Warning", "RayServiceUpgradeTimeout", message))
    if s.incremental:
        cond.set_condition(ctx.status, ROLLBACK_IN_PROGRESS, "True", UPGRADE_TIMEOUT, message, now=ctx.o.now)
        return
    ctx.status[PENDING] = {}
    _give_up_condition(ctx, message)


def should_prepare(ctx: Ctx, service: RayService, s: Serving, pending_serving: bool) -> bool:
    from ray_operator.rayservice.serving import hash_matches

    if pending_serving or cond.is_true(ctx.status, ROLLBACK_IN_PROGRESS) or timed_out_generation(ctx):
        return False
    if ctx.pending_name and ctx.pending_name not in ctx.o.clusters:
        return False  # being created this pass, from the current spec
    compare = ctx.o.clusters.get(ctx.pending_name) or ctx.o.clusters.get(ctx.active_name)
    if compare is None:
        return True  # no cluster at all: a new RayService, or its cluster was deleted behind our back
    if hash_matches(service, compare, s.goal_hash):
        return False
    return zero_downtime(service, ctx.o)


def _prepare(ctx: Ctx, service: RayService, s: Serving, pending_serving: bool) -> None:
    if not should_prepare(ctx, service, s, pending_serving):
        return
    detail: JSON = {"rayClusterName": ctx.o.new_name}
    if s.incremental:
        detail["targetCapacity"] = 0 if ctx.active_name else 100
    ctx.status[PENDING] = detail


def _endpoints(ctx: Ctx, s: Serving) -> int:
    from ray_operator.rayservice.serving import selected_cluster

    o = ctx.o
    if s.incremental:
        clusters = [n for n in (ctx.active_name, ctx.pending_name) if n]
    else:
        target = s.target or selected_cluster(ctx, _service(ctx))
        clusters = [target] if target else []
    return sum(o.serve_pods.get(name, 0) for name in clusters)


def _service(ctx: Ctx) -> RayService:
    assert ctx.o.service is not None
    return ctx.o.service


def _conditions(ctx: Ctx, endpoints: int) -> None:
    o, status = ctx.o, ctx.status
    if not status.get("conditions"):
        for type_ in (READY, UPGRADE_IN_PROGRESS):
            cond.set_condition(
                status, type_, "False", "Initializing", "RayService is initializing", now=o.now
            )
    ready = cond.get_condition(status, READY) or {}
    if endpoints > 0:
        message = "Number of serve endpoints is greater than 0"
        cond.set_condition(status, READY, "True", "NonZeroServeEndpoints", message, now=o.now)
    elif ready.get("status") == "True":
        message = "Number of serve endpoints dropped to 0"
        cond.set_condition(status, READY, "False", "ZeroServeEndpoints", message, now=o.now)
    elif ready.get("reason") == "Initializing":
        _initializing_deadline(ctx, ready)
    upgrading = cond.get_condition(status, UPGRADE_IN_PROGRESS) or {}
    if ctx.active_name and ctx.pending_name:
        message = "Both active and pending Ray clusters exist"
        cond.set_condition(
            status, UPGRADE_IN_PROGRESS, "True", "BothActivePendingClustersExist", message, now=o.now
        )
    elif ctx.active_name:
        if upgrading.get("reason") != UPGRADE_TIMEOUT or not timed_out_generation(ctx):
            message = "Active Ray cluster exists and no pending Ray cluster"
            cond.set_condition(status, UPGRADE_IN_PROGRESS, "False", "NoPendingCluster", message, now=o.now)
    elif upgrading.get("reason") not in ("Initializing", "InitializingTimeout"):
        message = "No active Ray cluster exists"
        cond.set_condition(status, UPGRADE_IN_PROGRESS, "Unknown", "NoActiveCluster", message, now=o.now)


def _initializing_deadline(ctx: Ctx, ready: JSON) -> None:
    raw = annotations_of(ctx.o.obj).get(ANN_INITIALIZING_TIMEOUT) or ""
    limit = cond.parse_duration(raw) if raw else None
    since = cond.parse_time(ready.get("lastTransitionTime"))
    if limit is None or since is None:
        return
    spent = (ctx.o.now - since).total_seconds()
    if spent < limit:
        return
    ctx.status[ACTIVE], ctx.status[PENDING] = {}, {}
    message = (
        f"RayService failed to become ready within the configured timeout of {raw}. "
        f"Time spent initializing: {int(spent)}s"
    )
    cond.set_condition(ctx.status, READY, "False", "InitializingTimeout", message, now=ctx.o.now)
    ctx.actions.append(RecordEvent("Warning", "RayServiceInitializingTimeout", message))


def finish(ctx: Ctx, service: RayService, s: Serving) -> None:
    """The status of the pass (KubeRay's calculateStatus order, plus the rayside upgrade deadline)."""
    ctx.stamp_generation()
    for role, view in (("active", s.active), ("pending", s.pending)):
        side = ACTIVE if role == "active" else PENDING
        if view is not None:
            detail = ctx.detail(side)
            detail["applicationStatuses"] = s.apps.get(role, {})
            if view.status:
                detail["rayClusterStatus"] = view.status
    pending_serving = _promote(ctx, service, s)
    _finish_rollback(ctx, s)
    _upgrade_deadline(ctx, s)
    _prepare(ctx, service, s, pending_serving)
    endpoints = _endpoints(ctx, s)
    ctx.status["numServeEndpoints"] = endpoints
    _conditions(ctx, endpoints)
