"""Node lifecycle: a Node whose kubelet stopped renewing its Lease (`kube-node-lease/<node>`) within the grace
period gets `Ready=Unknown` (reason `NodeStatusUnknown`, "Kubelet stopped posting node status.", and the
pressure conditions likewise), as kube-controller-manager's node lifecycle controller does; when the Lease is
renewed again, `Ready=True` is restored at once (the kubelet's next status heartbeat would do it later).

`plan_node_conditions` (pure: nodes, leases, now → condition patches) decides; `NodeLifecycle` is a small
periodic loop that lists Nodes and Leases and applies the patches (guarded by the Node's resourceVersion).
No taints and no pod eviction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from rayside.kubeclient import KubeClient, KubeError
from rayside.objects import JSON, LEASES, NODES, name_of, namespace_of, resource_version_of

log = logging.getLogger(__name__)
LEASE_NAMESPACE = "kube-node-lease"
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
READY_REASON = "KubeletReady"
READY_MESSAGE = "kubelet is posting ready status"
WATCHED = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
DEFAULT_GRACE = 40.0  # kube-controller-manager's --node-monitor-grace-period


@dataclass(frozen=True)
class NodePatch:
    """New `status.conditions` for one Node, valid against `resource_version`."""

    node: str
    resource_version: str
    conditions: list[JSON]
    ready: str  # the new Ready status ("Unknown" or "True")


def parse_time(text: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (`Z` or an offset, fractional seconds optional)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def last_seen(node: JSON, lease: JSON | None) -> float | None:
    """The kubelet's latest sign of life: Lease renewal or Ready heartbeat (None: never seen)."""
    times = [parse_time(((lease or {}).get("spec") or {}).get("renewTime"))]
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            times.append(parse_time(cond.get("lastHeartbeatTime")))
    seen = [t for t in times if t is not None]
    return max(seen) if seen else None


def _set(conditions: list[JSON], ctype: str, status: str, reason: str, message: str, now: str) -> list[JSON]:
    out = []
    for old in conditions:
        cond = dict(old)
        if cond.get("type") == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
            cond.update({"status": status, "reason": reason, "message": message})
            if status == "True":
                cond["lastHeartbeatTime"] = now
        out.append(cond)
    return out


def plan_node_conditions(
    nodes: Iterable[JSON], leases: Iterable[JSON], now: float, grace: float = DEFAULT_GRACE
) -> list[NodePatch]:
    """Condition patches: Ready=Unknown for nodes not seen within `grace` seconds, Ready=True again for
    nodes this controller marked Unknown whose Lease is fresh again. Nodes never seen are left alone."""
    by_name = {name_of(le): le for le in leases if namespace_of(le) == LEASE_NAMESPACE}
    stamp = rfc3339(now)
    patches = []
    for node in nodes:
        name = name_of(node)
        conditions: list[JSON] = list((node.get("status") or {}).get("conditions") or [])
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        seen = last_seen(node, by_name.get(name))
        if ready is None or seen is None:
            continue
        stale = now - seen > grace
        if stale and ready.get("status") != "Unknown":
            new = conditions
            for ctype in WATCHED:
                new = _set(new, ctype, "Unknown", UNKNOWN_REASON, UNKNOWN_MESSAGE, stamp)
            patches.append(NodePatch(name, resource_version_of(node), new, "Unknown"))
        elif not stale and ready.get("status") == "Unknown" and ready.get("reason") == UNKNOWN_REASON:
            new = _set(conditions, "Ready", "True", READY_REASON, READY_MESSAGE, stamp)
            patches.append(NodePatch(name, resource_version_of(node), new, "True"))
    return patches


class NodeLifecycle:
    """Every `period` seconds: list Nodes and node Leases, apply `plan_node_conditions`."""

    def __init__(
        self,
        client: KubeClient,
        *,
        grace: float = DEFAULT_GRACE,
        period: float | None = None,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.grace = grace
        self.period = period if period is not None else max(0.2, min(5.0, grace / 4))
        self.clock = clock
        self._stop = stop or threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="node-lifecycle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.sync()
            except KubeError as exc:
                log.debug("node lifecycle pass failed: %s", exc)
            except Exception:  # keep monitoring: one bad pass must not end the loop
                log.exception("node lifecycle pass failed")

    def sync(self) -> list[NodePatch]:
        """One pass: read, decide, write; returns the patches applied."""
        nodes = self.client.list(NODES.path()).get("items") or []
        leases = self.client.list(LEASES.path(LEASE_NAMESPACE)).get("items") or []
        done = []
        for patch in plan_node_conditions(nodes, leases, self.clock(), self.grace):
            body = {
                "metadata": {"resourceVersion": patch.resource_version},
                "status": {"conditions": patch.conditions},
            }
            try:
                self.client.patch(NODES.path(None, patch.node, "status"), body)
            except KubeError as exc:  # changed meanwhile (409) or gone: the next pass decides again
                log.debug("node %s: condition update failed: %s", patch.node, exc)
                continue
            log.debug("node %s: Ready=%s", patch.node, patch.ready)
            done.append(patch)
        return done
