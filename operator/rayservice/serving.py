"""The running part of a RayService pass (pure): clusters, Serve configs, Services, Gateway and HTTPRoute.

`run(ctx, service)` is called by `plan.decide` once the preamble (finalizer, validation, suspend) is done;
the status part (promotion, rollback completion, deadlines, new pending cluster, conditions) is in
`rayservice.upgrade`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from ray_operator import constants as c
from ray_operator.builders import names
from ray_operator.builders import rayservice as build
from ray_operator.builders.hashing import spec_hash
from ray_operator.models import RayCluster, RayService
from ray_operator.rayservice import conditions as cond
from ray_operator.rayservice import upgrade
from ray_operator.rayservice.observed import (
    ROLLBACK_IN_PROGRESS,
    SERVE_CONFIG_APPLIED,
    UPGRADE_IN_PROGRESS,
    ApplyServeConfig,
    ClusterView,
    CreateCluster,
    CreateObject,
    RecordEvent,
    ReplaceObject,
    SetServeLabel,
    UpdateCluster,
)
from ray_operator.rayservice.passctx import Ctx
from rayside.objects import JSON, controller_of, labels_of, meta_of, uid_of


@dataclass
class Serving:
    """What the running part learned, for the status part."""

    incremental: bool
    goal_hash: str
    active: ClusterView | None
    pending: ClusterView | None
    active_ready: bool = False
    pending_ready: bool = False
    target: str | None = None  # the cluster the head/serve Services select after this pass
    weights: tuple[int, int] | None = None  # (active, pending) HTTPRoute weights
    created_pending: bool = False
    serve_problem: tuple[str, str] | None = None  # (reason, message) for ServeConfigApplied=False
    apps: dict[str, dict[str, JSON]] = field(default_factory=dict)
    running_current: set[str] = field(default_factory=set)  # roles running the spec's own Serve config


def owned_by_me(obj: JSON, owner: JSON) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == uid_of(owner) and bool(uid_of(owner))


def partial_hash(service: RayService, groups: int) -> str | None:
    """The hash of the goal restricted to its first `groups` worker groups (None: the goal has fewer)."""
    spec = service.spec.ray_cluster_config
    assert spec is not None
    have = spec.worker_group_specs or []
    if len(have) < groups:
        return None
    if len(have) == groups:
        return spec_hash(spec)
    return spec_hash(spec.model_copy(update={"worker_group_specs": have[:groups]}))


def hash_matches(service: RayService, view: ClusterView, goal: str) -> bool:
    """Equal hash, or the goal only appends worker groups to the cluster's."""
    if view.spec_hash == goal:
        return True
    if view.num_groups is None:
        return True  # an unparsable count counts as a match (KubeRay)
    return partial_hash(service, view.num_groups) == view.spec_hash


def _should_update(
    ctx: Ctx, service: RayService, view: ClusterView | None, *, active: bool, goal: str
) -> bool:
    if view is None or view.deleting:
        return False
    if active and cond.is_true(ctx.status, UPGRADE_IN_PROGRESS):
        return False
    if view.kuberay_version != ctx.o.settings.kuberay_version:
        return True
    if view.spec_hash == goal:
        return False
    return view.num_groups is None or partial_hash(service, view.num_groups) == view.spec_hash


def _reconcile_clusters(ctx: Ctx, service: RayService, s: Serving) -> None:
    o = ctx.o
    if ctx.pending_name and s.pending is None:
        obj = build.rayservice_cluster(
            service,
            name=ctx.pending_name,
            settings=o.settings,
            pending_incremental=s.incremental and s.active is not None,
        )
        ctx.actions.append(CreateCluster(obj))
        s.created_pending = True
        return
    for view, active in ((s.active, True), (s.pending, False)):
        if view is not None and _should_update(ctx, service, view, active=active, goal=s.goal_hash):
            goal = build.rayservice_cluster(service, name=view.name, settings=o.settings)
            ctx.actions.append(UpdateCluster(view.name, goal))


def _head_labels(ctx: Ctx, service: RayService, s: Serving) -> None:
    """The head Pod serves (`ray.io/serve=true`) while its proxy is healthy, unless excluded."""
    for view in (s.active, s.pending):
        head = ctx.o.heads.get(view.name) if view is not None else None
        if head is None:
            continue
        healthy = head.proxy_healthy and not service.spec.exclude_head_pod_from_serve_svc
        want = "true" if healthy else "false"
        if head.serve_label != want:
            ctx.actions.append(SetServeLabel(head.name, want))


def refused_for_good(put_error: str | None) -> bool:
    """Serve refused this very config as invalid (HTTP 400): PUT it again only once the spec changes.
    Other answers (401/403 token trouble, 404 while the dashboard starts, 5xx) are retried every pass."""
    return bool(put_error) and str(put_error).startswith("HTTP 400")


