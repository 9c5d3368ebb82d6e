"""HTTP plumbing: the threaded HTTP/1.1 server, request decoding, responses (JSON, chunked streams)."""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import yaml

from localkube import fastjson
from localkube.errors import ApiError, bad_request

log = logging.getLogger(__name__)
MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request body limit (3 MiB)
MAX_DRAIN = 256 * 1024 * 1024  # a refused body up to this size is read (the client then gets the 413)
MAX_HEADER_BYTES = 1 << 20  # the request line and headers together (Go's http.DefaultMaxHeaderBytes)
MAX_HEADERS = 100
_date_cache: list[tuple[int, str]] = [(0, "")]


def http_date() -> str:
    """The `Date` header value, formatted at most once per second (formatting costs more than a request's
    JSON encoding)."""
    now = int(time.time())
    cached = _date_cache[0]
    if cached[0] != now:
        cached = _date_cache[0] = (now, formatdate(now, usegmt=True))
    return cached[1]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    handler: Handler
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
            return fastjson.loads(self.body)
        except RecursionError:
            raise bad_request("couldn't decode the request body: exceeded max depth") from None
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
    lk_headers: dict[str, str]
    raw_requestline: bytes

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

    def parse_request(self) -> bool:
        """Parse the request line and headers into `lk_headers` (lower-case names, last value wins).

        The common case (`METHOD /path HTTP/1.x`, plain `Name: value` lines) is parsed here directly — the
        stdlib runs every header block through `email.parser`, which costs more than a small write. Anything
        unusual goes to the stdlib parser, which also produces its errors (400, 414, 431, 505).
        """
        words = self.raw_requestline.decode("iso-8859-1").rstrip("\r\n").split(" ")
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0") or not words[1].startswith("/"):
            return self._stdlib_parse()
        if words[1].startswith("//"):
            return self._stdlib_parse()
        self.requestline = " ".join(words)  # set before the headers: an error answer logs them
        self.command, self.path, self.request_version = words
        headers = self._read_headers()
        if headers is None:
            return False
        self.lk_headers = headers
        conn = headers.get("connection", "").lower()
        self.close_connection = conn == "close" or (words[2] == "HTTP/1.0" and conn != "keep-alive")
        expect = headers.get("expect", "").lower()
        if expect == "100-continue" and words[2] == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def _stdlib_parse(self) -> bool:
        ok = super().parse_request()
        if ok:
            size = sum(len(k) + len(v) + 4 for k, v in self.headers.items()) + len(self.raw_requestline)
            if size > MAX_HEADER_BYTES:
                self._refuse_headers("Request Header Fields Too Large")
                return False
            self.lk_headers = {k.lower(): v for k, v in self.headers.items()}
        return ok

    def _read_headers(self) -> dict[str, str] | None:
        headers: dict[str, str] = {}
        total = len(self.raw_requestline)
        for _ in range(MAX_HEADERS + 1):
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                return headers
            total += len(line)
            name, sep, value = line.decode("iso-8859-1").partition(":")
            if len(line) > 65536 or total > MAX_HEADER_BYTES:
                self._refuse_headers("Request Header Fields Too Large")
                return None
            if not sep or name != name.strip() or not name:
                self.request_version = "HTTP/1.1"  # answer malformed headers like the stdlib: 4xx, close
                self.send_error(400, "Bad header line")
                return None
            headers[name.lower()] = value.strip()
        self._refuse_headers("Too many headers")
        return None

    def _refuse_headers(self, why: str) -> None:
        """431, as Go's server answers a header block over its limits; the connection is closed. The rest of
        the header block is read first (bounded), so the client reads the answer instead of a reset."""
        left = MAX_DRAIN
        while left > 0:
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            left -= len(line)
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        self.send_error(431, why)

    def log_message(self, format: str, *args: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):  # formatting every request line is not free
            log.debug("%s %s", self.address_string(), format % args)

    def date_time_string(self, timestamp: float | None = None) -> str:
        return http_date() if timestamp is None else super().date_time_string(timestamp)

    def respond(self, code: int, headers: list[tuple[str, str]], body: bytes | None) -> None:
        """Send the status line, `headers` and `body` (None: headers only, e.g. a stream follows) with
        ONE socket write: separate small writes cost a syscall and a TCP segment (and a client wake-up)
        each."""
        self.log_request(code)
        reason = self.responses[code][0] if code in self.responses else ""
        lines = [f"{self.protocol_version} {code} {reason}", f"Server: {self.version_string()}"]
        lines.append(f"Date: {http_date()}")
        for key, value in headers:
            lines.append(f"{key}: {value}")
            if key.lower() == "connection" and value.lower() in ("close", "keep-alive"):
                self.close_connection = value.lower() == "close"
        lines.append("\r\n")
        data = "\r\n".join(lines).encode("latin-1")
        if body and len(body) > 65536:  # a big body: a second write is cheaper than copying it
            self.wfile.write(data)
            self.wfile.write(body)
        else:
            self.wfile.write(data + body if body else data)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=self.lk_headers,
            body=b"",
            handler=self,
            segments=[s for s in parts.path.split("/") if s],
        )
        try:
            if "chunked" in self.lk_headers.get("transfer-encoding", "").lower():
                req.body = self._read_chunked()
            else:
                req.body = self._read_length(self.lk_headers.get("content-length") or "0")
        except ApiError as exc:
            self.close_connection = True  # the rest of the body (if any) is not read
            send_error(req, exc)
            return
        self.server.app.handle(req)

    def _read_length(self, text: str) -> bytes:
        try:
            length = int(text)
        except ValueError:
            raise bad_request(f"invalid Content-Length: {text!r}") from None
        if length < 0:
            raise bad_request(f"invalid Content-Length: {text!r}")
        if length > MAX_BODY:
            self._drain(length)
            raise too_large()
        return self.rfile.read(length) if length else b""

    def _drain(self, length: int) -> None:
        """Read and drop a refused body (up to MAX_DRAIN): the client then reads the 413, not a reset."""
        left = min(length, MAX_DRAIN)
        while left > 0:
            data = self.rfile.read(min(left, 1 << 20))
            if not data:
                return
            left -= len(data)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).split(b";")[0].strip() or b"0"
            try:
                size = int(line, 16)
            except ValueError:
                raise bad_request("invalid chunked request body") from None
            if size == 0:
                while self.rfile.readline(65537).strip():  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise too_large()
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


