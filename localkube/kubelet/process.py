"""Process runtime: each container of a pod runs as a local process group, in a per-pod network
namespace (as root) with the pod's volumes bind-mounted at their mountPaths in a private mount namespace.
One `PodWorker` (thread) per pod; see docs/localkube-kubelet.md for what cannot be emulated."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from localkube.kubelet.container import ContainerRunner, Launch, all_pids, has_marker, session_of
from localkube.kubelet.logs import LogSource
from localkube.kubelet.network import (
    Network,
    NetworkError,
    PodNet,
    netns_pids,
    netns_supported,
    write_in_place,
)
from localkube.kubelet.node import read_machine
from localkube.kubelet.podenv import (
    EnvError,
    NodeResources,
    PodAddr,
    container_argv,
    container_env,
    hosts_file,
)
from localkube.kubelet.runtime import final_delete
from localkube.kubelet.settings import POD_TOKEN_ENV, KubeletSettings
from localkube.kubelet.status import PodView, build_pod_status, now_iso
from localkube.kubelet.volumes import (
    SERVICEACCOUNT_PATH,
    Mount,
    automounts_token,
    materialize,
    mount_plan,
    mount_script,
    prepare_targets,
    remove_targets,
    serviceaccount_mount,
    write_serviceaccount,
)
from rayside.kubeclient import KubeClient, KubeError, NotFound
from rayside.objects import (
    CONFIGMAPS,
    JSON,
    PODS,
    SECRETS,
    is_deleting,
    key_of,
    labels_of,
    meta_of,
    name_of,
    namespace_of,
    uid_of,
)

log = logging.getLogger(__name__)
HOST_IP = "127.0.0.1"
BASH_PROFILE = """# Written by the localkube kubelet. A login shell (bash -l) runs /etc/profile,
# which resets PATH; restore the PATH this container was started with.
if [ -n "$LOCALKUBE_PATH" ]; then export PATH="$LOCALKUBE_PATH"; fi
"""


def _tool(name: str) -> str:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin") or name


class PodWorker:
    """Runs one pod: network, volumes, init containers in order, then the main containers."""

    def __init__(self, rt: ProcessRuntime, pod: JSON, slot: int) -> None:
        spec = pod.get("spec") or {}
        self.rt, self.pod, self.settings = rt, pod, rt.settings
        self.key, self.uid = key_of(pod), uid_of(pod)
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        self.grace = float(spec.get("terminationGracePeriodSeconds") or 30)
        self.dir = rt.state_dir / "pods" / f"{namespace_of(pod)}_{name_of(pod)}_{self.uid[:8]}"
        self.home, self.tmp = self.dir / "home", rt.tmp_root / str(slot)
        self.tmp_view = rt.pod_tmp if rt.root else self.tmp  # the pod's TMPDIR; see _mounts
        self.net: PodNet | None = None
        self.pod_ip, self.start_time = "", now_iso()
        self.inits = [ContainerRunner(self, c, init=True) for c in spec.get("initContainers") or []]
        self.mains = [ContainerRunner(self, c, init=False) for c in spec.get("containers") or []]
        for r in self.mains:
            r.state.reason = "PodInitializing" if self.inits else "ContainerCreating"
        self.volume_paths: dict[str, str] = {}
        self.serviceaccount_dir = ""
        self.created: list[Path] = []
        self.stopping = threading.Event()
        self.done = threading.Event()
        self.deleting = False
        self._publish_lock = threading.Lock()
        self._last = ""
        self.thread = threading.Thread(target=self._run, name=f"pod-{self.key}", daemon=True)

    # -- the pod's life ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self._setup() and self._run_inits():
                threads = [threading.Thread(target=r.supervise, daemon=True) for r in self.mains]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        except Exception:
            log.exception("pod %s: runtime failure", self.key)
        finally:
            self.reap()
            self.publish()
            self.done.set()

    def _setup(self) -> bool:
        for d in (self.dir, self.home, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        (self.home / ".bash_profile").write_text(BASH_PROFILE)
        host_network = bool((self.pod.get("spec") or {}).get("hostNetwork"))
        self.net = PodNet(ip=HOST_IP) if host_network else self.rt.network.add_pod()
        self.pod_ip = self.net.ip
        self.rt.dns_dirty.set()
        while not self.stopping.is_set():
            try:
                pod = self.view_pod()
                self.volume_paths = materialize(
                    pod, self.dir, self.rt.state_dir, self.rt.lookup, self.rt.node, self.rt.pod_token
                )
                if automounts_token(pod):
                    self.serviceaccount_dir = write_serviceaccount(
                        pod, self.dir, self.rt.pod_token, self.rt.ca_pem
                    )
                self.publish()
                return True
            except EnvError as exc:
                for r in self.mains:
                    r.state.reason, r.state.message = "CreateContainerConfigError", str(exc)
                self.publish()
                self.stopping.wait(2.0)
        return False

    def _run_inits(self) -> bool:
        for r in self.inits:
            while True:
                code = r.run_to_exit()
                self.publish()
                if code is None:
                    return False
                if code == 0:
                    break
                if self.restart_policy == "Never":
                    return False
                r._await_restart(self.settings.restart_backoff)
        return not self.stopping.is_set()

    # -- container plumbing (PodContext) -------------------------------------------------------------
    def view_pod(self) -> JSON:
        """The pod as the downward API sees it (addresses known before the API server has them)."""
        pod = copy.deepcopy(self.pod)
        status = pod.setdefault("status", {})
        status.update(
            podIP=self.pod_ip, podIPs=[{"ip": self.pod_ip}], hostIP=HOST_IP, hostIPs=[{"ip": HOST_IP}]
        )
        return pod

    def base_env(self) -> dict[str, str]:
        api_host, api_port = self.rt.network.api_endpoint()
        env = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ", "TERM")}
        env.update(
            PATH=self.rt.path,
            HOME=str(self.home),
            HOSTNAME=name_of(self.pod),
            TMPDIR=str(self.tmp_view),
            RAY_TMPDIR=str(self.tmp_view),
            GRPC_DNS_RESOLVER="native",
            KUBERNETES_SERVICE_HOST=api_host,
            KUBERNETES_SERVICE_PORT=str(api_port),
            KUBERNETES_SERVICE_PORT_HTTPS=str(api_port),
            KUBERNETES_PORT=f"tcp://{api_host}:{api_port}",
            LOCALKUBE_POD_UID=self.uid,
        )
        env.update(self.settings.extra_env)
        return env

    def launch(self, spec: JSON, command: list[str] | None = None) -> Launch:
        env = container_env(self.view_pod(), spec, self.base_env(), self.rt.lookup, self.rt.node)
        env["LOCALKUBE_PATH"] = env.get("PATH", "")
        env["LOCALKUBE_CONTAINER"] = str(spec.get("name", ""))
        argv = container_argv(spec, env) if command is None else list(command)
        mounts = self._mounts(spec)
        self.created.extend(prepare_targets(mounts))
        prefix = self.net.exec_prefix() if self.net else []
        if prefix:
            prefix = [self.rt.ip_tool, *prefix[1:]]
        if mounts:
            prefix = prefix or [self.rt.unshare_tool, "--mount", "--propagation", "private"]
            argv = [*prefix, "/bin/sh", "-c", mount_script(mounts), "sh", *argv]
        else:
            argv = [*prefix, *argv]
        workdir = str(spec.get("workingDir") or "")
        cwd = workdir if workdir and os.path.isdir(workdir) else str(self.home)
        return Launch(argv, env, cwd)

    def _mounts(self, spec: JSON) -> list[Mount]:
        """The pod's private temp dir on the temp path every pod sees (as /tmp in a container), then the
        container's volumes; root only. A Ray worker uses the head's temp dir path: with a path per pod,
        workers shared the head's session dir and two starting together took the same socket names
        (raylet.1): one raylet died with "bind: Address already in use" and both crash-looped in lockstep."""
        if not self.rt.root:
            return []
        private_tmp = [Mount(str(self.tmp), str(self.tmp_view), False)] if self.tmp != self.tmp_view else []
        account = serviceaccount_mount(spec, self.serviceaccount_dir) if self.serviceaccount_dir else None
        return [*private_tmp, *mount_plan(spec, self.volume_paths), *([account] if account else [])]

    def log_path(self, container: str, index: int) -> Path:
        return self.dir / "logs" / container / f"{index}.log"

    def publish(self) -> None:
        """Write the pod status if it changed (one PATCH of /status)."""
        with self._publish_lock:
            view = PodView(HOST_IP, self.pod_ip, self.start_time)
            for runners, into in ((self.inits, view.inits), (self.mains, view.mains)):
                for r in runners:
                    with r.lock:
                        into.append(dataclasses.replace(r.state))
            status = build_pod_status(self.pod, view)
            fingerprint = json.dumps([status.get(k) for k in ("phase", "podIP")] + [
                [c.to_json() for c in view.inits + view.mains]
            ], sort_keys=True)  # fmt: skip
            if fingerprint == self._last:
                return
            try:
                self.rt.client.patch(PODS.path_of(self.pod, "status"), {"status": status}, patch_type="merge")
                self._last = fingerprint
            except NotFound:
                return
            except KubeError as exc:
                log.debug("pod %s: status write failed: %s", self.key, exc)
        self.rt.dns_dirty.set()

    def ready(self) -> bool:
        return bool(self.mains) and all(r.state.ready for r in self.mains)

    # -- stopping ------------------------------------------------------------------------------------
    def sessions(self) -> set[int]:
        """Session ids of the pod's running containers: each run is started as a session leader, and every
        process it starts stays in that session unless it calls setsid(). Only live runs: the id of an
        ended one may be reused by another pod's container."""
        procs = [r.proc for r in self.inits + self.mains]
        return {p.pid for p in procs if p is not None and p.poll() is None}

    def pids(self) -> list[int]:
        if self.net is not None and self.net.netns:
            return netns_pids(self.net.netns)
        marker = f"LOCALKUBE_POD_UID={self.uid}".encode()
        sessions = self.sessions()
        return [pid for pid in all_pids() if has_marker(pid, marker) or session_of(pid) in sessions]

    def kill_leftovers(self, container: str, session: int) -> None:
        """When a container's main process ends, its other processes die with it (as with the PID
        namespace of a real container): SIGKILL every process in the run's session (within the pod's
        netns if it has one) and every process of the pod with this container's env marker. The marker
        alone is not enough: a process that sets its title (Ray's agents and workers) overwrites the memory
        /proc/PID/environ shows, and a survivor keeps the pod's fixed ports across the restart."""
        marker = f"LOCALKUBE_CONTAINER={container}".encode()
        in_pod = self.pids()
        scope = in_pod if self.net is not None and self.net.netns else all_pids()
        victims = {pid for pid in in_pod if has_marker(pid, marker)}
        victims.update(pid for pid in scope if session_of(pid) == session)
        for pid in victims:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def reap(self) -> None:
        """SIGKILL every process still left in the pod (daemons that left the process group)."""
        for pid in self.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def terminate(self, grace: float) -> None:
        """Graceful stop of every container, then kill leftovers; waits for the pod thread to end."""
        self.stopping.set()
        deadline = time.monotonic() + max(0.0, grace)
        threads = [
            threading.Thread(target=r.terminate, args=(deadline,), daemon=True)
            for r in self.inits + self.mains
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.done.wait(max(1.0, deadline - time.monotonic() + 5))
        self.reap()

    def kill_now(self) -> None:
        self.stopping.set()
        for r in self.inits + self.mains:
            r.kill_now()
        self.reap()
        self.done.wait(10)

    def delete_after_termination(self, grace: float) -> None:
        self.terminate(grace)
        self.publish()
        try:
            final_delete(self.rt.client, PODS.path_of(self.pod), self.uid)
        except KubeError as exc:
            log.debug("pod %s: final delete: %s", self.key, exc)

    def cleanup(self) -> None:
        if self.net is not None:
            self.rt.network.remove_pod(self.net)
        remove_targets(self.created)
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _ca_of(client: KubeClient) -> bytes:
    """The CA bundle the kubelet's own client verifies the API server with (b"" over plain HTTP)."""
    verify = client.session.verify
    if isinstance(verify, str) and os.path.isfile(verify):
        return Path(verify).read_bytes()
    return b""


class ProcessRuntime:
    """Runs the pods bound to this node as local processes."""

    wants_services = True

    def __init__(self, client: KubeClient, settings: KubeletSettings, state_dir: Path) -> None:
        self.client, self.settings, self.state_dir = client, settings, state_dir
        url = urlparse(settings.api_server_url or client.host)
        use_netns = settings.network == "netns" or (settings.network == "auto" and netns_supported())
        self.network = Network("netns" if use_netns else "host", url.hostname or "127.0.0.1", url.port or 443)
        self.root = os.geteuid() == 0
        # what pods' service account mounts hold: a token the API server accepts and its CA (if https)
        self.pod_token = settings.pod_token or os.environ.get(POD_TOKEN_ENV, "")
        self.ca_pem = _ca_of(client)
        machine = read_machine()
        self.node = NodeResources(machine.cpus, machine.memory_bytes)
        self.hostname = machine.hostname
        venv_bin = str(Path(sys.executable).parent)
        self.path = ":".join(dict.fromkeys([venv_bin, *os.environ.get("PATH", "").split(":")]))
        self.ip_tool, self.unshare_tool = _tool("ip"), _tool("unshare")
        self.tmp_root = Path("/tmp")
        self.pod_tmp = self.tmp_root / "pod"
        self.workers: dict[str, PodWorker] = {}
        self.services: dict[str, JSON] = {}
        self.lock = threading.Lock()
        self.dns_dirty = threading.Event()
        self._stopping = threading.Event()
        self._slots = 0

    def start(self) -> None:
        self.tmp_root = Path(tempfile.mkdtemp(prefix="lk", dir="/tmp"))
        self.pod_tmp = self.tmp_root / "pod"
        self.pod_tmp.mkdir()
        if self.root:  # a shared mount point, kept: removing it with one pod would unmount it in the others
            Path(SERVICEACCOUNT_PATH).mkdir(parents=True, exist_ok=True)
        try:
            self.network.setup()
        except NetworkError as exc:
            if self.settings.network != "auto":
                raise
            log.warning("pod network namespaces unavailable (%s); pods share the host network", exc)
            self.network.teardown()
            self.network = Network("host", self.network.api_host, self.network.api_port)
        threading.Thread(target=self._dns_loop, name="kubelet-dns", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        self.dns_dirty.set()
        with self.lock:
            workers = list(self.workers.values())
            self.workers.clear()
        threads = [threading.Thread(target=w.terminate, args=(2.0,), daemon=True) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for w in workers:
            w.kill_now()
            w.cleanup()
        self.network.teardown()
        shutil.rmtree(self.tmp_root, ignore_errors=True)

    # -- events ---------------------------------------------------------------------------------------
    def sync(self, pod: JSON) -> None:
        key, uid = key_of(pod), uid_of(pod)
        with self.lock:
            worker = self.workers.get(key)
            if worker is not None and worker.uid != uid:
                self._drop(key)
                worker = None
            if worker is None:
                if is_deleting(pod) or (pod.get("status") or {}).get("phase") in (
                    "Succeeded",
                    "Failed",
                ):
                    worker = None
                else:
                    self._slots += 1
                    worker = PodWorker(self, pod, self._slots)
                    self.workers[key] = worker
                    worker.thread.start()
                    return
        if worker is None:
            if is_deleting(pod):
                self._delete_unknown(pod)
            return
        worker.pod = pod
        if is_deleting(pod) and not worker.deleting:
            worker.deleting = True
            grace = float(meta_of(pod).get("deletionGracePeriodSeconds") or 0)
            threading.Thread(target=worker.delete_after_termination, args=(grace,), daemon=True).start()

    def _delete_unknown(self, pod: JSON) -> None:
        uid = uid_of(pod)
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": uid},
        }
        with contextlib.suppress(KubeError):
            self.client.delete(PODS.path_of(pod), params={"gracePeriodSeconds": "0"}, body=body)

    def forget(self, pod: JSON) -> None:
        with self.lock:
            self._drop(key_of(pod))

    def _drop(self, key: str) -> None:
        worker = self.workers.pop(key, None)
        if worker is None:
            return

        def finish() -> None:
            worker.kill_now()
            worker.cleanup()
            self.dns_dirty.set()

        threading.Thread(target=finish, daemon=True).start()

    def service_event(self, event_type: str, service: JSON) -> None:
        key = key_of(service)
        with self.lock:
            if event_type == "DELETED":
                self.services.pop(key, None)
            else:
                self.services[key] = service
        self.dns_dirty.set()

    def lookup(self, kind: str, namespace: str, name: str) -> JSON | None:
        resource = SECRETS if kind == "Secret" else CONFIGMAPS
        try:
            return self.client.get(resource.path(namespace, name))
        except NotFound:
            return None

    def log_source(self, namespace: str, pod: str, container: str, previous: bool) -> LogSource | None:
        with self.lock:
            worker = self.workers.get(f"{namespace}/{pod}")
        if worker is None:
            return None
        runner = next((r for r in worker.inits + worker.mains if r.name == container), None)
        if runner is None:
            return None
        index = runner.state.restart_count - 1 if previous else runner.run_index
        if index < 0:
            return None

        def live() -> bool:
            proc = runner.proc
            return runner.run_index == index and proc is not None and proc.poll() is None

        return LogSource(path=worker.log_path(container, index), live=live)

    # -- DNS ------------------------------------------------------------------------------------------
    def _dns_loop(self) -> None:
        while not self._stopping.is_set():
            self.dns_dirty.wait()
            self.dns_dirty.clear()
            if self._stopping.is_set():
                return
            try:
                self._write_hosts()
            except Exception:
                log.exception("rewriting pod /etc/hosts files failed")
            time.sleep(0.1)

    def _write_hosts(self) -> None:
        with self.lock:
            workers = list(self.workers.values())
            services = list(self.services.values())
        addrs: dict[str, PodAddr] = {}
        for w in workers:
            spec = w.pod.get("spec") or {}
            addrs[w.key] = PodAddr(
                namespace=namespace_of(w.pod),
                name=name_of(w.pod),
                ip=w.pod_ip,
                ready=w.ready(),
                labels=dict(labels_of(w.pod)),
                hostname=str(spec.get("hostname") or ""),
                subdomain=str(spec.get("subdomain") or ""),
            )
        pods = list(addrs.values())
        for w in workers:
            path = w.net.hosts_path() if w.net is not None else None
            if path is not None:
                write_in_place(path, hosts_file(addrs[w.key], services, pods, self.hostname))


def quote_argv(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
