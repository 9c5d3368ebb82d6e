"""The localkube kubelet: registers a Node, keeps its Lease, binds pending pods to it (there is no
kube-scheduler), watches the pods bound to it and hands them to a runtime (simulated or process), and
serves container logs over HTTP like a real kubelet.

Its watches are shared-runtime informers (`rayside.runtime.informer`): the pods bound to this node, the
unbound pods (when it also binds) and, for runtimes that want them, Services. `wait_ready()` answers once
each of them has its first list."""

from __future__ import annotations

import contextlib
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
from localkube.kubelet.runtime import Runtime
from localkube.kubelet.settings import KubeletSettings, build_settings
from rayside.kubeclient import AlreadyExists, KubeClient, KubeError, NotFound
from rayside.objects import (
    JSON,
    LEASES,
    NAMESPACES,
    NODES,
    PODS,
    SERVICES,
    is_deleting,
    key_of,
    name_of,
    namespace_of,
    uid_of,
)
from rayside.runtime.informer import Informer, TypedHandler, typed_handler

log = logging.getLogger(__name__)


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
        self._binder = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kubelet-bind")
        self._binding: set[str] = set()
        self._binding_lock = threading.Lock()
        self._informers: list[Informer] = []
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
        self._watch("pods", PODS.path(), f"spec.nodeName={self.node_name}", self._pod_event)
        if self.settings.bind:
            self._watch("binder", PODS.path(), "spec.nodeName=", self._bind_event)
        if self.runtime.wants_services:
            self._watch("services", SERVICES.path(), "", self._service_event)
        self._spawn("ready", self._await_synced)
        log.debug("kubelet %s started (%s mode)", self.node_name, self.settings.mode)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the Node is registered and every watch has its initial list (later changes are then
        delivered by the watch from that list's resourceVersion); False on timeout or stop."""
        return self._ready.wait(timeout) and not self._stop.is_set()

    def _await_synced(self) -> None:
        for informer in self._informers:
            while not informer.synced.wait(0.1):
                if self._stop.is_set():
                    return
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
        path = NODES.path(None, self.node_name)
        try:
            created = self.client.create(NODES.path(), body)
        except AlreadyExists:
            created = self.client.get(path)
        self._node_uid = uid_of(created)
        self.client.patch(NODES.path(None, self.node_name, "status"), {"status": status}, patch_type="merge")

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
        path = LEASES.path(LEASE_NAMESPACE, self.node_name)
        try:
            self.client.patch(path, {"spec": {"renewTime": micro_time()}}, patch_type="merge")
            return
        except NotFound:
            pass
        body = lease_object(self.node_name, self._node_uid, self.settings.lease_seconds)
        collection = LEASES.path(LEASE_NAMESPACE)
        try:
            self.client.create(collection, body)
        except NotFound:  # namespace missing
            with contextlib.suppress(AlreadyExists):
                self.client.create(NAMESPACES.path(), {"metadata": {"name": LEASE_NAMESPACE}})
            self.client.create(collection, body)
        except AlreadyExists:
            pass

    def _heartbeat(self) -> None:
        path = NODES.path(None, self.node_name, "status")
        try:
            self.client.patch(path, {"status": self._node_status()}, patch_type="merge")
        except NotFound:
            self._register_node()

    # -- watches ------------------------------------------------------------------------------------------
    def _watch(self, name: str, path: str, field_selector: str, handle: TypedHandler) -> None:
        """A list+watch of `path` narrowed by `field_selector`; `handle` gets (type, object, previous)."""
        informer = Informer(
            self.client,
            path,
            field_selector=field_selector or None,
            on_change=typed_handler(handle),
            watch_timeout=60,
            name=f"kubelet-{name}",
        )
        self._informers.append(informer)
        self._threads.append(informer.start(self._stop))

    def _pod_event(self, event_type: str, pod: JSON, _old: JSON | None) -> None:
        key = key_of(pod)
        try:
            if event_type == "DELETED":
                self.runtime.forget(pod)
            else:
                self.runtime.sync(pod)
        except Exception:
            log.exception("kubelet failed to handle %s of pod %s", event_type, key)

    def _service_event(self, event_type: str, svc: JSON, _old: JSON | None) -> None:
        try:
            self.runtime.service_event(event_type, svc)
        except Exception:
            log.exception("kubelet failed to handle service event")

    # -- scheduler role -------------------------------------------------------------------------------------
    def _bind_event(self, event_type: str, pod: JSON, _old: JSON | None) -> None:
        if event_type == "DELETED":
            return
        spec = pod.get("spec") or {}
        if spec.get("nodeName") or is_deleting(pod):
            return
        names = self.settings.scheduler_names
        if names is not None and (spec.get("schedulerName") or "default-scheduler") not in names:
            return
        key = key_of(pod)
        with self._binding_lock:
            if key in self._binding:
                return
            self._binding.add(key)
        self._binder.submit(self._bind, pod)

    def _bind(self, pod: JSON) -> None:
        """Bind one pod; like kube-scheduler's backoff queue, a failed binding is retried (0.2 s doubling to
        5 s) for as long as the pod exists, is unbound and the kubelet runs."""
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name_of(pod), "namespace": namespace_of(pod)},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        delay = 0.2
        try:
            while not self._stop.is_set():
                try:
                    self.client.create(PODS.path_of(pod, "binding"), binding)
                    log.debug("bound pod %s to node %s", key_of(pod), self.node_name)
                    return
                except NotFound:
                    return
                except KubeError as exc:
                    log.debug("binding pod %s failed (retrying in %.1fs): %s", key_of(pod), delay, exc)
                if self._stop.wait(delay) or not self._still_unbound(pod):
                    return
                delay = min(delay * 2, 5.0)
        finally:
            with self._binding_lock:
                self._binding.discard(key_of(pod))

    def _still_unbound(self, pod: JSON) -> bool:
        try:
            current = self.client.get(PODS.path_of(pod))
        except NotFound:
            return False
        except KubeError:
            return True  # cannot tell: try the binding again
        spec = current.get("spec") or {}
        return not spec.get("nodeName") and not is_deleting(current)
