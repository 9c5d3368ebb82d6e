"""The localkube kubelet: registers a Node, keeps its Lease, binds pending pods to it (there is no
kube-scheduler), watches the pods bound to it and hands them to a runtime (simulated or process), and
serves container logs over HTTP like a real kubelet."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from localkube.kubelet.logs import LogServer
from localkube.kubelet.node import (
    LEASE_NAMESPACE,
    lease_object,
    micro_time,
    node_object,
    node_status,
    read_machine,
)
from localkube.kubelet.runtime import Runtime, path_of, pod_key
from localkube.kubelet.settings import KubeletSettings, build_settings
from rayside.kubeclient import AlreadyExists, Gone, KubeClient, KubeError, NotFound

log = logging.getLogger(__name__)
JSON = dict[str, Any]


class Kubelet:
    """A node agent for localkube; `mode` is "simulated" (kwok-like) or "process" (runs real processes)."""

    def __init__(
        self,
        client: KubeClient,
        *,
        mode: str,
        state_dir: Path,
        node_name: str = "localkube",
        **options: Any,
    ) -> None:
        self.client = client
        self.settings: KubeletSettings = build_settings(mode, node_name, options)
        self.state_dir = Path(state_dir)
        self.node_name = node_name
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._machine = read_machine()
        self._node_uid = ""
        self.runtime: Runtime = self._make_runtime()
        s = self.settings
        self._logs = LogServer(self.runtime.log_source, s.log_host, s.log_port, s.log_token or None)
        self._known: set[str] = set()
        self._binder = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kubelet-bind")
        self._binding: set[str] = set()
        self._binding_lock = threading.Lock()
        self._listed_lock = threading.Lock()
        self._watches_pending = 0
        self._ready = threading.Event()

    def _make_runtime(self) -> Runtime:
        if self.settings.mode == "simulated":
            from localkube.kubelet.simulated import SimulatedRuntime

            return SimulatedRuntime(self.client, self.settings, host_ip="127.0.0.1")
        from localkube.kubelet.process import ProcessRuntime

        return ProcessRuntime(self.client, self.settings, self.state_dir)

    @property
    def log_port(self) -> int:
        return self._logs.port

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._logs.start()
        self.runtime.start()
        self._register_node()
        self._spawn("lease", self._lease_loop)
        node_sel = f"spec.nodeName={self.node_name}"
        watches: list[tuple[str, str, str, Callable[[str, JSON], None]]] = [
            ("pods", "/api/v1/pods", node_sel, self._pod_event)
        ]
        if self.settings.bind:
            watches.append(("binder", "/api/v1/pods", "spec.nodeName=", self._bind_event))
        if self.runtime.wants_services:
            watches.append(("services", "/api/v1/services", "", self._service_event))
        self._watches_pending = len(watches)
        for name, path, selector, handle in watches:
            self._spawn(name, functools.partial(self._watch_loop, path, selector, handle))
        log.debug("kubelet %s started (%s mode)", self.node_name, self.settings.mode)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the Node is registered and every watch has its initial list (later changes are then
        delivered by the watch from that list's resourceVersion); False on timeout or stop."""
        return self._ready.wait(timeout) and not self._stop.is_set()

    def _listed_once(self) -> None:
        with self._listed_lock:
            self._watches_pending -= 1
            if self._watches_pending <= 0:
                self._ready.set()

    def stop(self) -> None:
        """Stop watching and end every process this kubelet started."""
        self._stop.set()
        self._ready.set()  # wakes wait_ready(), which then reports False
        self._binder.shutdown(wait=False, cancel_futures=True)
        self.runtime.stop()
        self._logs.stop()
        deadline = time.monotonic() + 1.0  # one second for all (watch threads may sit in a socket read)
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=f"kubelet-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    # -- node and lease -----------------------------------------------------------------------------------
    def _node_status(self) -> JSON:
        return node_status(
            self._machine,
            internal_ip="127.0.0.1",
            hostname=self.node_name,
            kubelet_port=self.log_port,
            max_pods=self.settings.pods_capacity,
            mode=self.settings.mode,
        )

    def _register_node(self) -> None:
        status = self._node_status()
        body = node_object(self.node_name, self._machine, self.settings.mode, status)
        path = f"/api/v1/nodes/{self.node_name}"
        try:
            created = self.client.create("/api/v1/nodes", body)
        except AlreadyExists:
            created = self.client.get(path)
        self._node_uid = str((created.get("metadata") or {}).get("uid", ""))
        self.client.patch(path + "/status", {"status": status}, patch_type="merge")

    def _lease_loop(self) -> None:
        beats = 0
        while not self._stop.is_set():
            try:
                self._renew_lease()
                beats += 1
                if beats % 4 == 0:
                    self._heartbeat()
            except KubeError as exc:
                log.debug("lease renewal for node %s failed: %s", self.node_name, exc)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("lease renewal for node %s failed", self.node_name)
            self._stop.wait(self.settings.heartbeat_seconds)

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{self.node_name}"
        try:
            self.client.patch(path, {"spec": {"renewTime": micro_time()}}, patch_type="merge")
            return
        except NotFound:
            pass
        body = lease_object(self.node_name, self._node_uid, self.settings.lease_seconds)
        collection = path.rsplit("/", 1)[0]
        try:
            self.client.create(collection, body)
        except NotFound:  # namespace missing
            with contextlib.suppress(AlreadyExists):
                self.client.create("/api/v1/namespaces", {"metadata": {"name": LEASE_NAMESPACE}})
            self.client.create(collection, body)
        except AlreadyExists:
            pass

    def _heartbeat(self) -> None:
        path = f"/api/v1/nodes/{self.node_name}/status"
        try:
            self.client.patch(path, {"status": self._node_status()}, patch_type="merge")
        except NotFound:
            self._register_node()

    # -- watches ------------------------------------------------------------------------------------------
    def _watch_loop(self, path: str, field_selector: str, handle: Callable[[str, JSON], None]) -> None:
        params = {"fieldSelector": field_selector} if field_selector else {}
        rv = ""
        first = True
        while not self._stop.is_set():
            try:
                if not rv:
                    items, rv = self.client.list_all(path, params)
                    self._relisted(path, field_selector, items, handle)
                    if first:
                        first = False
                        self._listed_once()
                for ev in self.client.watch(path, resource_version=rv, timeout_seconds=60, params=params):
                    if self._stop.is_set():
                        return
                    rv = str((ev.object.get("metadata") or {}).get("resourceVersion") or rv)
                    if ev.type != "BOOKMARK":
                        handle(ev.type, ev.object)
            except Gone:
                rv = ""
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.debug("watch %s?%s interrupted: %s", path, field_selector, exc)
                self._stop.wait(0.5)

    def _relisted(
        self, path: str, selector: str, items: list[JSON], handle: Callable[[str, JSON], None]
    ) -> None:
        if path == "/api/v1/pods" and selector.endswith(self.node_name):
            present = {pod_key(p) for p in items}
            for key in self._known - present:
                ns, name = key.split("/", 1)
                handle("DELETED", {"metadata": {"namespace": ns, "name": name}})
        for item in items:
            handle("ADDED", item)

    def _pod_event(self, event_type: str, pod: JSON) -> None:
        key = pod_key(pod)
        try:
            if event_type == "DELETED":
                self._known.discard(key)
                self.runtime.forget(pod)
            else:
                self._known.add(key)
                self.runtime.sync(pod)
        except Exception:
            log.exception("kubelet failed to handle %s of pod %s", event_type, key)

    def _service_event(self, event_type: str, svc: JSON) -> None:
        try:
            self.runtime.service_event(event_type, svc)
        except Exception:
            log.exception("kubelet failed to handle service event")

    # -- scheduler role -------------------------------------------------------------------------------------
    def _bind_event(self, event_type: str, pod: JSON) -> None:
        if event_type == "DELETED":
            return
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if spec.get("nodeName") or meta.get("deletionTimestamp"):
            return
        names = self.settings.scheduler_names
        if names is not None and (spec.get("schedulerName") or "default-scheduler") not in names:
            return
        key = pod_key(pod)
        with self._binding_lock:
            if key in self._binding:
                return
            self._binding.add(key)
        self._binder.submit(self._bind, pod)

    def _bind(self, pod: JSON) -> None:
        """Bind one pod; like kube-scheduler's backoff queue, a failed binding is retried (0.2 s doubling to
        5 s) for as long as the pod exists, is unbound and the kubelet runs."""
        meta = pod.get("metadata") or {}
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        delay = 0.2
        try:
            while not self._stop.is_set():
                try:
                    self.client.create(path_of(pod, "binding"), binding)
                    log.debug("bound pod %s to node %s", pod_key(pod), self.node_name)
                    return
                except NotFound:
                    return
                except KubeError as exc:
                    log.debug("binding pod %s failed (retrying in %.1fs): %s", pod_key(pod), delay, exc)
                if self._stop.wait(delay) or not self._still_unbound(pod):
                    return
                delay = min(delay * 2, 5.0)
        finally:
            with self._binding_lock:
                self._binding.discard(pod_key(pod))

    def _still_unbound(self, pod: JSON) -> bool:
        try:
            current = self.client.get(path_of(pod))
        except NotFound:
            return False
        except KubeError:
            return True  # cannot tell: try the binding again
        spec, meta = current.get("spec") or {}, current.get("metadata") or {}
        return not spec.get("nodeName") and not meta.get("deletionTimestamp")
