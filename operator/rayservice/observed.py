"""What one RayService pass decides on (`Observed`), and what it returns (`Decision` and its actions).

The reconciler fills `Observed` from its caches and the Ray dashboards of the RayService's clusters; the
pure `plan.decide` turns it into a `Decision`; the applier performs the actions in order. Times are
timezone-aware datetimes; objects are raw JSON as the API server sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ray_operator.builders.settings import BuildSettings
from ray_operator.models import RayService
from rayside.objects import JSON

REQUEUE_SECONDS = 2.0
FINALIZER = "ray.io/rayservice-finalizer"
ANN_INITIALIZING_TIMEOUT = "ray.io/initializing-timeout"
ANN_UPGRADE_TIMEOUT = "rayside.io/upgrade-timeout"  # rayside addition: give up an upgrade after this long
DEFAULT_DELETION_DELAY = 60.0

# Condition types and reasons (KubeRay HEAD; `UpgradeTimeout` and `ServeConfigApplied` are rayside's).
READY = "Ready"
UPGRADE_IN_PROGRESS = "UpgradeInProgress"
ROLLBACK_IN_PROGRESS = "RollbackInProgress"
SUSPENDING = "Suspending"
SUSPENDED = "Suspended"
SERVE_CONFIG_APPLIED = "ServeConfigApplied"
UPGRADE_TIMEOUT = "UpgradeTimeout"


@dataclass(frozen=True)
class ClusterView:
    """A RayCluster the RayService owns, as far as a pass needs it."""

    name: str
    spec_hash: str  # annotation ray.io/hash-without-replicas-and-workers-to-delete
    num_groups: int | None  # annotation ray.io/num-worker-groups (None: missing or unparsable)
    kuberay_version: str
    head_ready: bool  # condition HeadPodReady True
    deleting: bool = False
    status: JSON = field(default_factory=dict)
    obj: JSON = field(default_factory=dict)


@dataclass(frozen=True)
class ServeView:
    """The Serve applications a cluster's dashboard reported this pass."""

    apps: Mapping[str, JSON] | None = None  # `applications` of GET /api/serve/applications/ (None: unread)
    error: str | None = None  # the GET failed (dashboard unreachable, non-2xx)
    put_error: str | None = None  # Serve's answer to the last failed PUT of this config (cleared by success)


@dataclass(frozen=True)
class CachedConfig:
    """The Serve config last PUT successfully to a cluster (the raw spec string and its target_capacity)."""

    raw: str
    target_capacity: int | None = None


@dataclass(frozen=True)
class HeadPod:
    """A cluster's head Pod: its `ray.io/serve` label and whether its Serve proxy answers `/-/healthz`."""

    name: str
    serve_label: str | None
    proxy_healthy: bool


@dataclass(frozen=True)
class Observed:
    obj: JSON  # the RayService as cached
    service: RayService | None  # parsed; None with `problem` set when the spec does not parse
    problem: str | None  # validation error (metadata or spec), None when valid
    clusters: Mapping[str, ClusterView]  # every RayCluster carrying the RayService's originated-from labels
    serve: Mapping[str, ServeView]  # by cluster name, for clusters whose head is ready
    cached: Mapping[str, CachedConfig]  # by cluster name
    services: Mapping[str, JSON]  # Services in the namespace by name (owned or to be owned)
    gateway: JSON | None
    route: JSON | None
    serve_pods: Mapping[str, int]  # by cluster: Ready Pods labelled ray.io/serve=true
    delete_at: Mapping[str, datetime]  # dangling cluster → when it may be deleted (reconciler's memory)
    now: datetime
    settings: BuildSettings
    new_name: str  # a fresh `<rs>-xxxxx` the pass may use for a new pending cluster
    zero_downtime_env: bool = True  # ENABLE_ZERO_DOWNTIME
    heads: Mapping[str, HeadPod] = field(default_factory=dict)  # by cluster (active and pending)


# -- actions ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateCluster:
    obj: JSON


@dataclass(frozen=True)
class UpdateCluster:
    """Replace a cluster's spec (keeping its live `spec.suspend`), labels and annotations."""

    name: str
    goal: JSON


@dataclass(frozen=True)
class DeleteCluster:
    name: str
    why: str


@dataclass(frozen=True)
class ApplyServeConfig:
    """PUT `config` to the cluster's dashboard; on success remember (`raw`, target_capacity)."""

    cluster: str
    config: JSON
    raw: str
    capacity: bool = False  # a target_capacity step: the status of the pass depends on it


@dataclass(frozen=True)
class CreateObject:
    """Create a Service, Gateway or HTTPRoute (event `Created<Kind>` / `FailedToCreate<Kind>`)."""

    obj: JSON


@dataclass(frozen=True)
class ReplaceObject:
    """Replace an existing object's spec (the obj carries its resourceVersion); `Updated<Kind>` events."""

    obj: JSON


@dataclass(frozen=True)
class DeleteObject:
    kind: str
    name: str
    why: str


@dataclass(frozen=True)
class SetServeLabel:
    """Label the head Pod `ray.io/serve=<value>` (its proxy joins or leaves the serve Service)."""

    pod: str
    value: str


@dataclass(frozen=True)
class SetFinalizer:
    present: bool


@dataclass(frozen=True)
class RecordEvent:
    type_: str
    reason: str
    message: str


Action = (
    CreateCluster
    | UpdateCluster
    | DeleteCluster
    | ApplyServeConfig
    | CreateObject
    | ReplaceObject
    | DeleteObject
    | SetFinalizer
    | SetServeLabel
    | RecordEvent
)


@dataclass
class Decision:
    """One pass's outcome: the actions in order, the status to write (None: leave it), when to come back
    (None: only on the next change), and the dangling-cluster deletion times to remember."""

    actions: list[Action] = field(default_factory=list)
    status: JSON | None = None
    requeue: float | None = REQUEUE_SECONDS
    delete_at: dict[str, datetime] = field(default_factory=dict)
