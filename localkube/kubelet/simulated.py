"""Simulated (kwok-like) runtime: pods become Running and Ready after a delay without any process.

One timer thread and a small pool of writers serve every pod (no thread per pod); each pod costs one
status write to reach Running+Ready, one more when it finishes (Job pods, or any pod annotated with
`localkube.rayside.io/exit-code`), and one DELETE when it is deleted.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from localkube.kubelet.logs import LogSource
from localkube.kubelet.runtime import final_delete
from localkube.kubelet.settings import (
    EXIT_CODE_ANNOTATION,
    READY_DELAY_ANNOTATION,
    RUN_SECONDS_ANNOTATION,
    KubeletSettings,
)
from localkube.kubelet.status import (
    ContainerState,
    PodView,
    build_pod_status,
    container_id,
    now_iso,
    owned_by_job,
    should_restart,
    terminal_reason,
)
from rayside.kubeclient import KubeClient, KubeError, NotFound
from rayside.objects import JSON, PODS, annotations_of, is_deleting, key_of, uid_of

log = logging.getLogger(__name__)


@dataclass
class SimPod:
    """Book-keeping for one simulated pod."""

    uid: str
    pod: JSON
    ip: str
    stage: str = "pending"  # pending -> running -> done; or deleting
    start_time: str = ""
    restarts: int = 0
    last: JSON | None = None
    containers: list[ContainerState] = field(default_factory=list)


def _annotation(pod: JSON, key: str) -> str | None:
    value = annotations_of(pod).get(key)
    return None if value is None else str(value)


def _float(pod: JSON, key: str, default: float) -> float:
    raw = _annotation(pod, key)
    try:
        return float(raw) if raw is not None else default
    except ValueError:
        log.debug("pod %s: annotation %s=%r is not a number", key_of(pod), key, raw)
        return default


def planned_exit(pod: JSON, settings: KubeletSettings) -> tuple[int, float] | None:
    """(exit code, seconds running) for a pod that should finish, or None for a pod that runs forever."""
    raw = _annotation(pod, EXIT_CODE_ANNOTATION)
    if raw is None and not owned_by_job(pod):
        return None
    try:
        code = int(raw) if raw is not None else 0
    except ValueError:
        code = 1
    return code, _float(pod, RUN_SECONDS_ANNOTATION, settings.job_run_seconds)


class IpPool:
    """Unique pod IPs from a CIDR (simulated pods only)."""

    def __init__(self, cidr: str) -> None:
        self._net = ipaddress.ip_network(cidr, strict=False)
        self._next = 2
        self._free: list[int] = []

    def take(self) -> str:
        index = heapq.heappop(self._free) if self._free else self._next
        if index == self._next:
            self._next += 1
        return str(self._net.network_address + index)

    def give(self, ip: str) -> None:
        heapq.heappush(self._free, int(ipaddress.ip_address(ip)) - int(self._net.network_address))


class SimulatedRuntime:
    """Drives simulated pods through Pending -> Running/Ready -> (Succeeded|Failed) -> deleted."""

    wants_services = False

    def __init__(self, client: KubeClient, settings: KubeletSettings, host_ip: str) -> None:
        self.client = client
        self.settings = settings
        self.host_ip = host_ip
        self._pods: dict[str, SimPod] = {}
        self._ips = IpPool(settings.pod_cidr)
        self._timers: list[tuple[float, int, str, str, int]] = []  # (due, seq, key, action, attempt)
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stopping = False
        self._writers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kubelet-sim-write")
        self._thread = threading.Thread(target=self._timer_loop, name="kubelet-sim", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout=2)
        self._writers.shutdown(wait=False, cancel_futures=True)

    def service_event(self, event_type: str, service: JSON) -> None:
        return None

    # -- events -------------------------------------------------------------------------------------------
    def sync(self, pod: JSON) -> None:
        key, uid = key_of(pod), uid_of(pod)
        with self._cv:
            sim = self._pods.get(key)
            if sim is not None and sim.uid != uid:
                self._release(key)
                sim = None
            if sim is None:
                phase = (pod.get("status") or {}).get("phase")
                sim = SimPod(uid, pod, self._ips.take())
                if phase in ("Succeeded", "Failed"):
                    sim.stage = "done"
                self._pods[key] = sim
                if sim.stage == "pending" and not is_deleting(pod):
                    self._at(_float(pod, READY_DELAY_ANNOTATION, self.settings.ready_delay), key, "run")
            sim.pod = pod
            if is_deleting(pod) and sim.stage != "deleting":
                sim.stage = "deleting"
                self._at(0.0, key, "delete")

    def forget(self, pod: JSON) -> None:
        with self._cv:
            self._release(key_of(pod))

    def _release(self, key: str) -> None:
        sim = self._pods.pop(key, None)
        if sim is not None:
            self._ips.give(sim.ip)

    def log_source(self, namespace: str, pod: str, container: str, previous: bool) -> LogSource | None:
        with self._cv:
            sim = self._pods.get(f"{namespace}/{pod}")
            spec = (sim.pod.get("spec") or {}) if sim else {}
            names = [c.get("name") for c in spec.get("containers") or []]
        if sim is None or container not in names or (previous and sim.restarts == 0):
            return None
        return LogSource(path=None, text=self.settings.simulated_log_text)

    # -- timer ---------------------------------------------------------------------------------------------
    def _at(self, delay: float, key: str, action: str, attempt: int = 0) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), key, action, attempt))
        self._cv.notify()

    def _timer_loop(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and (not self._timers or self._timers[0][0] > time.monotonic()):
                    wait = self._timers[0][0] - time.monotonic() if self._timers else None
                    self._cv.wait(wait)
                if self._stopping:
                    return
                _, _, key, action, attempt = heapq.heappop(self._timers)
                sim = self._pods.get(key)
                if sim is None:
                    continue
                job = self._plan(key, sim, action)
            if job is not None:
                self._writers.submit(self._write, *job, key, attempt)

    def _plan(self, key: str, sim: SimPod, action: str) -> tuple[str, str, JSON | None] | None:
        """Advance `sim` for `action`; return the write to do (kind, path, body) if any. Holds the lock."""
        if action == "delete":
            return ("delete", PODS.path_of(sim.pod), {"uid": sim.uid})
        if sim.stage == "deleting":
            return None
        if action == "resync":  # a status write failed: send the pod's current status again
            if sim.stage == "pending":
                return None
            status = build_pod_status(
                sim.pod, PodView(self.host_ip, sim.ip, sim.start_time, [], sim.containers)
            )
            return ("status", PODS.path_of(sim.pod, "status"), {"status": status})
        if action == "run" and sim.stage == "pending":
            sim.stage = "running"
            sim.start_time = now_iso()
            sim.containers = self._containers(sim, running=True)
            plan = planned_exit(sim.pod, self.settings)
            if plan is not None:
                self._at(plan[1], key, "finish")
        elif action == "finish" and sim.stage == "running":
            self._finish(key, sim)
        else:
            return None
        return self._status_write(sim)

    def _status_write(self, sim: SimPod) -> tuple[str, str, JSON | None]:
        status = build_pod_status(sim.pod, PodView(self.host_ip, sim.ip, sim.start_time, [], sim.containers))
        return ("status", PODS.path_of(sim.pod, "status"), {"status": status})

    def _containers(self, sim: SimPod, running: bool) -> list[ContainerState]:
        out = []
        uid = sim.uid
        for c in (sim.pod.get("spec") or {}).get("containers") or []:
            name = str(c.get("name", ""))
            out.append(
                ContainerState(
                    name=name,
                    image=str(c.get("image", "")),
                    kind="running" if running else "waiting",
                    started_at=now_iso(),
                    ready=running,
                    started=running,
                    restart_count=sim.restarts,
                    last_terminated=sim.last,
                    cid=container_id(uid, name, sim.restarts),
                )
            )
        return out

    def _finish(self, key: str, sim: SimPod) -> None:
        plan = planned_exit(sim.pod, self.settings)
        code = plan[0] if plan else 0
        policy = (sim.pod.get("spec") or {}).get("restartPolicy") or "Always"
        for c in sim.containers:
            c.kind, c.exit_code, c.reason = "terminated", code, terminal_reason(code)
            c.finished_at, c.ready = now_iso(), False
        if should_restart(policy, code):
            sim.last = sim.containers[0].terminated_json() if sim.containers else None
            sim.restarts += 1
            sim.containers = self._containers(sim, running=True)
            self._at(plan[1] if plan else self.settings.job_run_seconds, key, "finish")
        else:
            sim.stage = "done"

    def _write(self, kind: str, path: str, body: JSON | None, key: str, attempt: int) -> None:
        try:
            if kind == "delete":
                final_delete(self.client, path, str((body or {}).get("uid", "")))
            else:
                self.client.patch(path, body or {}, patch_type="merge")
        except NotFound:
            log.debug("simulated %s of %s: pod is gone", kind, path)
        except KubeError as exc:
            # like a real kubelet's status manager, keep trying while the pod exists (0.2 s doubling to 5 s)
            delay = min(0.2 * 2**attempt, 5.0)
            log.debug("simulated %s of %s failed (again in %.1fs): %s", kind, path, delay, exc)
            with self._cv:
                if key in self._pods:
                    self._at(delay, key, "delete" if kind == "delete" else "resync", attempt + 1)
        except Exception:
            log.exception("simulated %s of %s failed", kind, path)
