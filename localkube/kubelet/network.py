"""Pod networking for process mode.

As root ("netns"): one Linux bridge per kubelet instance with a /24 from 198.18.0.0/15 (a range reserved for
testing) chosen so that it is unused on this machine; each pod gets a network namespace joined to the bridge
by a veth pair, its own IP and its own `/etc/netns/<ns>/hosts` (seen by `ip netns exec` as /etc/hosts).
The bridge holds the gateway address, so the host reaches pod IPs, and a TCP forwarder on the gateway address
lets pods reach the API server that listens on 127.0.0.1.

Without root ("host"): every pod shares the host network with IP 127.0.0.1 (one Ray cluster at a time).
Everything created here is removed by `teardown`. A run that crashed cannot do that: each bridge carries its
owner (`alias localkube pid=<pid> start=<start time>`), and `setup` first removes what dead owners left
(`cleanup_leftovers`): their bridge `lkb<i>`, the pod namespaces `lk<i>-<slot>` (killing what still runs
in them), their veths `lk<i>v<slot>` and `/etc/netns/lk<i>-<slot>`. A bridge without that alias (another
program's, or an older localkube's) and everything of a live owner are left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

POD_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
NETNS_ETC = Path("/etc/netns")
LOCK_PATH = Path("/run/localkube-net.lock")
BRIDGE_NAME = re.compile(r"^lkb(\d+)$")
NETNS_NAME = re.compile(r"^lk(\d+)-(\d+)$")
VETH_NAME = re.compile(r"^lk(\d+)v(\d+)$")
OWNER_ALIAS = re.compile(r"^localkube pid=(\d+) start=(\d+)$")


class NetworkError(RuntimeError):
    """Setting up pod networking failed."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def netns_supported() -> bool:
    """Root, and `ip netns` works on this machine."""
    if os.geteuid() != 0:
        return False
    try:
        return _ip("netns", "list", check=False).returncode == 0
    except FileNotFoundError:
        return False


def used_networks(addr_output: str) -> list[ipaddress.IPv4Network]:
    """IPv4 networks in use per `ip -br addr` output (pure)."""
    nets = []
    for line in addr_output.splitlines():
        for token in line.split()[2:]:
            with contextlib.suppress(ValueError):
                iface = ipaddress.ip_interface(token)
                if iface.version == 4:
                    nets.append(ipaddress.IPv4Network(iface.network))
    return nets


def pick_index(used: list[ipaddress.IPv4Network], links: set[str]) -> int:
    """The first /24 index in 198.18.0.0/15 not overlapping a used network and whose bridge name is free."""
    for index, subnet in enumerate(POD_RANGE.subnets(new_prefix=24)):
        if f"lkb{index}" in links or any(subnet.overlaps(n) for n in used):
            continue
        return index
    raise NetworkError("no free /24 left in 198.18.0.0/15 for a localkube bridge")


def owner_alias(pid: int, start: int) -> str:
    return f"localkube pid={pid} start={start}"


def parse_links(output: str) -> dict[str, str]:
    """Link name -> alias ("" without one) from `ip -o link show` output (pure)."""
    links = {}
    for line in output.splitlines():
        parts = line.split(": ", 2)
        if len(parts) < 3:
            continue
        name = parts[1].split("@")[0]
        alias = ""
        for field in parts[2].split("\\"):
            if field.strip().startswith("alias "):
                alias = field.strip()[len("alias ") :]
        links[name] = alias
    return links


def stale_bridges(bridges: dict[str, str], alive: Callable[[int, int], bool]) -> list[str]:
    """Bridges `lkb<i>` whose alias names a localkube owner that is gone (pure; `alive(pid, start)`)."""
    out = []
    for name, alias in sorted(bridges.items()):
        owner = OWNER_ALIAS.match(alias)
        if BRIDGE_NAME.match(name) and owner and not alive(int(owner[1]), int(owner[2])):
            out.append(name)
    return out


def orphans(names: list[str], pattern: re.Pattern[str], bridges: set[str]) -> list[str]:
    """Pod namespaces or veths of index i (`pattern` group 1) whose bridge `lkb<i>` is not in `bridges`."""
    return sorted(n for n in names if (m := pattern.match(n)) and f"lkb{m[1]}" not in bridges)


def process_start(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks after boot; None when it does not exist)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 else None


def owner_alive(pid: int, start: int) -> bool:
    return process_start(pid) == start


def cleanup_leftovers(alive: Callable[[int, int], bool] = owner_alive) -> list[str]:
    """Remove what crashed localkube runs left (see the module doc); returns the names removed. Call it
    under LOCK_PATH."""
    bridges = parse_links(_ip("-o", "link", "show", "type", "bridge").stdout)
    removed = []
    for name in stale_bridges(bridges, alive):
        _ip("link", "del", name, check=False)
        removed.append(name)
    left = {b for b in bridges if b not in removed}
    namespaces = [ln.split()[0] for ln in _ip("netns", "list", check=False).stdout.splitlines() if ln]
    etc = [p.name for p in NETNS_ETC.iterdir()] if NETNS_ETC.is_dir() else []
    for ns in orphans(sorted(set(namespaces) | set(etc)), NETNS_NAME, left):
        if ns in namespaces:
            for pid in netns_pids(ns):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            _ip("netns", "del", ns, check=False)
        for file in ("hosts", "resolv.conf"):
            with contextlib.suppress(OSError):
                (NETNS_ETC / ns / file).unlink()
        with contextlib.suppress(OSError):
            (NETNS_ETC / ns).rmdir()
        removed.append(ns)
    veths = list(parse_links(_ip("-o", "link", "show", check=False).stdout))
    for veth in orphans(veths, VETH_NAME, left):
        _ip("link", "del", veth, check=False)
        removed.append(veth)
    if removed:
        log.debug("removed leftovers of a crashed localkube run: %s", ", ".join(removed))
    return removed


