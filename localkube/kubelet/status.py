"""Pure construction of Pod status: container statuses, conditions and the phase per Kubernetes rules.

Both runtimes (simulated and process) describe their containers as `ContainerState` values and let these
functions decide the Pod-level status; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from rayside.objects import JSON, owner_references_of

StateKind = Literal["waiting", "running", "terminated"]


def now_iso(ts: float | None = None) -> str:
    """RFC 3339 timestamp with second precision, as Kubernetes writes it."""
    moment = datetime.now(UTC) if ts is None else datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def container_id(pod_uid: str, name: str, restart: int) -> str:
    digest = hashlib.sha256(f"{pod_uid}/{name}/{restart}".encode()).hexdigest()
    return f"containerd://{digest}"


@dataclass
class ContainerState:
    """What the kubelet knows about one container of a pod."""

    name: str
    image: str = ""
    kind: StateKind = "waiting"
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0
    ready: bool = False
    started: bool = False
    restart_count: int = 0
    last_terminated: JSON | None = None
    cid: str = ""
    will_restart: bool = False  # terminated but the restart policy brings it back

    def terminated_json(self) -> JSON:
        out: JSON = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at or None,
            "finishedAt": self.finished_at or None,
            "containerID": self.cid,
        }
        if self.message:
            out["message"] = self.message
        return out

    def to_json(self) -> JSON:
        state: JSON
        if self.kind == "running":
            state = {"running": {"startedAt": self.started_at}}
        elif self.kind == "terminated":
            state = {"terminated": self.terminated_json()}
        else:
            waiting: JSON = {"reason": self.reason}
            if self.message:
                waiting["message"] = self.message
            state = {"waiting": waiting}
        out: JSON = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }
        if self.cid:
            out["containerID"] = self.cid
        return out


def terminal_reason(exit_code: int) -> str:
    return "Completed" if exit_code == 0 else "Error"


def should_restart(restart_policy: str, exit_code: int) -> bool:
    """Whether a main container that exited is restarted (Always: yes; OnFailure: if non-zero; Never: no)."""
    if restart_policy == "Always":
        return True
    return restart_policy == "OnFailure" and exit_code != 0


def init_failed(restart_policy: str, inits: list[ContainerState]) -> bool:
    """An init container failed for good: only with restartPolicy Never (otherwise it is retried)."""
    return restart_policy == "Never" and any(
        c.kind == "terminated" and c.exit_code != 0 and not c.will_restart for c in inits
    )


def pod_phase(restart_policy: str, inits: list[ContainerState], mains: list[ContainerState]) -> str:
    """The Pod phase from its containers, following the kubelet's `getPhase` rules."""
    if init_failed(restart_policy, inits):
        return "Failed"
    if any(c.kind != "terminated" or c.exit_code != 0 for c in inits):
        return "Pending"
    if not mains or any(c.kind == "waiting" and not c.started and c.restart_count == 0 for c in mains):
        return "Pending"
    if any(c.kind == "running" or c.will_restart for c in mains):
        return "Running"
    if all(c.kind == "terminated" for c in mains):
        return "Succeeded" if all(c.exit_code == 0 for c in mains) else "Failed"
    return "Running"


def _condition(ctype: str, ok: bool, since: str, reason: str = "") -> JSON:
    cond: JSON = {
        "type": ctype,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if reason:
        cond["reason"] = reason
    return cond


def pod_conditions(
    phase: str,
    inits_done: bool,
    mains: list[ContainerState],
    gates_ok: bool,
    previous: list[JSON],
) -> list[JSON]:
    """Conditions PodScheduled/PodReadyToStartContainers/Initialized/ContainersReady/Ready, keeping
    transition times of unchanged conditions and every condition owned by someone else (readiness gates)."""
    now = now_iso()
    prev = {c.get("type"): c for c in previous}
    terminal = phase in ("Succeeded", "Failed")
    containers_ready = bool(mains) and all(c.ready for c in mains) and not terminal
    not_ready_reason = "PodCompleted" if terminal else "ContainersNotReady"
    wanted = [
        _condition("PodReadyToStartContainers", not terminal, now),
        _condition("Initialized", inits_done, now, "" if inits_done else "ContainersNotInitialized"),
        _condition("ContainersReady", containers_ready, now, "" if containers_ready else not_ready_reason),
        _condition("Ready", containers_ready and gates_ok, now, "" if containers_ready else not_ready_reason),
        _condition("PodScheduled", True, now),
    ]
    out: list[JSON] = []
    for cond in wanted:
        old = prev.get(cond["type"])
        if old is not None and old.get("status") == cond["status"]:
            cond["lastTransitionTime"] = old.get("lastTransitionTime") or now
        out.append(cond)
    owned = {c["type"] for c in wanted}
    out.extend(c for c in previous if c.get("type") not in owned)
    return out


def readiness_gates_ok(pod: JSON) -> bool:
    gates = [g.get("conditionType") for g in (pod.get("spec") or {}).get("readinessGates") or []]
    if not gates:
        return True
    conds = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    return all(conds.get(g) == "True" for g in gates)


@dataclass
class PodView:
    """Inputs for a full pod status: addresses, start time and container states."""

    host_ip: str
    pod_ip: str
    start_time: str
    inits: list[ContainerState] = field(default_factory=list)
    mains: list[ContainerState] = field(default_factory=list)


def build_pod_status(pod: JSON, view: PodView) -> JSON:
    """The complete `status` to write for `pod` given what the kubelet observed."""
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    phase = pod_phase(policy, view.inits, view.mains)
    inits_done = all(c.kind == "terminated" and c.exit_code == 0 for c in view.inits)
    previous = (pod.get("status") or {}).get("conditions") or []
    status: JSON = {
        "phase": phase,
        "conditions": pod_conditions(phase, inits_done, view.mains, readiness_gates_ok(pod), previous),
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "startTime": view.start_time,
        "containerStatuses": [c.to_json() for c in view.mains],
    }
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.inits:
        status["initContainerStatuses"] = [c.to_json() for c in view.inits]
    qos = (pod.get("status") or {}).get("qosClass")
    if qos:
        status["qosClass"] = qos
    return status


def owned_by_job(pod: JSON) -> bool:
    refs = owner_references_of(pod)
    return any(r.get("kind") == "Job" for r in refs)
