"""`rayside localkube serve --data-dir` under kill -9: no acknowledged write is lost, resourceVersions never
go back, a watch resumed across the restart gets the later events or 410 Expired, and the database is private.

Each round drives creates and deletes from a few client threads, kills the server (SIGKILL) at a random
moment, restarts it on the same directory and checks what the clients were told against what is stored.
"""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rayside.kubeclient import Gone, KubeClient, KubeError
from rayside.objects import CONFIGMAPS, JSON, NAMESPACES, name_of

NS = "kill9"
ROUNDS = 20
THREADS = 3


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str

    def client(self) -> KubeClient:
        # no retries: a request that fails because of the kill must not be resent to the next server
        return KubeClient(self.url, qps=100000.0, burst=100000, timeout=10.0, retries=1)


def start(workdir: Path, umask: int = 0o022) -> Server:
    cmd = [sys.executable, "-m", "rayside.cli", "localkube", "serve", "--port", "0", "--http",
           "--no-controllers", "--kubeconfig", str(workdir / "kubeconfig"),
           "--state-dir", str(workdir / "state"), "--data-dir", str(workdir / "data")]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, umask=umask, start_new_session=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("localkube listening on "):
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain the rest
            return Server(proc, line.split()[-1])
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"localkube did not start (exit code {proc.poll()})")


def kill9(server: Server) -> None:
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)


@dataclass
class Ledger:
    """What the clients were told: acknowledged creates (name -> resourceVersion) and deletes."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    created: dict[str, int] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    unsure: set[str] = field(default_factory=set)  # a delete was sent but not answered: either state is fine

    def max_rv(self) -> int:
        return max(self.created.values(), default=0)


def drive(server: Server, ledger: Ledger, prefix: str, stop: threading.Event) -> None:
    """Create ConfigMaps one after the other, deleting every fourth one again, until a request fails."""
    client = server.client()
    mine: list[str] = []
    i = 0
    while not stop.is_set():
        name = f"{prefix}-{i}"
        i += 1
        try:
            if i % 4 == 0 and mine:
                gone = mine.pop(0)
                with ledger.lock:
                    ledger.unsure.add(gone)
                client.delete(CONFIGMAPS.path(NS, gone))
                with ledger.lock:
                    ledger.unsure.discard(gone)
                    ledger.deleted.add(gone)
                continue
            made = client.create(CONFIGMAPS.path(NS), {"metadata": {"name": name}, "data": {"i": str(i)}})
        except KubeError:
            return  # the server was killed
        with ledger.lock:
            ledger.created[name] = int(made["metadata"]["resourceVersion"])
        mine.append(name)


def burst(server: Server, ledger: Ledger, rnd: int, rng: random.Random) -> None:
    stop = threading.Event()
    threads = [
        threading.Thread(target=drive, args=(server, ledger, f"r{rnd}t{t}", stop), daemon=True)
        for t in range(THREADS)
    ]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.02, 0.4))
    kill9(server)
    stop.set()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()


def check(server: Server, ledger: Ledger) -> None:
    client = server.client()
    items, list_rv = client.list_all(CONFIGMAPS.path(NS))
    stored = {name_of(o): int(o["metadata"]["resourceVersion"]) for o in items}
    lost = [n for n in ledger.created if n not in stored and n not in ledger.deleted | ledger.unsure]
    assert not lost, f"{len(lost)} acknowledged creates lost, e.g. {lost[:5]}"
    back = [n for n in ledger.deleted if n in stored]
    assert not back, f"{len(back)} acknowledged deletes undone, e.g. {back[:5]}"
    changed = {n for n, rv in stored.items() if ledger.created.get(n, rv) != rv}
    assert not changed, f"objects came back with another resourceVersion: {sorted(changed)[:5]}"
    acked = ledger.max_rv()
    assert int(list_rv) >= acked
    # a list at an acknowledged revision is served (not "too large"); a watch from it gets 410 or events
    client.list(CONFIGMAPS.path(NS), {"resourceVersion": str(acked)})
    with pytest.raises(Gone):  # the exact state at a revision from before the restart is gone
        client.list(CONFIGMAPS.path(NS), {"resourceVersion": str(acked), "resourceVersionMatch": "Exact"})
    assert resumed_watch(client, str(acked)) in ("Gone", "events")
    # new writes get higher revisions, and a watch from the list revision sees them
    probe = client.create(CONFIGMAPS.path(NS), {"metadata": {"name": f"probe-{list_rv}"}})
    assert int(probe["metadata"]["resourceVersion"]) > max(acked, int(list_rv))
    first = next(iter(client.watch(CONFIGMAPS.path(NS), list_rv, timeout_seconds=10)))
    assert (first.type, name_of(first.object)) == ("ADDED", name_of(probe))
    with ledger.lock:
        ledger.created[name_of(probe)] = int(probe["metadata"]["resourceVersion"])


def resumed_watch(client: KubeClient, rv: str) -> str:
    try:
        for event in client.watch(CONFIGMAPS.path(NS), rv, timeout_seconds=1):
            if event.type in ("ADDED", "MODIFIED", "DELETED"):
                return "events"
    except Gone:
        return "Gone"
    return "silence"


def modes(data: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in [data, *data.iterdir()]}


def test_kill9_never_loses_an_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    ledger = Ledger()
    workdir = tmp_path
    server = start(workdir)
    try:
        server.client().create(NAMESPACES.path(), {"metadata": {"name": NS}})
        for rnd in range(ROUNDS):
            burst(server, ledger, rnd, rng)
            server = start(workdir)
            check(server, ledger)
        acked = len(ledger.created)
        assert acked > ROUNDS * THREADS, f"only {acked} creates were acknowledged: the test did not test"
        print(f"{ROUNDS} kill -9 rounds, {acked} acknowledged creates, {len(ledger.deleted)} deletes, 0 lost")
    finally:
        if server.proc.poll() is None:
            kill9(server)


def test_database_is_private_whatever_the_umask(tmp_path: Path) -> None:
    workdir = tmp_path
    data = workdir / "data"
    server = start(workdir, umask=0)
    try:
        server.client().create(NAMESPACES.path(), {"metadata": {"name": NS}})
        got = modes(data)
    finally:
        kill9(server)
    assert got.pop("data") == 0o700
    assert got and all(mode == 0o600 for mode in got.values()), got
    for path in data.iterdir():  # an older localkube left them world-readable: tightened at start
        path.chmod(0o644)
    server = start(workdir, umask=0)
    try:
        obj: JSON = server.client().get(NAMESPACES.path(name=NS))
        assert name_of(obj) == NS
        got = modes(data)
    finally:
        kill9(server)
    got.pop("data")
    assert got and all(mode == 0o600 for mode in got.values()), got
