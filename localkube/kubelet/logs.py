"""Container log files and the kubelet's HTTP log endpoint (`GET /containerLogs/{ns}/{pod}/{container}`).

The endpoint answers only the API server: every request (but `/healthz`) must carry
`Authorization: Bearer <token>` with the token the API server uses when it proxies `pods/{name}/log`
(401 without credentials, 403 with a wrong token).

Each container run writes one file; every line is stored as `<RFC3339Nano timestamp> <text>` so that
`timestamps`, `sinceSeconds`, `tailLines` and `follow` can be answered like a real kubelet does.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, unquote, urlparse

log = logging.getLogger(__name__)
TOKEN_ENV = "LOCALKUBE_KUBELET_TOKEN"  # how a kubelet child process receives the token (never in argv)


def stamp(ts: float | None = None) -> str:
    moment = datetime.now(UTC) if ts is None else datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def parse_stamp(text: str) -> float:
    try:
        return datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def copy_lines(source: IO[bytes], dest: Path) -> None:
    """Copy a process's output into `dest`, one timestamped line at a time, until EOF."""
    with dest.open("ab", buffering=0) as out:
        for raw in iter(source.readline, b""):
            line = raw if raw.endswith(b"\n") else raw + b"\n"
            out.write(stamp().encode() + b" " + line)


@dataclass
class LogSource:
    """Where one container's log lives: a file (or fixed text) and whether it may still grow."""

    path: Path | None
    text: str = ""
    live: Callable[[], bool] = lambda: False


@dataclass(frozen=True)
class LogQuery:
    follow: bool = False
    tail_lines: int | None = None
    previous: bool = False
    timestamps: bool = False
    since_seconds: int | None = None

    @staticmethod
    def parse(query: str) -> LogQuery:
        q = {k: v[-1] for k, v in parse_qs(query).items()}

        def flag(name: str) -> bool:
            return q.get(name, "false").lower() in ("true", "1", "t", "yes")

        def number(name: str) -> int | None:
            value = q.get(name)
            if value in (None, ""):
                return None
            try:
                return int(str(value))
            except ValueError:
                raise ValueError(f"{name}: {value!r} is not an integer") from None

        return LogQuery(
            follow=flag("follow"),
            tail_lines=number("tailLines"),
            previous=flag("previous"),
            timestamps=flag("timestamps"),
            since_seconds=number("sinceSeconds"),
        )


def render(line: bytes, timestamps: bool) -> bytes:
    if timestamps:
        return line
    _, _, rest = line.partition(b" ")
    return rest


def select_lines(lines: list[bytes], query: LogQuery, now: float) -> list[bytes]:
    """Apply sinceSeconds and tailLines to stored (timestamped) lines."""
    if query.since_seconds is not None:
        cutoff = now - query.since_seconds
        lines = [ln for ln in lines if parse_stamp(ln.split(b" ", 1)[0].decode(errors="replace")) >= cutoff]
    if query.tail_lines is not None:
        lines = lines[-query.tail_lines :] if query.tail_lines > 0 else []
    return lines


def stream_log(source: LogSource, query: LogQuery, poll: float = 0.2) -> Iterator[bytes]:
    """The bytes a client sees for `source` under `query` (blocks while following a live container)."""
    if source.path is None:
        text = source.text.encode()
        yield text if not text or text.endswith(b"\n") else text + b"\n"
        return
    with contextlib.suppress(FileNotFoundError), source.path.open("rb") as f:
        data = f.read()
        complete, _, partial = data.rpartition(b"\n")
        lines = [ln + b"\n" for ln in complete.split(b"\n")] if complete else []
        for ln in select_lines(lines, query, time.time()):
            yield render(ln, query.timestamps)
        if not query.follow:
            return
        while True:
            chunk = f.read()
            if chunk:
                partial += chunk
                *done, partial = partial.split(b"\n")
                for ln in done:
                    yield render(ln + b"\n", query.timestamps)
                continue
            if not source.live():
                return
            time.sleep(poll)


Resolver = Callable[[str, str, str, bool], LogSource | None]


class LogServer:
    """Serves container logs over HTTP on `host:port` (port 0 picks a free one)."""

    def __init__(
        self, resolve: Resolver, host: str = "127.0.0.1", port: int = 0, token: str | None = None
    ) -> None:
        """`token`: what callers must present; None: `$LOCALKUBE_KUBELET_TOKEN`, else a random one (then
        nobody can read logs: the safe default for a kubelet that was given no token)."""
        self._resolve = resolve
        token = token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
        handler = _make_handler(resolve, token)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="kubelet-logs", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def authorized(header: str, token: str) -> int:
    """200 when `header` (the Authorization value) carries `token`, 401 without a bearer token, 403 else."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return 401
    return 200 if hmac.compare_digest(value.strip().encode(), token.encode()) else 403


def _make_handler(resolve: Resolver, token: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            log.debug("log endpoint: " + format, *args)

        def _text(self, code: int, text: str) -> None:
            body = (text + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            parts = [unquote(p) for p in url.path.strip("/").split("/")]
            if parts and parts[0] == "healthz":
                self._text(200, "ok")
                return
            code = authorized(self.headers.get("Authorization", ""), token)
            if code != 200:
                self._text(code, "Unauthorized" if code == 401 else "Forbidden")
                return
            if len(parts) != 4 or parts[0] != "containerLogs":
                self._text(404, f"no such path: {url.path}")
                return
            _, ns, pod, container = parts
            try:
                query = LogQuery.parse(url.query)
            except ValueError as exc:
                self._text(400, str(exc))
                return
            source = resolve(ns, pod, container, query.previous)
            if source is None:
                what = "previous terminated container" if query.previous else "container"
                self._text(404, f"{what} {container!r} in pod {ns}/{pod} not found")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Connection", "close")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for chunk in stream_log(source, query):
                    self.wfile.write(chunk)
                    self.wfile.flush()

    return Handler
