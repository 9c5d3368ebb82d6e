"""`LocalKube`: the API server composed with storage, TLS, kubeconfig, built-in controllers and a kubelet."""

from __future__ import annotations

import logging
import os
import random
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from localkube import tls
from localkube.faults import Faults
from localkube.httpio import Server
from localkube.options import WriteOptions
from localkube.persist import SqlitePersister
from localkube.registry import Registry, types_from_crd
from localkube.server import ApiServer
from localkube.store import Store
from localkube.writes import KubeApi

log = logging.getLogger(__name__)
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Settings:
    """Everything that shapes one LocalKube instance (read once; see docs/localkube.md)."""

    host: str = "127.0.0.1"
    port: int = 0
    https: bool = False
    token: str | None = None
    extra_tokens: tuple[str, ...] = ()  # further accepted bearer tokens (e.g. for pods' service accounts)
    anonymous: bool | None = None  # default: allowed unless a token is set
    data_dir: Path | None = None
    data_sync: str = "NORMAL"  # SQLite synchronous: NORMAL survives kill -9, FULL also power loss
    state_dir: Path | None = None
    kubeconfig: Path | None = None
    kubelet: str | None = None  # None | "simulated" | "process"
    kubelet_options: dict[str, Any] = field(default_factory=dict)
    kubelet_process: bool = False  # run the kubelet as a child process (`python -m localkube.kubelet`)
    controllers: bool = False
    controller_options: dict[str, Any] = field(default_factory=dict)
    history: int = 10000
    bookmark_interval: float = 60.0
    event_ttl: float = (
        3600.0  # core/v1 Events older than this are deleted (like kube-apiserver's --event-ttl)
    )
    seed: int | None = None
    faults: Faults = field(default_factory=Faults)
    node_monitor_grace: float = 40.0  # a Node whose Lease is older than this becomes Ready=Unknown


INTERNAL_QPS: dict[str, Any] = {"qps": 1000.0, "burst": 2000}


