"""The Ray dashboard's Serve REST API as the RayService controller uses it (injectable).

`ServeClient` is what the reconciler needs: read the applications (`GET /api/serve/applications/`) and
apply a config (`PUT /api/serve/applications/`). `HttpServeClient` talks HTTP with `requests`; the Ray
token goes in the `x-ray-authorization` header only and never into an error message or log line. Errors
carry Serve's own answer (its response body, first line, shortened) so users see why a config was refused.
"""

from __future__ import annotations

import json
from typing import Protocol

import requests

from rayside.objects import JSON

APPS_PATH = "/api/serve/applications/"
MAX_ERROR = 500


class DashboardError(Exception):
    """A Serve API call failed; the message is safe to show (no token)."""


class ServeClient(Protocol):
    def get_applications(self, url: str, token: str | None) -> dict[str, JSON]: ...
    def put_config(self, url: str, token: str | None, config: JSON) -> None: ...


def _headers(token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["x-ray-authorization"] = f"Bearer {token}"
    return headers


def _error_text(response: requests.Response) -> str:
    text = " ".join(response.text.split())
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = str(body.get("error") or body.get("message") or body.get("detail") or text)
    text = text[:MAX_ERROR] or response.reason or "no details"
    return f"HTTP {response.status_code}: {text}"


class HttpServeClient:
    """The Serve API over HTTP; `timeout` as KubeRay (2 s direct)."""

    def __init__(self, session: requests.Session | None = None, *, timeout: float = 2.0) -> None:
        self._session = session or requests.Session()
        self._timeout = timeout

    def get_applications(self, url: str, token: str | None) -> dict[str, JSON]:
        try:
            response = self._session.get(
                url.rstrip("/") + APPS_PATH,
                params={"api_type": "declarative"},
                headers=_headers(token),
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise DashboardError(f"dashboard unreachable: {type(exc).__name__}") from None
        if not response.ok:
            raise DashboardError(_error_text(response))
        try:
            apps = response.json().get("applications") or {}
        except (ValueError, AttributeError):
            raise DashboardError("dashboard answered with something that is not a JSON object") from None
        return dict(apps) if isinstance(apps, dict) else {}

    def put_config(self, url: str, token: str | None, config: JSON) -> None:
        try:
            response = self._session.put(
                url.rstrip("/") + APPS_PATH,
                data=json.dumps(config),
                headers=_headers(token),
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise DashboardError(f"dashboard unreachable: {type(exc).__name__}") from None
        if not response.ok:
            raise DashboardError(_error_text(response))
