"""Ray autoscaler providers for a KubeRay RayCluster, on top of :class:`autoscaler_provider.scaler.Scaler`.

* :class:`RaysideCloudProvider` is an ``ICloudInstanceProvider`` for autoscaler v2. ``launch`` and
  ``terminate`` only queue (v2 documents both as asynchronous); the next ``get_non_terminated`` (the start
  of the next update) reads the cluster once, flushes everything queued as one patch, and reports the
  pods. :class:`RaysideConfigReader` derives the autoscaling config from the same read.
* :class:`RaysideNodeProvider` is a ``BatchingNodeProvider`` for autoscaler v1: ``get_node_data`` reads
  once, ``submit_scale_request`` plans and patches once.

Both use the planning rules of :mod:`autoscaler_provider.planning` (whole slices, busy nodes kept,
pending-deletes gate), and :func:`gcs_busy_nodes` tells them which nodes Ray reports busy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from ray.autoscaler.batching_node_provider import BatchingNodeProvider, NodeData, ScaleRequest
from ray.autoscaler.v2.instance_manager.config import AutoscalingConfig, IConfigReader
from ray.autoscaler.v2.instance_manager.node_provider import (
    CloudInstance,
    CloudInstanceProviderError,
    ICloudInstanceProvider,
    LaunchNodeError,
    TerminateNodeError,
)
from ray.core.generated.instance_manager_pb2 import NodeKind

from autoscaler_provider.config import derive_autoscaling_config
from autoscaler_provider.planning import HEAD, LABEL_GKE_REPLICA_INDEX, LABEL_GROUP, LABEL_NODE_TYPE, WORKER
from autoscaler_provider.scaler import ScaleError, Scaler, Snapshot
from rayside.kubeclient import KubeClient
from rayside.objects import JSON, meta_of

log = logging.getLogger(__name__)


def gcs_busy_nodes(gcs_client: Any) -> Callable[[], Collection[str]]:
    """A callable naming the pods whose Ray node is busy (GCS status RUNNING, i.e. not idle)."""
    from ray.autoscaler.v2.sdk import get_cluster_resource_state
    from ray.core.generated.autoscaler_pb2 import NodeStatus

    def busy() -> Collection[str]:
        state = get_cluster_resource_state(gcs_client)
        return frozenset(
            n.instance_id for n in state.node_states if n.status == NodeStatus.RUNNING and n.instance_id
        )

    return busy


# -- v2 -----------------------------------------------------------------------------------------------------
class RaysideConfigReader(IConfigReader):  # type: ignore[misc]
    """Autoscaling config from the RayCluster; its read is the one the provider uses in the same update."""

    def __init__(self, scaler: Scaler) -> None:
        self._scaler = scaler
        self._cached = AutoscalingConfig(derive_autoscaling_config(scaler.refresh().raycluster))

    def get_cached_autoscaling_config(self) -> AutoscalingConfig:
        return self._cached

    def refresh_cached_autoscaling_config(self) -> None:
        self._cached = AutoscalingConfig(derive_autoscaling_config(self._scaler.refresh().raycluster))


class RaysideCloudProvider(ICloudInstanceProvider):  # type: ignore[misc]
    """Autoscaler v2 cloud instance provider: one read and at most one patch per update.

    ``launch``/``terminate`` queue; :meth:`flush` (called by __main__'s autoscaler at the end of each
    update) sends them as one patch. Anything still queued is flushed by the next ``get_non_terminated``.
    """

    def __init__(self, scaler: Scaler) -> None:
        self.scaler = scaler

    def get_non_terminated(self) -> dict[str, CloudInstance]:
        snap = self.scaler.take()
        self.scaler.flush(snap)
        return instances(snap)

    def flush(self) -> None:
        """Send what this update queued (planned against this update's read)."""
        self.scaler.flush()

    def launch(self, shape: dict[str, int], request_id: str) -> None:
        self.scaler.launch(shape, request_id)

    def terminate(self, ids: list[str], request_id: str) -> None:
        self.scaler.terminate(ids, request_id)

    def poll_errors(self) -> list[CloudInstanceProviderError]:
        return [ray_error(e) for e in self.scaler.poll_errors()]


def instances(snap: Snapshot) -> dict[str, CloudInstance]:
    """Live head and worker pods as cloud instances keyed by pod name (other pods are skipped)."""
    out: dict[str, CloudInstance] = {}
    for pod in snap.cluster.pods.values():
        kind = NodeKind.HEAD if pod.kind == HEAD else NodeKind.WORKER
        out[pod.name] = CloudInstance(pod.name, pod.group, kind, pod.running, None)
    return out


def ray_error(error: ScaleError) -> CloudInstanceProviderError:
    now = time.time_ns()
    if error.kind == "launch":
        return LaunchNodeError(error.node, error.count, error.request_id, now, error.details, error.cause)
    return TerminateNodeError(error.node, error.request_id, now, error.details, error.cause)


# -- v1 -----------------------------------------------------------------------------------------------------
class RaysideNodeProvider(BatchingNodeProvider):  # type: ignore[misc]
    """Autoscaler v1 node provider (``provider: {type: external, module: ...}`` or built by __main__)."""

    def __init__(self, provider_config: JSON, cluster_name: str, scaler: Scaler | None = None) -> None:
        super().__init__(provider_config, cluster_name)
        if scaler is None:
            kubeconfig = provider_config.get("kubeconfig")
            client = KubeClient.from_config(kubeconfig=str(kubeconfig) if kubeconfig else None)
            scaler = Scaler(client, cluster_name, str(provider_config["namespace"]))
        self.scaler = scaler
        self._launch: dict[str, int] = {}
        self._terminate: list[str] = []
        self._updates = 0

    def get_node_data(self) -> dict[str, NodeData]:
        snap = self.scaler.take()
        self._launch, self._terminate = {}, []
        return node_data(snap)

    def create_node(self, node_config: JSON, tags: dict[str, str], count: int) -> None:
        super().create_node(node_config, tags, count)
        node_type = tags["ray-user-node-type"]
        self._launch[node_type] = self._launch.get(node_type, 0) + count

    def terminate_node(self, node_id: str) -> None:
        if node_id not in self._terminate and node_id in self.node_data_dict:
            self._terminate.append(node_id)
            self.scale_change_needed = True

    def safe_to_scale(self) -> bool:
        """False while any group's workersToDelete still names a live pod."""
        cluster = self.scaler.latest().cluster  # the read of this update's get_node_data
        return not any(n in cluster.pods for g in cluster.groups for n in g.to_delete)

    def submit_scale_request(self, scale_request: ScaleRequest) -> None:
        self._updates += 1
        request_id = f"v1-{self._updates}"
        if self._launch:
            self.scaler.launch(self._launch, request_id)
        if self._terminate:
            self.scaler.terminate(self._terminate, request_id)
        self.scaler.flush()
        for error in self.scaler.poll_errors():
            log.warning("%s", error.details)


def node_data(snap: Snapshot) -> dict[str, NodeData]:
    """Pods as v1 node data; pods listed in any workersToDelete are already gone for the autoscaler."""
    listed = {n for g in snap.cluster.groups for n in g.to_delete}
    out: dict[str, NodeData] = {}
    for pod in snap.pods:
        meta = meta_of(pod)  # once per pod: this loop runs over every pod on every update
        labels, name = meta.get("labels") or {}, str(meta.get("name") or "")
        if (
            meta.get("deletionTimestamp")
            or name in listed
            or labels.get(LABEL_NODE_TYPE) not in (HEAD, WORKER)
        ):
            continue
        kind = "head" if labels.get(LABEL_NODE_TYPE) == HEAD else "worker"
        status = pod.get("status") or {}
        out[name] = NodeData(
            kind=kind,
            type=labels.get(LABEL_GROUP, ""),
            ip=status.get("podIP"),
            status=_v1_status(status),
            replica_index=labels.get(LABEL_GKE_REPLICA_INDEX),
        )
    return out


def _v1_status(status: JSON) -> str:
    statuses = status.get("containerStatuses") or []
    if not statuses:
        return "pending"
    state = statuses[0].get("state") or {}
    if "running" in state:
        return "up-to-date"
    if "waiting" in state:
        return "waiting"
    return "update-failed"