def _serve_config(service: RayService) -> tuple[JSON | None, str | None]:
    """The parsed `serveConfigV2` (None when empty) or a one-line parse error."""
    raw = service.spec.serve_config_v2 or ""
    if not raw.strip():
        return None, None
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        return None, "serveConfigV2 is not valid YAML: " + " ".join(str(exc).split())
    if not isinstance(parsed, dict):
        return None, "serveConfigV2 must be a YAML mapping (with `applications`)"
    return parsed, None


def _serve_one(ctx: Ctx, service: RayService, s: Serving, view: ClusterView, role: str) -> bool:
    """Serve for one cluster: read its apps, PUT the config when needed, step its target capacity."""
    o = ctx.o
    seen = o.serve.get(view.name)
    if not view.head_ready or seen is None or seen.apps is None:
        return False
    apps = dict(seen.apps)
    s.apps[role] = cond.app_statuses(apps)
    rollback = cond.is_true(ctx.status, ROLLBACK_IN_PROGRESS)
    upgrading = cond.is_true(ctx.status, UPGRADE_IN_PROGRESS)
    frozen = s.incremental and (
        (role == "active" and upgrading and not rollback) or (role == "pending" and rollback)
    )
    # after an upgrade timed out the old cluster keeps its old config too (the new one may need the new
    # cluster); a new generation tries again
    frozen = frozen or (role == "active" and upgrade.timed_out_generation(ctx))
    raw = service.spec.serve_config_v2 or ""
    config, error = _serve_config(service)
    cached = o.cached.get(view.name)
    if error is not None:
        s.serve_problem = ("InvalidServeConfig", error)
    elif (
        not frozen
        and config is not None
        and (cached is None or not apps or cached.raw != raw)
        and not refused_for_good(seen.put_error)
    ):
        side = "activeServiceStatus" if role == "active" else "pendingServiceStatus"
        capacity = ctx.detail(side).get("targetCapacity") if s.incremental else None
        if capacity is not None:
            config = {**config, "target_capacity": capacity}
        ctx.actions.append(ApplyServeConfig(view.name, config, raw))
    current = cached is not None and cached.raw == raw  # the apps shown are those of this spec
    if error is None and seen.put_error:
        s.serve_problem = ("ServeConfigRejected", seen.put_error)
    elif error is None and current and cond.failed_apps(apps):
        s.serve_problem = ("ApplicationFailed", "; ".join(cond.failed_apps(apps)))
    if current and cond.all_running(apps):
        s.running_current.add(role)
    if s.incremental and upgrading:
        upgrade.step_capacity(ctx, service, s, view, role)
    return cond.all_running(apps)


def _serve(ctx: Ctx, service: RayService, s: Serving) -> None:
    if s.pending is not None:
        s.pending_ready = _serve_one(ctx, service, s, s.pending, "pending")
    serve_active = s.active is not None and (
        (s.pending is None and not ctx.pending_name and not upgrade.should_prepare(ctx, service, s, False))
        or (s.pending is not None and s.incremental)
    )
    if s.active is not None and serve_active:
        s.active_ready = _serve_one(ctx, service, s, s.active, "active")
    if s.serve_problem is not None:
        reason, message = s.serve_problem
        cond.set_condition(ctx.status, SERVE_CONFIG_APPLIED, "False", reason, message, now=ctx.o.now)
    elif service.spec.serve_config_v2 and ("pending" if ctx.pending_name else "active") in s.running_current:
        cond.set_condition(
            ctx.status, SERVE_CONFIG_APPLIED, "True", "ApplicationsRunning", "Every application is RUNNING",
            now=ctx.o.now,
        )  # fmt: skip


def ensure(ctx: Ctx, desired: JSON, *, update: bool) -> None:
    """Create `desired` if missing; with `update`, replace its spec when the `ray.io/cluster` selector moved
    (Services; the old clusterIP is kept)."""
    name = str(meta_of(desired).get("name"))
    current = ctx.o.services.get(name)
    if current is None:
        ctx.actions.append(CreateObject(desired))
        return
    old_sel = (current.get("spec") or {}).get("selector") or {}
    new_sel = (desired.get("spec") or {}).get("selector") or {}
    if not update or old_sel.get(c.LABEL_CLUSTER) == new_sel.get(c.LABEL_CLUSTER):
        return
    replaced = {**desired, "metadata": {**meta_of(current), "labels": labels_of(desired)}}
    spec = dict(desired.get("spec") or {})
    for key in ("clusterIP", "clusterIPs"):
        if (current.get("spec") or {}).get(key):
            spec[key] = current["spec"][key]
    replaced["spec"] = spec
    ctx.actions.append(ReplaceObject(replaced))


def selected_cluster(ctx: Ctx, service: RayService) -> str | None:
    """The cluster the existing serve Service selects (None when there is none)."""
    svc = ctx.o.services.get(_serve_service_name(service))
    return None if svc is None else ((svc.get("spec") or {}).get("selector") or {}).get(c.LABEL_CLUSTER)


