"""HTTP plumbing: the threaded HTTP/1.1 server, request decoding, responses (JSON, chunked streams)."""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import yaml

from localkube.errors import ApiError, bad_request

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    handler: BaseHTTPRequestHandler
    segments: list[str] = field(default_factory=list)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def content_type(self) -> str:
        return self.header("content-type").split(";")[0].strip().lower()

    def json_body(self) -> Any:
        ctype = self.content_type
        if "protobuf" in ctype or self.body.startswith(b"k8s\x00"):
            from localkube import protobuf

            try:
                return protobuf.decode(self.body)
            except protobuf.ProtobufError as exc:
                raise ApiError(
                    415,
                    "the body of the request was in an unknown format - accepted media types include: "
                    f"application/json, application/yaml ({exc})",
                ) from None
        if not self.body.strip():
            return None
        try:
            if ctype in ("application/yaml", "application/apply-patch+yaml"):
                return yaml.safe_load(self.body)
            return json.loads(self.body)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"couldn't decode the request body: {str(exc).splitlines()[0]}") from None

    def alive(self) -> bool:
        """False once the client has closed its side of the connection."""
        sock = self.handler.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                if isinstance(sock, ssl.SSLSocket):
                    return False  # a watch client sends nothing more; readable means it closed
                return bool(sock.recv(1, socket.MSG_PEEK))
        except (OSError, ValueError):
            return False
        return True


class App(Protocol):
    def handle(self, req: Request) -> None: ...


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: App, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every open client connection (idle keep-alive ones included) so handler threads exit."""
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s failed", client_address, exc_info=True)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small header + body writes must not wait for delayed ACKs
    server: Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(30)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            log.debug("connection error: %s", exc)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = self._read_chunked()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413)
                return
            body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            handler=self,
            segments=[s for s in parts.path.split("/") if s],
        )
        self.server.app.handle(req)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise ValueError("request body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


def send_json(
    req: Request,
    code: int,
    body: Any,
    headers: dict[str, str] | None = None,
    warnings: Iterable[str] = (),
    content_type: str = "application/json",
) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    h = req.handler
    h.send_response(code)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(data)))
    h.send_header("Cache-Control", "no-cache, private")
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    for text in warnings:
        h.send_header("Warning", '299 - "' + text.replace('"', '\\"') + '"')
    h.end_headers()
    if req.method != "HEAD":
        h.wfile.write(data)


def send_error(req: Request, exc: ApiError) -> None:
    send_json(req, exc.code, exc.status(), headers=exc.headers)


def send_text(req: Request, code: int, text: str) -> None:
    data = text.encode()
    h = req.handler
    h.send_response(code)
    h.send_header("Content-Type", "text/plain; charset=utf-8")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


class Chunked:
    """A chunked response body; every `write` is flushed as one chunk."""

    def __init__(self, req: Request, content_type: str, warnings: Iterable[str] = ()) -> None:
        self.h = req.handler
        self.h.send_response(200)
        self.h.send_header("Content-Type", content_type)
        self.h.send_header("Transfer-Encoding", "chunked")
        self.h.send_header("Cache-Control", "no-cache, private")
        for text in warnings:
            self.h.send_header("Warning", '299 - "' + text.replace('"', '\\"') + '"')
        self.h.end_headers()
        self.h.wfile.flush()

    def write(self, data: bytes) -> None:
        if data:
            self.h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.h.wfile.flush()

    def close(self) -> None:
        self.h.wfile.write(b"0\r\n\r\n")
        self.h.wfile.flush()
