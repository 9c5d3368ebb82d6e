"""A real fault-injecting TCP/HTTP proxy on 127.0.0.1, put between the submitter and a Ray dashboard.

Every HTTP request is forwarded on a fresh upstream connection with `Connection: close`, so each request
can be inspected and faulted on its own. WebSocket upgrades are piped through after the 101. Faults:

- `refuse_for(seconds)` / `close_listener()` / `open_listener()`: the port refuses connections;
- `fail_next(n, status)`: answer the next n matching requests with e.g. 503, without contacting upstream;
- `drop_ws_after(bytes)`: cut the next WebSocket after that many server->client frame bytes (mid-frame);
- `lose_next_response(method, path)`: forward the request, swallow the answer, close the client socket;
- `outage(seconds)`: "dashboard restarted": drop every open connection and refuse for a while.

Ray neither restarts a killed dashboard nor keeps jobs across a head restart, so a dashboard restart is
simulated here as an outage (all connections dropped, port refusing, then forwarding again).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Rule:
    kind: str  # "status" | "lose"
    count: int
    method: str | None = None
    path_prefix: str | None = None
    status: int = 503

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


@dataclass
class FaultProxy:
    upstream: tuple[str, int]
    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) seen, in order
    ws_sessions: int = 0
    _rules: list[Rule] = field(default_factory=list)
    _ws_drop_after: int | None = None
    _listener: socket.socket | None = None
    _socks: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: bool = False

    # -- control ------------------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self.open_listener()
        return self

    def open_listener(self) -> None:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", self.port))
        self.port = lsock.getsockname()[1]
        lsock.listen(64)
        self._listener = lsock
        threading.Thread(target=self._accept_loop, args=(lsock,), daemon=True).start()

    def close_listener(self) -> None:
        lsock, self._listener = self._listener, None
        if lsock is not None:
            with contextlib.suppress(OSError):
                lsock.shutdown(socket.SHUT_RDWR)
            lsock.close()

    def drop_all(self) -> None:
        with self._lock:
            socks, self._socks = list(self._socks), set()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def outage(self, seconds: float) -> None:
        """Drop everything and refuse connections for `seconds` (in the background)."""
        self.close_listener()
        self.drop_all()
        threading.Timer(seconds, self._reopen).start()

    def refuse_for(self, seconds: float) -> None:
        self.close_listener()
        threading.Timer(seconds, self._reopen).start()

    def _reopen(self) -> None:
        if not self._stopped:
            self.open_listener()

    def fail_next(
        self, n: int, status: int = 503, method: str | None = None, path_prefix: str | None = None
    ) -> None:
        with self._lock:
            self._rules.append(Rule("status", n, method, path_prefix, status))

    def lose_next_response(self, method: str = "POST", path_prefix: str = "/api/jobs/") -> None:
        with self._lock:
            self._rules.append(Rule("lose", 1, method, path_prefix))

    def drop_ws_after(self, nbytes: int) -> None:
        self._ws_drop_after = nbytes

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in list(self.requests) if m == method and p == path)

    def stop(self) -> None:
        self._stopped = True
        self.close_listener()
        self.drop_all()

    # -- plumbing -----------------------------------------------------------------------------------------
    def _track(self, s: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.add(s)
        return s

    def _accept_loop(self, lsock: socket.socket) -> None:
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(self._track(conn),), daemon=True).start()

    def _take_rule(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def _handle(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            head, body = _read_head(client)
            if head is None:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            self.requests.append((method, path))
            is_ws = any(ln.lower().startswith("upgrade:") and "websocket" in ln.lower() for ln in lines)
            rule = self._take_rule(method, path)
            if rule is not None and rule.kind == "status":
                msg = f"fault injected: {rule.status}".encode()
                client.sendall(
                    f"HTTP/1.1 {rule.status} Injected\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(msg)}\r\nConnection: close\r\n\r\n".encode()
                    + msg
                )
                return
            if not is_ws:
                lines = [ln for ln in lines if not ln.lower().startswith("connection:")]
                lines.insert(1, "Connection: close")
            upstream = self._track(socket.create_connection(self.upstream, timeout=30))
            upstream.settimeout(None)
            upstream.sendall("\r\n".join(lines).encode("latin-1") + body)
            if rule is not None and rule.kind == "lose":
                _read_head(upstream)  # the whole answer (head + Content-Length body) is swallowed
                return
            if is_ws:
                self._pipe_ws(client, upstream)
            else:
                _pump(upstream, client, None)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()
                    with self._lock:
                        self._socks.discard(s)

    def _pipe_ws(self, client: socket.socket, upstream: socket.socket) -> None:
        self.ws_sessions += 1
        limit, self._ws_drop_after = self._ws_drop_after, None
        t = threading.Thread(target=_pump, args=(client, upstream, None), daemon=True)
        t.start()
        head = b""
        while b"\r\n\r\n" not in head:  # forward the 101 answer whole; the limit counts frame bytes
            chunk = upstream.recv(1)
            if not chunk:
                break
            head += chunk
        client.sendall(head)
        _pump(upstream, client, limit)
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _read_head(sock: socket.socket) -> tuple[bytes | None, bytes]:
    """The request head (without the blank line) and the body (by Content-Length)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for ln in head.split(b"\r\n")[1:]:
        name, _, value = ln.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n", rest


def _pump(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
    """Copy src -> dst until EOF; with `limit`, stop (and cut both) after that many bytes."""
    sent = 0
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            if limit is not None and sent + len(chunk) >= limit:
                dst.sendall(chunk[: max(1, limit - sent)])
                time.sleep(0.05)
                break
            dst.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        if limit is not None:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
