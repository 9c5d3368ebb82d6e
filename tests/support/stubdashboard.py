"""A recording stand-in for the Ray dashboard's job API (the submitter's wire-format scenarios) and its Serve
API (`GET`/`PUT /api/serve/applications/`, for the RayService controller's tests).

It answers `GET /api/version`, `POST /api/jobs/` (200 `{"job_id", "submission_id"}`), `GET /api/jobs/<id>`
(a SUCCEEDED JobDetails once submitted, else 404) and the log-tail WebSocket (sends `hi\\n`, then closes
with 1000). Every request is recorded with its method, path, headers and body so a test can check the wire
format the submitter produces. Used only where a real head cannot show the bytes on the wire.

Serve: a PUT config is checked like Serve's schema check (a list `applications`, each with `import_path`;
else 400 with the reason); its apps answer DEPLOYING for `serve_deploy_polls` GETs, then RUNNING, except
apps whose import_path starts with `missing` (DEPLOY_FAILED, with an import error). With `token` set,
Serve requests without `x-ray-authorization: Bearer <token>` get 401.
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
    token: str | None = None
    serve_deploy_polls: int = 1
    serve_config: dict[str, Any] | None = None
    serve_puts: int = 0
    _serve_polls: int = 0
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

    def serve_applications(self) -> dict[str, Any]:
        """The `applications` map Serve would answer now (each GET moves deploying apps on)."""
        if self.serve_config is None:
            return {}
        self._serve_polls += 1
        apps: dict[str, Any] = {}
        for app in self.serve_config.get("applications") or []:
            name, path = str(app.get("name") or ""), str(app.get("import_path") or "")
            if path.startswith("missing"):
                status, message = (
                    "DEPLOY_FAILED",
                    f"ModuleNotFoundError: No module named '{path.split(':', maxsplit=1)[0]}'",
                )
            elif self._serve_polls <= self.serve_deploy_polls:
                status, message = "DEPLOYING", ""
            else:
                status, message = "RUNNING", ""
            apps[name] = {"name": name, "status": status, "message": message, "deployments": {}}
        return apps

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

    def _serve_denied(self) -> bool:
        if self.stub.token and self.headers.get("x-ray-authorization") != f"Bearer {self.stub.token}":
            self._json(401, {"error": "Unauthorized"})
            return True
        return False

    def do_PUT(self) -> None:
        body = self._record()
        if self.path != "/api/serve/applications/":
            self._json(404, {})
            return
        if self._serve_denied():
            return
        config = json.loads(body or b"{}")
        apps = config.get("applications") if isinstance(config, dict) else None
        if not isinstance(apps, list):
            self._json(400, {"error": "Invalid config: field `applications` is required and must be a list"})
            return
        for i, app in enumerate(apps):
            if not isinstance(app, dict) or not app.get("import_path"):
                self._json(400, {"error": f"Invalid config: applications.{i}.import_path: field required"})
                return
        self.stub.serve_config = config
        self.stub.serve_puts += 1
        self.stub._serve_polls = 0
        self._json(200, {})

    def do_GET(self) -> None:
        self._record()
        if self.path.startswith("/api/serve/applications/"):
            if not self._serve_denied():
                self._json(200, {"applications": self.stub.serve_applications()})
            return
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