def _serve_service_name(service: RayService) -> str:
    user = (service.spec.serve_service or {}).get("metadata") or {}
    return str(user.get("name") or names.serve_service_name(str(service.metadata.get("name", ""))))


def _services(ctx: Ctx, service: RayService, s: Serving) -> None:
    if not (s.active_ready or s.pending_ready):
        return
    upgrading = s.incremental and cond.is_true(ctx.status, UPGRADE_IN_PROGRESS)
    if s.pending is not None and s.pending_ready and not upgrading:
        s.target = s.pending.name
    elif s.active is not None:
        s.target = s.active.name
    if s.target is None:
        return
    spec = service.spec.ray_cluster_config
    assert spec is not None
    ns = str(service.metadata.get("namespace") or "default")
    cluster = RayCluster(metadata={"name": s.target, "namespace": ns}, spec=spec)
    ensure(ctx, build.rayservice_head_service(service, cluster, settings=ctx.o.settings), update=True)
    if not s.incremental:
        ensure(ctx, build.rayservice_serve_service(service, cluster_name=s.target), update=True)


def _gateway(ctx: Ctx, service: RayService, s: Serving) -> None:
    """Incremental upgrade: the Gateway, the per-cluster serve Services and the HTTPRoute."""
    o = ctx.o
    want = build.gateway(service)
    have = o.gateway
    if have is None:
        ctx.actions.append(CreateObject(want))
    elif _gateway_differs(have, want):
        ctx.actions.append(ReplaceObject({**want, "metadata": dict(meta_of(have))}))
    for view in (s.active, s.pending):
        if view is not None and uid_of(view.obj):
            ensure(ctx, build.cluster_serve_service(service, view.obj), update=False)
    if s.active is None:
        return
    s.weights = upgrade.next_weights(ctx, service, s)
    backends = [(s.active.name, s.weights[0])]
    if s.pending is not None:
        backends.append((s.pending.name, s.weights[1]))
    want_route = build.http_route(service, backends)
    if o.route is None:
        ctx.actions.append(CreateObject(want_route))
    elif _route_differs(o.route, want_route):
        ctx.actions.append(ReplaceObject({**want_route, "metadata": dict(meta_of(o.route))}))


def _gateway_differs(have: JSON, want: JSON) -> bool:
    def essence(obj: JSON) -> tuple[object, ...]:
        spec = obj.get("spec") or {}
        listeners = [(x.get("name"), x.get("protocol"), x.get("port")) for x in spec.get("listeners") or []]
        return spec.get("gatewayClassName"), listeners

    return essence(have) != essence(want)


def _backend(ref: JSON) -> tuple[object, ...]:
    return ref.get("name"), ref.get("namespace"), ref.get("weight", 1), ref.get("port")


def _route_differs(have: JSON, want: JSON) -> bool:
    def essence(obj: JSON) -> tuple[object, ...]:
        spec = obj.get("spec") or {}
        parents = [(p.get("name"), p.get("namespace")) for p in spec.get("parentRefs") or []]
        rules = [
            (r.get("matches"), r.get("filters"), [_backend(b) for b in r.get("backendRefs") or []])
            for r in spec.get("rules") or []
        ]
        return spec.get("hostnames"), parents, rules

    return essence(have) != essence(want)


def run(ctx: Ctx, service: RayService) -> None:
    """Everything after the preamble, then the status (`upgrade.finish`)."""
    o = ctx.o
    spec = service.spec.ray_cluster_config
    assert spec is not None
    s = Serving(
        incremental=upgrade.incremental(service, o),
        goal_hash=spec_hash(spec),
        active=o.clusters.get(ctx.active_name) if ctx.active_name else None,
        pending=o.clusters.get(ctx.pending_name) if ctx.pending_name else None,
    )
    _reconcile_clusters(ctx, service, s)
    if s.incremental and cond.is_true(ctx.status, UPGRADE_IN_PROGRESS):
        upgrade.decide_rollback(ctx, s)
    _head_labels(ctx, service, s)
    _serve(ctx, service, s)
    if s.incremental:
        _gateway(ctx, service, s)
    _services(ctx, service, s)
    upgrade.finish(ctx, service, s)
    for event in _serve_events(ctx, s):
        ctx.actions.append(event)


def _serve_events(ctx: Ctx, s: Serving) -> list[RecordEvent]:
    old = cond.get_condition(ctx.old, SERVE_CONFIG_APPLIED)
    new = cond.get_condition(ctx.status, SERVE_CONFIG_APPLIED)
    if s.serve_problem is None or new is None or s.serve_problem[0] == "ServeConfigRejected":
        return []  # a rejected PUT has its own Event (the applier's FailedToUpdateServeApplications)
    if old is not None and (old.get("reason"), old.get("message")) == (new.get("reason"), new.get("message")):
        return []
    reason, message = s.serve_problem
    return [RecordEvent("Warning", "FailedToUpdateServeApplications", f"{reason}: {message}")]