class LocalKube:
    """A running local Kubernetes: start it, then use `.url`, `.kubeconfig` and the client factories."""

    def __init__(self, settings: Settings | None = None, **kw: Any) -> None:
        self.settings = settings or Settings(**kw)
        self.faults = self.settings.faults
        self._own_state = self.settings.state_dir is None
        self.state_dir = self.settings.state_dir or Path(tempfile.mkdtemp(prefix="localkube-"))
        self.kubeconfig = self.settings.kubeconfig or self.state_dir / "kubeconfig"
        self.url = ""
        self.store: Store | None = None
        self.api: KubeApi | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._parts: list[Any] = []
        self._stopping = threading.Event()
        self.kubelet_token = new_token()  # the API server presents it to kubelets when proxying pods/log
        self.pod_token = new_token()  # pods' service account token (accepted whenever tokens are checked)

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> LocalKube:
        s = self.settings
        persister = SqlitePersister(s.data_dir, s.data_sync) if s.data_dir is not None else None
        self.store = Store(history=s.history, persister=persister)
        registry = Registry()
        if persister is not None:
            rows, rv = persister.load()
            self.store.load(rows, rv)
            for skey, _ns, name, obj in rows:
                if skey == "apiextensions.k8s.io/customresourcedefinitions":
                    registry.set_crd(name, types_from_crd(obj))
        rng = random.Random(s.seed) if s.seed is not None else random.Random()
        self.api = KubeApi(self.store, registry, rng=rng)
        self._bootstrap()
        anonymous = s.anonymous if s.anonymous is not None else s.token is None
        tokens = {t for t in (s.token, *s.extra_tokens) if t}
        if tokens:
            tokens.add(self.pod_token)
        app = ApiServer(
            self.api,
            self.faults,
            tokens=tokens or None,
            anonymous=anonymous,
            bookmark_interval=s.bookmark_interval,
            kubelet_token=self.kubelet_token,
        )
        ctx = None
        ca_pem = None
        if s.https:
            from localkube.kubelet.network import pod_gateways

            certs = tls.make_certs(self.state_dir / "pki", pod_gateways())
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certs.cert_path, certs.key_path)
            ca_pem = certs.ca_pem
        self._server = Server((s.host, s.port), app, ssl_context=ctx)
        port = self._server.server_address[1]
        app.address = f"{s.host}:{port}"
        self.url = f"{'https' if s.https else 'http'}://{s.host}:{port}"
        tls.write_kubeconfig(self.kubeconfig, self.url, s.token, ca_pem)
        self._write_kubelet_token()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="localkube-http",
            daemon=True,
        )
        self._thread.start()
        threading.Thread(target=self._expire_events, name="localkube-event-ttl", daemon=True).start()
        log.debug("localkube listening on %s", self.url)
        self._start_parts()
        return self

    def _write_kubelet_token(self) -> None:
        """`<kubeconfig dir>/kubelet-token` (mode 0600): what a kubelet run on its own (`rayside localkube
        kubelet`) requires of log requests, so the API server can proxy pods/log to it."""
        path = self.kubeconfig.parent / "kubelet-token"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.kubelet_token + "\n")

    def _bootstrap(self) -> None:
        assert self.api is not None
        api, opts = self.api, WriteOptions(field_manager="localkube")
        ns_rt = api.registry.lookup("", "v1", "namespaces")
        svc_rt = api.registry.lookup("", "v1", "services")
        assert ns_rt is not None and svc_rt is not None
        for name in SYSTEM_NAMESPACES:
            if api.store.peek(ns_rt.storage_key, "", name) is None:
                api.create(ns_rt, "", {"metadata": {"name": name}}, opts)
        if api.store.peek(svc_rt.storage_key, "default", "kubernetes") is None:
            api.create(
                svc_rt,
                "default",
                {
                    "metadata": {
                        "name": "kubernetes",
                        "labels": {"component": "apiserver", "provider": "kubernetes"},
                    },
                    "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
                },
                opts,
            )

    def _expire_events(self) -> None:
        ttl = self.settings.event_ttl
        while not self._stopping.wait(min(60.0, max(1.0, ttl / 4))):
            assert self.store is not None
            cutoff = time.time() - ttl
            events, _ = self.store.items("core/events", deep=False)
            for ev in events:
                md = ev.get("metadata") or {}
                stamp = md.get("creationTimestamp") or ""
                try:
                    created = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
                except ValueError:
                    continue
                if created < cutoff:
                    self.store.remove("core/events", md.get("namespace", ""), md.get("name", ""))

    def _start_parts(self) -> None:
        s = self.settings
        # The built-in controllers and the kubelet are part of the emulated cluster, not clients under test:
        # they get a generous client rate limit so they never become the bottleneck (10,000 simulated pods
        # need two writes each).
        if s.controllers:
            from localkube.controllers import Controllers  # type: ignore[import-not-found,attr-defined,unused-ignore]

            self._parts.append(Controllers(self._internal_client(), **s.controller_options))
            from localkube.controllers.nodelifecycle import NodeLifecycle

            self._parts.append(NodeLifecycle(self._internal_client(), grace=s.node_monitor_grace))
        if s.kubelet and s.kubelet_process:
            from localkube.kubelet.child import KubeletProcess, kubelet_command
            from localkube.kubelet.logs import TOKEN_ENV
            from localkube.kubelet.settings import POD_TOKEN_ENV

            cmd = kubelet_command(self.kubeconfig, s.kubelet, self.state_dir / "kubelet", s.kubelet_options)
            env = {**os.environ, TOKEN_ENV: self.kubelet_token, POD_TOKEN_ENV: self.pod_token}
            self._parts.append(KubeletProcess(cmd, env=env))
        elif s.kubelet:
            from localkube.kubelet import Kubelet  # type: ignore[import-not-found,attr-defined,unused-ignore]

            self._parts.append(
                Kubelet(
                    self._internal_client(),
                    mode=s.kubelet,
                    state_dir=self.state_dir / "kubelet",
                    **{"log_token": self.kubelet_token, "pod_token": self.pod_token, **s.kubelet_options},
                )
            )
        for part in self._parts:
            part.start()

    def _internal_client(self) -> Any:
        """A client for a built-in part: generous rate limit, and no proxy lookup in the environment on every
        request (the server is local; requests would otherwise scan os.environ per request)."""
        client = self.kube_client(**INTERNAL_QPS)
        client.session.trust_env = False
        return client

    def stop(self) -> None:
        self._stopping.set()
        for part in reversed(self._parts):
            try:
                part.stop()
            except Exception:
                log.exception("stopping %s failed", type(part).__name__)
        self._parts.clear()
        if self.store is not None:
            self.store.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> LocalKube:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- clients and test helpers --------------------------------------------------------------------------
    def api_client(self) -> Any:
        """A configured official `kubernetes.client.ApiClient` for this server."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def kube_client(self, **kw: Any) -> Any:
        """A `rayside.kubeclient.KubeClient` for this server."""
        from rayside.kubeclient import KubeClient  # type: ignore[import-not-found,unused-ignore]

        return KubeClient.from_config(kubeconfig=str(self.kubeconfig), **kw)

    def compact(self) -> int:
        """Drop the watch history (watches from older resourceVersions then get 410 Expired)."""
        assert self.store is not None
        return self.store.compact()


def new_token() -> str:
    return secrets.token_urlsafe(24)
