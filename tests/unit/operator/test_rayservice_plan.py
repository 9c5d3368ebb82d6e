"""The RayService decisions (`ray_operator.rayservice.plan.decide`), pass by pass, without I/O.

`World` is a tiny in-memory stand-in for what the reconciler observes: it feeds `decide` an `Observed`,
then plays the returned actions back onto itself (clusters appear, Services point somewhere, configs are
remembered) so multi-pass scenarios read like the controller's life.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ray_operator.builders import BuildSettings, spec_hash
from ray_operator.features import FeatureGates
from ray_operator.models import RayClusterSpec, RayService
from ray_operator.rayservice import incremental as inc
from ray_operator.rayservice.observed import (
    ApplyServeConfig,
    CachedConfig,
    ClusterView,
    CreateCluster,
    CreateObject,
    Decision,
    DeleteCluster,
    DeleteObject,
    Observed,
    RecordEvent,
    ReplaceObject,
    ServeView,
    SetFinalizer,
    UpdateCluster,
)
from ray_operator.rayservice.plan import decide
from rayside.objects import JSON

T0 = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
CONFIG = "applications:\n- name: app\n  import_path: mod:app\n"


def rayservice(**spec: Any) -> JSON:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {
            "name": "svc",
            "namespace": "default",
            "uid": "uid-svc",
            "generation": 1,
            "finalizers": ["ray.io/rayservice-finalizer"],
        },
        "spec": {
            "serveConfigV2": CONFIG,
            "rayClusterConfig": {
                "rayVersion": "2.52.0",
                "headGroupSpec": {
                    "rayStartParams": {},
                    "template": {"spec": {"containers": [{"name": "ray-head", "image": "ray:1"}]}},
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "wg",
                        "replicas": 1,
                        "minReplicas": 0,
                        "maxReplicas": 5,
                        "rayStartParams": {},
                        "template": {"spec": {"containers": [{"name": "w", "image": "ray:1"}]}},
                    }
                ],
            },
            **spec,
        },
    }


INCREMENTAL = {
    "type": "NewClusterWithIncrementalUpgrade",
    "clusterUpgradeOptions": {
        "maxSurgePercent": 50,
        "stepSizePercent": 25,
        "intervalSeconds": 10,
        "gatewayClassName": "istio",
    },
}


@dataclass
class World:
    obj: JSON
    now: datetime = T0
    clusters: dict[str, ClusterView] = field(default_factory=dict)
    apps: dict[str, dict[str, JSON]] = field(default_factory=dict)  # cluster → Serve applications
    put_errors: dict[str, str] = field(default_factory=dict)
    cached: dict[str, CachedConfig] = field(default_factory=dict)
    services: dict[str, JSON] = field(default_factory=dict)
    gateway: JSON | None = None
    route: JSON | None = None
    delete_at: dict[str, datetime] = field(default_factory=dict)
    puts: list[ApplyServeConfig] = field(default_factory=list)
    events: list[RecordEvent] = field(default_factory=list)
    names: int = 0
    gates: FeatureGates = field(default_factory=FeatureGates)
    serve_ready: set[str] = field(default_factory=set)  # clusters whose Serve apps turn RUNNING when PUT

    def observed(self) -> Observed:
        service = RayService.model_validate(self.obj)
        serve = {
            n: ServeView(apps=self.apps.get(n, {}), put_error=self.put_errors.get(n))
            for n, v in self.clusters.items()
            if v.head_ready
        }
        return Observed(
            obj=copy.deepcopy(self.obj),
            service=service,
            problem=None,
            clusters=dict(self.clusters),
            serve=serve,
            cached=dict(self.cached),
            services=dict(self.services),
            gateway=self.gateway,
            route=self.route,
            serve_pods={n: 1 for n in self.clusters if (self.apps.get(n) or {})},
            delete_at=dict(self.delete_at),
            now=self.now,
            settings=BuildSettings(feature_gates=self.gates),
            new_name=f"svc-new{self.names}",
        )

    def step(self, seconds: float = 0.0) -> Decision:
        self.now += timedelta(seconds=seconds)
        d = decide(self.observed())
        if d.status is not None:
            self.obj["status"] = d.status
        self.delete_at = d.delete_at
        if (self.obj.get("status") or {}).get("pendingServiceStatus", {}).get("rayClusterName") == (
            f"svc-new{self.names}"
        ):
            self.names += 1
        for action in d.actions:
            self.play(action)
        return d

    def play(self, action: object) -> None:
        if isinstance(action, SetFinalizer):
            self.obj["metadata"]["finalizers"] = ["ray.io/rayservice-finalizer"] if action.present else []
        elif isinstance(action, CreateCluster | UpdateCluster):
            obj = action.obj if isinstance(action, CreateCluster) else action.goal
            ann = obj["metadata"]["annotations"]
            name = obj["metadata"]["name"]
            self.clusters[name] = ClusterView(
                name=name,
                spec_hash=ann["ray.io/hash-without-replicas-and-workers-to-delete"],
                num_groups=int(ann["ray.io/num-worker-groups"]),
                kuberay_version=ann["ray.io/kuberay-version"],
                head_ready=True,
                obj={**obj, "metadata": {**obj["metadata"], "uid": f"uid-{name}"}},
            )
        elif isinstance(action, DeleteCluster):
            self.clusters.pop(action.name, None)
        elif isinstance(action, ApplyServeConfig):
            self.puts.append(action)
            if action.cluster in self.put_errors:
                return
            self.cached[action.cluster] = CachedConfig(action.raw, action.config.get("target_capacity"))
            status = "RUNNING" if action.cluster in self.serve_ready else "DEPLOYING"
            self.apps[action.cluster] = {"app": {"status": status, "message": ""}}
        elif isinstance(action, CreateObject | ReplaceObject):
            kind, name = action.obj["kind"], action.obj["metadata"]["name"]
            if kind == "Service":
                self.services[name] = action.obj
            elif kind == "Gateway":
                self.gateway = _accepted(action.obj, ("Accepted", "Programmed"))
            else:
                self.route = action.obj
                self.route["status"] = {"parents": [_accepted({}, ("Accepted", "ResolvedRefs"))["status"]]}
        elif isinstance(action, DeleteObject):
            if action.kind == "Service":
                self.services.pop(action.name, None)
            elif action.kind == "Gateway":
                self.gateway = None
            else:
                self.route = None
        elif isinstance(action, RecordEvent):
            self.events.append(action)

    # -- views ---------------------------------------------------------------------------------------------
    @property
    def status(self) -> JSON:
        return dict(self.obj.get("status") or {})

    def name(self, side: str) -> str:
        return str((self.status.get(f"{side}ServiceStatus") or {}).get("rayClusterName") or "")

    def condition(self, type_: str) -> tuple[str, str]:
        for c in self.status.get("conditions") or []:
            if c["type"] == type_:
                return c["status"], c["reason"]
        return ("", "")

    def selects(self, service: str) -> str:
        return str(self.services[service]["spec"]["selector"]["ray.io/cluster"])

    def run_until_ready(self) -> None:
        for _ in range(10):
            if self.condition("Ready")[0] == "True":
                return
            self.step(2)
        raise AssertionError(f"not ready: {self.status}")


def _accepted(obj: JSON, types: tuple[str, ...]) -> JSON:
    return {**obj, "status": {"conditions": [{"type": t, "status": "True"} for t in types]}}


def ready_world(**spec: Any) -> World:
    world = World(rayservice(**spec), serve_ready={f"svc-new{i}" for i in range(10)})
    world.run_until_ready()
    return world


# -- first cluster -----------------------------------------------------------------------------------------
def test_new_rayservice_gets_finalizer_then_pending_cluster_then_ready() -> None:
    world = World(rayservice(), serve_ready={"svc-new0"})
    world.obj["metadata"]["finalizers"] = []
    d = world.step()
    assert d.actions == [SetFinalizer(True)] and d.status is None
    world.step()
    assert world.name("pending") == "svc-new0" and world.condition("Ready") == ("False", "Initializing")
    d = world.step()
    created = [a for a in d.actions if isinstance(a, CreateCluster)]
    assert [a.obj["metadata"]["name"] for a in created] == ["svc-new0"]
    d = world.step()
    assert [(a.cluster, a.raw) for a in d.actions if isinstance(a, ApplyServeConfig)] == [
        ("svc-new0", CONFIG)
    ]
    world.step()
    assert world.name("active") == "svc-new0" and world.name("pending") == ""
    assert world.selects("svc-head-svc") == "svc-new0" and world.selects("svc-serve-svc") == "svc-new0"
    assert world.condition("Ready") == ("True", "NonZeroServeEndpoints")
    assert world.condition("UpgradeInProgress") == ("False", "NoPendingCluster")
    assert world.status["serviceStatus"] == "Running" and world.status["numServeEndpoints"] == 1


def test_a_quiet_pass_writes_nothing() -> None:
    world = ready_world()
    d = world.step(2)
    assert d.status is None and d.actions == []


# -- what needs a new cluster ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit",
    [
        {"replicas": 4},
        {"minReplicas": 1, "maxReplicas": 9},
        {"scaleStrategy": {"workersToDelete": ["svc-new0-wg-abcde"]}},
    ],
)
def test_replica_and_autoscaler_edits_never_make_a_new_cluster(edit: JSON) -> None:
    world = ready_world()
    world.obj["spec"]["rayClusterConfig"]["workerGroupSpecs"][0].update(edit)
    world.obj["metadata"]["generation"] = 2
    for _ in range(3):
        d = world.step(2)
        assert not [a for a in d.actions if isinstance(a, CreateCluster | UpdateCluster | DeleteCluster)]
    assert world.name("pending") == "" and world.name("active") == "svc-new0"


def test_serve_config_only_change_is_applied_in_place() -> None:
    world = ready_world()
    new = CONFIG.replace("mod:app", "mod:app2")
    world.obj["spec"]["serveConfigV2"] = new
    d = world.step(2)
    assert [(a.cluster, a.raw) for a in d.actions if isinstance(a, ApplyServeConfig)] == [("svc-new0", new)]
    world.step(2)
    assert world.name("pending") == "" and world.clusters.keys() == {"svc-new0"}


def test_appending_a_worker_group_updates_the_active_cluster_in_place() -> None:
    world = ready_world()
    groups = world.obj["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    groups.append({**copy.deepcopy(groups[0]), "groupName": "wg2"})
    d = world.step(2)
    assert [a.name for a in d.actions if isinstance(a, UpdateCluster)] == ["svc-new0"]
    world.step(2)
    assert world.name("pending") == ""


def test_blue_green_upgrade_switches_services_then_deletes_the_old_cluster_after_the_delay() -> None:
    world = ready_world(rayClusterDeletionDelaySeconds=30)
    world.obj["spec"]["rayClusterConfig"]["rayVersion"] = "2.53.0"
    world.step(2)
    assert world.name("pending") == "svc-new1"
    world.step(2)  # creates it
    assert world.condition("UpgradeInProgress") == ("True", "BothActivePendingClustersExist")
    assert world.selects("svc-serve-svc") == "svc-new0"  # still the old one
    world.step(2)  # PUT to the new one (RUNNING at once in this world)
    world.step(2)
    assert world.name("active") == "svc-new1" and world.selects("svc-serve-svc") == "svc-new1"
    assert world.condition("UpgradeInProgress") == ("False", "NoPendingCluster")
    world.step(2)
    assert "svc-new0" in world.clusters and "svc-new0" in world.delete_at
    world.step(28)
    assert "svc-new0" in world.clusters
    world.step(2)
    assert "svc-new0" not in world.clusters


def test_strategy_none_keeps_the_cluster_and_applies_serve_config() -> None:
    world = ready_world(upgradeStrategy={"type": "None"})
    world.obj["spec"]["rayClusterConfig"]["rayVersion"] = "2.53.0"
    world.obj["spec"]["serveConfigV2"] = CONFIG + "# v2\n"
    d = world.step(2)
    assert [a.cluster for a in d.actions if isinstance(a, ApplyServeConfig)] == ["svc-new0"]
    assert world.name("pending") == "" and not [a for a in d.actions if isinstance(a, CreateCluster)]


def test_upgrade_that_never_gets_ready_ends_at_the_deadline_and_keeps_the_old_cluster() -> None:
    world = ready_world()
    world.obj["metadata"]["annotations"] = {"rayside.io/upgrade-timeout": "5m"}
    world.obj["spec"]["rayClusterConfig"]["rayVersion"] = "2.53.0"
    world.obj["spec"]["serveConfigV2"] = CONFIG + "# needs 2.53\n"
    world.obj["metadata"]["generation"] = 2
    world.serve_ready.discard("svc-new1")  # its app stays DEPLOYING
    for _ in range(3):
        world.step(2)
    assert world.condition("UpgradeInProgress") == ("True", "BothActivePendingClustersExist")
    world.step(300)
    assert world.condition("UpgradeInProgress") == ("False", "UpgradeTimeout")
    assert world.name("pending") == "" and world.name("active") == "svc-new0"
    assert world.selects("svc-serve-svc") == "svc-new0" and world.condition("Ready")[0] == "True"
    timeouts = [e for e in world.events if e.reason == "RayServiceUpgradeTimeout"]
    assert len(timeouts) == 1 and "svc-new1" in timeouts[0].message and "app=DEPLOYING" in timeouts[0].message
    for _ in range(3):  # the same spec is not tried again, and the old cluster keeps its old config
        world.step(2)
    assert world.name("pending") == "" and world.condition("UpgradeInProgress")[1] == "UpgradeTimeout"
    assert world.cached["svc-new0"].raw == CONFIG
    world.obj["spec"]["rayClusterConfig"]["rayVersion"] = "2.54.0"  # a new spec tries again
    world.obj["metadata"]["generation"] = 3
    world.step(2)
    assert world.name("pending") == "svc-new2"


# -- Serve errors ------------------------------------------------------------------------------------------
def test_rejected_serve_config_sets_a_condition_and_recovers_without_a_new_cluster() -> None:
    world = ready_world()
    world.put_errors["svc-new0"] = "HTTP 400: Invalid config: applications.0.import_path: field required"
    world.obj["spec"]["serveConfigV2"] = "applications:\n- name: app\n"
    world.step(2)
    world.step(2)
    assert world.condition("ServeConfigApplied") == ("False", "ServeConfigRejected")
    puts = len(world.puts)
    world.step(2)
    assert len(world.puts) == puts  # a refused config is not PUT again until the spec changes
    message = next(c["message"] for c in world.status["conditions"] if c["type"] == "ServeConfigApplied")
    assert "import_path: field required" in message
    del world.put_errors["svc-new0"]
    world.obj["spec"]["serveConfigV2"] = CONFIG
    world.step(2)
    world.step(2)
    assert world.condition("ServeConfigApplied") == ("True", "ApplicationsRunning")
    assert world.clusters.keys() == {"svc-new0"}


def test_failed_application_is_reported_with_serves_message() -> None:
    world = ready_world()
    world.apps["svc-new0"] = {"app": {"status": "DEPLOY_FAILED", "message": "ModuleNotFoundError: mod"}}
    world.step(2)
    assert world.condition("ServeConfigApplied") == ("False", "ApplicationFailed")
    assert any("ModuleNotFoundError" in e.message for e in world.events if e.type_ == "Warning")
    assert world.status["activeServiceStatus"]["applicationStatuses"]["app"]["status"] == "DEPLOY_FAILED"


# -- incremental upgrade -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pending_tc", "elapsed", "ready", "expected"),
    [(60, 30, True, (90, 10)), (5, 30, True, (95, 5)), (60, 10, True, (100, 0)), (60, 30, False, (100, 0))],
)
def test_weight_step(pending_tc: int, elapsed: int, ready: bool, expected: tuple[int, int]) -> None:
    levels = inc.Levels(active_tc=100, pending_tc=pending_tc, active_traffic=100, pending_traffic=0)
    last = T0 - timedelta(seconds=elapsed) if elapsed < 30 else None
    got = inc.next_weights(
        levels, rollback=False, pending_ready=ready, last_moved=last, now=T0, step=10, interval=30
    )
    assert got == expected


def incremental_world() -> World:
    spec = rayservice(upgradeStrategy=INCREMENTAL)["spec"]
    spec["rayClusterConfig"]["enableInTreeAutoscaling"] = True
    world = World(rayservice(**spec), serve_ready={f"svc-new{i}" for i in range(10)})
    world.run_until_ready()
    world.step(2)  # the HTTPRoute comes once there is an active cluster
    return world


def test_incremental_upgrade_moves_capacity_and_traffic_in_steps() -> None:
    world = incremental_world()
    assert world.route is not None and world.gateway is not None
    world.obj["spec"]["rayClusterConfig"]["rayVersion"] = "2.53.0"
    seen: list[tuple[int, int, int, int]] = []
    for _ in range(40):
        world.step(5)
        a, p = world.status["activeServiceStatus"], world.status.get("pendingServiceStatus") or {}
        if p.get("rayClusterName"):
            tc = (a.get("targetCapacity", 100), p.get("targetCapacity", 0))
            seen.append((*tc, a.get("trafficRoutedPercent", 100), p.get("trafficRoutedPercent", 0)))
        if world.name("active") == "svc-new1":
            break
    assert world.name("active") == "svc-new1" and world.name("pending") == ""
    pending_traffic = [s[3] for s in seen]
    assert pending_traffic == sorted(pending_traffic) and {25, 50, 75} <= set(pending_traffic)
    active_tc = [s[0] for s in seen]
    assert active_tc == sorted(active_tc, reverse=True) and 50 in active_tc
    assert max(s[0] + s[1] for s in seen) == 150  # capacity never exceeds 100% + maxSurgePercent
    world.step(2)  # the Services follow the promotion on the next pass
    assert world.selects("svc-head-svc") == "svc-new1"
    world.step(61)
    world.step(2)
    assert world.clusters.keys() == {"svc-new1"}
    backends = world.route["spec"]["rules"][0]["backendRefs"] if world.route else []
    assert [(b["name"], b["weight"]) for b in backends] == [("svc-new1-serve-svc", 100)]


def test_incremental_rollback_when_the_spec_goes_back() -> None:
    world = incremental_world()
    old = copy.deepcopy(world.obj["spec"]["rayClusterConfig"])
    world.obj["spec"]["rayClusterConfig"]["rayVersion"] = "2.53.0"
    for _ in range(20):
        world.step(11)
        if 0 < world.status["pendingServiceStatus"].get("trafficRoutedPercent", 0) < 100:
            break
    assert world.status["pendingServiceStatus"]["trafficRoutedPercent"] == 25
    world.obj["spec"]["rayClusterConfig"] = old
    world.step(11)
    assert world.condition("RollbackInProgress") == ("True", "DesiredClusterSpecChanged")
    for _ in range(20):
        world.step(11)
        if world.condition("RollbackInProgress") == ("", ""):
            break
    assert world.name("active") == "svc-new0" and world.name("pending") == ""
    assert world.condition("UpgradeInProgress") == ("False", "NoPendingCluster")
    assert world.status["activeServiceStatus"]["trafficRoutedPercent"] == 100


def test_capacity_goals_follow_traffic() -> None:
    levels = inc.Levels(active_tc=100, pending_tc=0, active_traffic=100, pending_traffic=0)
    assert inc.capacity_goal(levels, role="pending", rollback=False, surge=50) == 50
    assert inc.capacity_goal(levels, role="active", rollback=False, surge=50) is None
    levels = replace(levels, pending_tc=50)
    assert inc.capacity_goal(levels, role="active", rollback=False, surge=50) is None  # traffic lags
    levels = replace(levels, pending_traffic=50, active_traffic=50)
    assert inc.capacity_goal(levels, role="active", rollback=False, surge=50) == 50


# -- preamble ----------------------------------------------------------------------------------------------
def test_managed_elsewhere_is_ignored() -> None:
    world = World(rayservice(managedBy="kueue.x-k8s.io/multikueue"))
    d = world.step()
    assert d.actions == [] and d.status is None and d.requeue is None


def test_invalid_spec_reports_once_and_does_not_requeue() -> None:
    world = World(rayservice())
    o = replace(world.observed(), problem="stepSizePercent must be between 0 and maxSurgePercent (50)")
    d = decide(o)
    assert d.requeue is None and d.status is not None
    ready = next(c for c in d.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ValidationFailed")
    assert [a.reason for a in d.actions if isinstance(a, RecordEvent)] == ["InvalidRayServiceSpec"]


def test_suspend_deletes_everything_then_resumes_on_a_new_cluster() -> None:
    world = ready_world()
    world.obj["spec"]["suspend"] = True
    world.step(2)
    assert world.condition("Suspending") == ("True", "SuspendRequested")
    world.step(2)
    assert not world.clusters and not world.services
    world.step(2)
    assert world.condition("Suspended") == ("True", "SuspendComplete")
    assert world.condition("Ready") == ("False", "SuspendComplete")
    world.obj["spec"]["suspend"] = False
    world.run_until_ready()
    assert world.condition("Suspended") == ("False", "RayServiceResumed")
    assert world.name("active") not in ("", "svc-new0")


def test_deleting_rayservice_deletes_clusters_now_then_drops_the_finalizer() -> None:
    world = ready_world(rayClusterDeletionDelaySeconds=600)
    world.obj["metadata"]["deletionTimestamp"] = "2026-12-04T12:00:00Z"
    d = world.step(2)
    assert [a.name for a in d.actions if isinstance(a, DeleteCluster)] == ["svc-new0"]
    d = world.step(2)
    assert d.actions == [SetFinalizer(False)]


def test_hash_is_self_consistent_with_the_builder() -> None:
    spec = RayClusterSpec.model_validate(rayservice()["spec"]["rayClusterConfig"])
    assert spec_hash(spec) == spec_hash(spec.model_copy())


def test_initializing_timeout_is_terminal() -> None:
    world = World(rayservice())  # no cluster ever gets RUNNING apps
    world.obj["metadata"]["annotations"] = {"ray.io/initializing-timeout": "30s"}
    world.step()
    world.step(2)
    assert world.condition("Ready") == ("False", "Initializing")
    world.step(30)
    assert world.condition("Ready") == ("False", "InitializingTimeout")
    assert (
        world.name("pending") == ""
        and [e.reason for e in world.events][-1] == "RayServiceInitializingTimeout"
    )
    assert world.step(2).requeue == 2.0  # the cluster is scheduled for deletion
    world.step(61)  # and deleted after the delay; nothing new is prepared
    d = world.step(2)
    assert not world.clusters and world.name("pending") == "" and d.requeue is None


def test_incremental_upgrade_deadline_rolls_back_then_stops() -> None:
    world = incremental_world()
    world.obj["metadata"]["annotations"] = {"rayside.io/upgrade-timeout": "60"}
    world.obj["spec"]["rayClusterConfig"]["rayVersion"] = "2.53.0"
    world.obj["metadata"]["generation"] = 2
    world.serve_ready.discard("svc-new1")  # never RUNNING: traffic never moves to it
    for _ in range(4):
        world.step(11)
    assert world.condition("UpgradeInProgress")[0] == "True"
    assert world.status["pendingServiceStatus"]["trafficRoutedPercent"] == 0
    world.step(60)
    assert world.condition("RollbackInProgress") == ("True", "UpgradeTimeout")
    for _ in range(10):
        world.step(11)
        if world.condition("RollbackInProgress") == ("", ""):
            break
    assert world.condition("UpgradeInProgress")[:2] == ("False", "UpgradeTimeout")
    assert world.name("active") == "svc-new0" and world.name("pending") == ""
    assert world.status["activeServiceStatus"]["targetCapacity"] == 100
    world.step(11)
    assert world.name("pending") == ""  # not retried for this generation


@pytest.mark.parametrize(
    ("healthy", "exclude", "label", "expected"),
    [(True, False, "false", "true"), (False, False, "true", "false"), (True, True, "true", "false")],
)
def test_head_pod_serves_while_its_proxy_is_healthy(
    healthy: bool, exclude: bool, label: str, expected: str
) -> None:
    from ray_operator.rayservice.observed import HeadPod, SetServeLabel

    world = ready_world(excludeHeadPodFromServeSvc=exclude)
    o = replace(world.observed(), heads={"svc-new0": HeadPod("svc-new0-head-x", label, healthy)})
    assert [a for a in decide(o).actions if isinstance(a, SetServeLabel)] == [
        SetServeLabel("svc-new0-head-x", expected)
    ]
    o = replace(o, heads={"svc-new0": HeadPod("svc-new0-head-x", expected, healthy)})
    assert not [a for a in decide(o).actions if isinstance(a, SetServeLabel)]


def test_active_cluster_deleted_behind_our_back_gets_a_replacement() -> None:
    world = ready_world()
    world.clusters.clear()
    world.step(2)
    assert world.name("pending") == "svc-new1" and world.name("active") == "svc-new0"
    world.run_until_ready()
    world.step(2)
    assert world.name("active") == "svc-new1" and world.selects("svc-serve-svc") == "svc-new1"


@pytest.mark.parametrize(("strategy", "new_cluster"), [(None, False), ({"type": "NewCluster"}, True)])
def test_enable_zero_downtime_false_only_matters_without_a_strategy(
    strategy: JSON | None, new_cluster: bool
) -> None:
    world = ready_world(**({"upgradeStrategy": strategy} if strategy else {}))
    world.obj["spec"]["rayClusterConfig"]["rayVersion"] = "2.53.0"
    d = decide(replace(world.observed(), zero_downtime_env=False))
    pending = ((d.status or world.status).get("pendingServiceStatus") or {}).get("rayClusterName")
    assert bool(pending) is new_cluster


def test_incremental_needs_its_gate() -> None:
    world = ready_world(upgradeStrategy=INCREMENTAL)
    world.gates = FeatureGates.parse("RayServiceIncrementalUpgrade=false")
    world.obj["spec"]["rayClusterConfig"]["rayVersion"] = "2.53.0"
    world.step(2)
    assert world.name("pending") == ""  # behaves like None (validation also reports the missing gate)