def too_large() -> ApiError:
    """413 as kube-apiserver answers a body over its limit."""
    return ApiError(413, f"Request entity too large: limit is {MAX_BODY}", reason="RequestEntityTooLarge")


def send_json(
    req: Request,
    code: int,
    body: Any,
    headers: dict[str, str] | None = None,
    warnings: Iterable[str] = (),
    content_type: str = "application/json",
) -> None:
    data = encode_json(body)
    head = [("Content-Type", content_type), ("Content-Length", str(len(data)))]
    head.append(("Cache-Control", "no-cache, private"))
    head += (headers or {}).items()
    head += _warning_headers(warnings)
    req.handler.respond(code, head, None if req.method == "HEAD" else data)


def _warning_headers(warnings: Iterable[str]) -> list[tuple[str, str]]:
    return [("Warning", '299 - "' + text.replace('"', '\\"') + '"') for text in warnings]


def encode_json(body: Any) -> bytes:
    """Compact JSON (the wire format of every response and watch line)."""
    return fastjson.dumps(body)


def send_error(req: Request, exc: ApiError) -> None:
    send_json(req, exc.code, exc.status(), headers=exc.headers)


def send_text(req: Request, code: int, text: str) -> None:
    data = text.encode()
    head = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    req.handler.respond(code, head, data)


class Chunked:
    """A chunked response body; every `write` is flushed as one chunk."""

    def __init__(self, req: Request, content_type: str, warnings: Iterable[str] = ()) -> None:
        self.h = req.handler
        head = [("Content-Type", content_type), ("Transfer-Encoding", "chunked")]
        head.append(("Cache-Control", "no-cache, private"))
        self.h.respond(200, head + _warning_headers(warnings), None)
        self.h.wfile.flush()

    def write(self, data: bytes) -> None:
        if data:
            self.h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.h.wfile.flush()

    def close(self) -> None:
        self.h.wfile.write(b"0\r\n\r\n")
        self.h.wfile.flush()
