"""One `rayside up` session: an in-process localkube (process kubelet, built-in controllers, API server on
loopback), the rayside operator in a thread, the CRDs, and the applied documents; `close()` undoes all of
it (the kubelet ends every pod process and removes pod networks; the temporary state dir goes)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from localkube.cluster import LocalKube, Settings, new_token
from rayside.kubeclient import AlreadyExists, KubeClient, NotFound
from rayside.objects import JSON, PODS, SERVICES, labels_of
from rayside.up.documents import Document

log = logging.getLogger(__name__)


def network_mode() -> str:
    """How pods are networked here: root gets a network namespace per pod, anyone else the host network."""
    if os.geteuid() == 0:
        return "running as root: each pod gets its own network namespace"
    return "running as an ordinary user: pods share the host network (ports must be free)"


class HeadResolver:
    """`<svc>.<ns>.svc...:<port>` → `http://<IP of a ready Pod the Service selects>:<port>` (the host has
    no cluster DNS; the operator's dashboard clients use this)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    def __call__(self, address: str) -> str:
        address = address.removeprefix("http://")
        host, _, port = address.rpartition(":")
        parts = host.split(".")
        if len(parts) < 2 or parts[0].replace(".", "").isdigit():
            return f"http://{address}"
        service, namespace = parts[:2]
        try:
            svc = self.client.get(SERVICES.path(namespace, service))
        except NotFound:
            return f"http://{address}"
        selector = (svc.get("spec") or {}).get("selector") or {}
        ip = pod_ip(self.client, namespace, selector)
        return f"http://{ip or host}:{port}"


def pod_ip(client: KubeClient, namespace: str, selector: dict[str, str]) -> str | None:
    """The IP of the first running Pod matching `selector`, if any."""
    labels = ",".join(f"{k}={v}" for k, v in selector.items())
    pods = client.list(PODS.path(namespace), {"labelSelector": labels}).get("items") or []
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("podIP") and status.get("phase") == "Running":
            return str(status["podIP"])
    return None


class Session:
    """Start with `start()`, then `apply(docs)`; always `close()`."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir  # None: a temporary dir; else a fixed one (`--keep`), removed on close
        self.lk: LocalKube | None = None
        self.client: KubeClient | None = None
        self._stop = threading.Event()
        self._operator_thread: threading.Thread | None = None
        self._closers: list[Any] = []

    @property
    def kubeconfig(self) -> str:
        assert self.lk is not None
        return str(self.lk.kubeconfig)

    def start(self) -> KubeClient:
        from ray_operator.cli import _client, install_crds
        from ray_operator.raycluster.assembly import build_operator
        from ray_operator.rayjob.dashboard import DashboardClient
        from ray_operator.rayservice.assembly import attach_to
        from ray_operator.rayservice.reconciler import SecretTokens
        from ray_operator.settings import load_settings

        settings = Settings(
            host="127.0.0.1",
            kubelet="process",
            controllers=True,
            https=True,  # kubectl sends the token only over TLS
            token=new_token(),  # in the kubeconfig: kubectl uses it without prompting
            state_dir=self.state_dir,
        )
        self.lk = LocalKube(settings)
        self.lk.start()
        client: KubeClient = self.lk.kube_client()
        self.client = client
        install_crds(client)
        opts = load_settings(["--kubeconfig", self.kubeconfig, "--rayjob-requeue-seconds", "1"], environ={})
        resolver = HeadResolver(client)
        dashboard = DashboardClient(resolve=resolver)
        operator = build_operator(_client(self.kubeconfig, None), opts, dashboard=dashboard)
        tokens = SecretTokens(operator.client, cluster_domain=opts.build.cluster_domain)

        def endpoint(namespace: str, cluster: JSON) -> tuple[str, str | None]:
            url, token = tokens(namespace, cluster)
            return resolver(url), token

        rayservices = attach_to(operator, operator.client, opts, endpoint=endpoint)
        self._closers.append(rayservices.reconciler.close)
        self._operator_thread = threading.Thread(
            target=operator.run, args=(self._stop,), name="rayside-operator", daemon=True
        )
        self._operator_thread.start()
        return client

    def apply(self, docs: list[Document]) -> None:
        """Create every document in order (replace when it exists)."""
        assert self.client is not None
        for doc in docs:
            body: JSON = {**doc.body, "metadata": {**doc.body["metadata"], "namespace": doc.namespace}}
            if not doc.resource.namespaced:
                body["metadata"].pop("namespace", None)
            path = doc.resource.path(doc.namespace if doc.resource.namespaced else None)
            try:
                self.client.create(path, body)
            except AlreadyExists:
                current = self.client.get(f"{path}/{doc.name}")
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self.client.replace(f"{path}/{doc.name}", body)
            log.debug("applied %s %s/%s", doc.kind, doc.namespace, doc.name)

    def close(self) -> None:
        """Stop the operator, then localkube (its kubelet ends every pod's processes and networks)."""
        self._stop.set()
        if self._operator_thread is not None:
            self._operator_thread.join(30)
        for closer in self._closers:
            try:
                closer()
            except Exception:
                log.debug("closing failed", exc_info=True)
        if self.lk is not None:
            self.lk.stop()
            self.lk = None
        if self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)


# -- the kept session (`rayside up --keep`, `rayside status`, `rayside down`) -------------------------------
def keep_dir() -> Path:
    """Where a kept session lives: `$RAYSIDE_UP_DIR`, else `~/.rayside/up`."""
    return Path(os.environ.get("RAYSIDE_UP_DIR") or Path.home() / ".rayside" / "up")


def _started(pid: int) -> str | None:
    """Start time of `pid` (ticks since boot, /proc/PID/stat field 22): tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def read_record(state_dir: Path) -> JSON | None:
    """The running session's record (pid, kubeconfig, objects), or None when none runs there."""
    try:
        record: JSON = json.loads((state_dir / "session.json").read_text())
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if _started(pid) == record.get("started") else None


def write_record(state_dir: Path, kubeconfig: str, objects: list[str]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "pid": os.getpid(),
        "started": _started(os.getpid()),
        "kubeconfig": kubeconfig,
        "objects": objects,
    }
    (state_dir / "session.json").write_text(json.dumps(record, indent=2) + "\n")


def pods_summary(client: KubeClient, namespace: str, selector: dict[str, str] | None = None) -> str:
    """`pods: 1 Running, 1 Pending` for the namespace's pods (optionally by label)."""
    params = {"labelSelector": ",".join(f"{k}={v}" for k, v in selector.items())} if selector else None
    pods = client.list(PODS.path(namespace), params).get("items") or []
    counts: dict[str, int] = {}
    for pod in pods:
        phase = str((pod.get("status") or {}).get("phase") or "Pending")
        counts[phase] = counts.get(phase, 0) + 1
    ray = sum(1 for p in pods if "ray.io/node-type" in labels_of(p))
    text = ", ".join(f"{n} {phase}" for phase, n in sorted(counts.items())) or "none"
    return f"pods: {text} ({ray} Ray nodes)"