def pod_gateways() -> tuple[str, ...]:
    """Every address a kubelet's pods may reach the API server at (the gateway of each /24 it may pick)."""
    return tuple(str(net.network_address + 1) for net in POD_RANGE.subnets(new_prefix=24))


@dataclass
class PodNet:
    """One pod's network: its IP and (netns mode) its namespace and veth."""

    ip: str
    netns: str = ""
    veth: str = ""
    slot: int = 0

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def hosts_path(self) -> Path | None:
        return NETNS_ETC / self.netns / "hosts" if self.netns else None


class Network:
    """Creates and removes the bridge, pod namespaces and the API forwarder of one kubelet instance."""

    def __init__(self, mode: str, api_host: str, api_port: int) -> None:
        self.mode = mode
        self.api_host, self.api_port = api_host, api_port
        self.index = -1
        self.subnet: ipaddress.IPv4Network | None = None
        self.gateway = "127.0.0.1"
        self._free = list(range(253, 0, -1))
        self._lock = threading.Lock()
        self._forwarder: Forwarder | None = None

    @property
    def bridge(self) -> str:
        return f"lkb{self.index}"

    def setup(self) -> None:
        if self.mode != "netns":
            return
        LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
        with LOCK_PATH.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cleanup_leftovers()
            links = {ln.split()[0].split("@")[0] for ln in _ip("-br", "link").stdout.splitlines() if ln}
            self.index = pick_index(used_networks(_ip("-br", "addr").stdout), links)
            subnet = list(POD_RANGE.subnets(new_prefix=24))[self.index]
            self.subnet = subnet
            self.gateway = str(subnet.network_address + 1)
            _ip("link", "add", self.bridge, "type", "bridge")
            pid = os.getpid()
            _ip("link", "set", self.bridge, "alias", owner_alias(pid, process_start(pid) or 0))
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        self._forwarder = Forwarder(self.gateway, (self.api_host, self.api_port))
        self._forwarder.start()
        log.debug("pod network: bridge %s, subnet %s", self.bridge, self.subnet)

    def api_endpoint(self) -> tuple[str, int]:
        """Where pods reach the API server."""
        if self._forwarder is not None:
            return self.gateway, self._forwarder.port
        return self.api_host, self.api_port

    def add_pod(self) -> PodNet:
        if self.mode != "netns" or self.subnet is None:
            return PodNet(ip="127.0.0.1")
        with self._lock:
            if not self._free:
                raise NetworkError(f"no free pod address left in {self.subnet}")
            slot = self._free.pop()
        net = PodNet(ip=str(self.subnet.network_address + slot + 1), slot=slot)
        net.netns, net.veth = f"lk{self.index}-{slot}", f"lk{self.index}v{slot}"
        peer = f"lk{self.index}p{slot}"
        _ip("netns", "del", net.netns, check=False)
        _ip("link", "del", net.veth, check=False)
        _ip("netns", "add", net.netns)
        _ip("link", "add", net.veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", net.netns)
        _ip("link", "set", net.veth, "master", self.bridge, "up")
        _ip("-n", net.netns, "link", "set", peer, "name", "eth0")
        _ip("-n", net.netns, "addr", "add", f"{net.ip}/24", "dev", "eth0")
        _ip("-n", net.netns, "link", "set", "eth0", "up")
        _ip("-n", net.netns, "link", "set", "lo", "up")
        _ip("-n", net.netns, "route", "add", "default", "via", self.gateway)
        etc = NETNS_ETC / net.netns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{net.ip} localhost.pod\n")
        # names not in /etc/hosts fail at once instead of timing out (traffic stays on this machine)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        return net

    def remove_pod(self, net: PodNet) -> None:
        if not net.netns:
            return
        _ip("link", "del", net.veth, check=False)
        _ip("netns", "del", net.netns, check=False)
        for name in ("hosts", "resolv.conf"):
            with contextlib.suppress(OSError):
                (NETNS_ETC / net.netns / name).unlink()
        with contextlib.suppress(OSError):
            (NETNS_ETC / net.netns).rmdir()
        with self._lock:
            self._free.append(net.slot)

    def teardown(self) -> None:
        if self._forwarder is not None:
            self._forwarder.stop()
        if self.index >= 0:
            _ip("link", "del", self.bridge, check=False)
            self.index = -1


def write_in_place(path: Path, content: str) -> bool:
    """Rewrite `path` keeping its inode (bind mounts of it stay valid); False if unchanged."""
    try:
        with path.open("r+") as f:
            if f.read() == content:
                return False
            f.seek(0)
            f.write(content)
            f.truncate()
            return True
    except FileNotFoundError:
        return False


def netns_pids(netns: str) -> list[int]:
    """PIDs of every process inside network namespace `netns`."""
    try:
        target = os.stat(f"/run/netns/{netns}").st_ino
    except OSError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}/ns/net").st_ino == target:
                    pids.append(int(entry))
    return pids


class Forwarder:
    """Accepts TCP connections on `listen_host` and pipes each to `target` (two threads per connection)."""

    def __init__(self, listen_host: str, target: tuple[str, int]) -> None:
        self.target = target
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((listen_host, 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self._closed = False

    def start(self) -> None:
        threading.Thread(target=self._accept_loop, name="kubelet-api-forwarder", daemon=True).start()

    def stop(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pair.pipe, args=(a, b), daemon=True).start()


class _Pair:
    """Two connected sockets; both are closed once both directions have ended."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.socks = (a, b)
        self.ended = 0
        self.lock = threading.Lock()

    def pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        with self.lock:
            self.ended += 1
            done = self.ended == 2
        if done:
            for s in self.socks:
                s.close()
