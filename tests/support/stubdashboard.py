"""A recording stand-in for the Ray dashboard's job API (the submitter's wire-format scenarios).

It answers `GET /api/version`, `POST /api/jobs/` (200 `{"job_id", "submission_id"}`), `GET /api/jobs/<id>`
(a SUCCEEDED JobDetails once submitted, else 404) and the log-tail WebSocket (sends `hi\\n`, then closes
with 1000). Every request is recorded with its method, path, headers and body so a test can check the wire
format the submitter produces. Used only where a real head cannot show the bytes on the wire.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 handshake constant


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StubDashboard:
    log_text: str = "hi\n"
    recorded: list[Recorded] = field(default_factory=list)
    submitted: set[str] = field(default_factory=set)
    _server: ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StubDashboard:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.stub = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def job(self, sid: str) -> dict[str, Any]:
        return {
            "type": "SUBMISSION",
            "submission_id": sid,
            "job_id": None,
            "status": "SUCCEEDED",
            "message": "Job finished successfully.",
            "entrypoint": "python x.py",
        }

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    """Serves one request against the StubDashboard stored on the server object."""

    protocol_version = "HTTP/1.1"

    @property
    def stub(self) -> StubDashboard:
        stub: StubDashboard = getattr(self.server, "stub")  # noqa: B009
        return stub

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.stub.recorded.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
        return body

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self._record()
        if self.path != "/api/jobs/":
            self._json(404, {})
            return
        sid = json.loads(body)["submission_id"]
        self.stub.submitted.add(sid)
        self._json(200, {"job_id": sid, "submission_id": sid})

    def do_GET(self) -> None:
        self._record()
        parts = self.path.strip("/").split("/")
        if self.path == "/api/version":
            self._json(200, {"version": "4", "ray_version": "2.60.0"})
        elif len(parts) == 5 and parts[-2:] == ["logs", "tail"] and parts[2] in self.stub.submitted:
            self._websocket()
        elif len(parts) == 3 and parts[2] in self.stub.submitted:
            self._json(200, self.stub.job(parts[2]))
        else:
            self._json(404, {})

    def _websocket(self) -> None:
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        payload = self.stub.log_text.encode()
        assert len(payload) < 126
        self.wfile.write(bytes([0x81, len(payload)]) + payload)  # one text frame
        self.wfile.write(bytes([0x88, 2]) + (1000).to_bytes(2, "big"))  # close, normal
        self.wfile.flush()
        self.close_connection = True
