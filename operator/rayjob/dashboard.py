"""The RayJob controller's client of the Ray dashboard job API (`/api/jobs/`), over real HTTP.

`DashboardClient` answers the three questions the RayJob reconciler asks a cluster: what is job `<id>`
(`job_info`, turned into a `Dashboard` view by `readers.ray_job_info`), submit a job by submission id
(`submit`, HTTPMode; an "already exists" answer counts as submitted) and stop a job (`stop`, best effort).
The dashboard address is the `status.dashboardURL` form `host:port` (http assumed); `resolve` maps it to
the base URL actually dialled (identity in production; tests point it at a stub dashboard or a pod IP).

The Ray token goes only into the `X-Ray-Authorization: Bearer` header (as the rayside and KubeRay
submitters send it); it never appears in an error text, a log line or an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

import requests

from ray_operator.rayjob.observed import Dashboard, DashboardUnreachable, JobNotFound
from ray_operator.rayjob.readers import ray_job_info
from rayside.objects import JSON

log = logging.getLogger(__name__)


class SubmitError(Exception):
    """The dashboard refused or did not take a submission (message safe to show: no token)."""


def http_base(address: str) -> str:
    """`host:port` → `http://host:port`; an address with a scheme is kept (trailing `/` dropped)."""
    address = address.rstrip("/")
    return address if "://" in address else f"http://{address}"


class DashboardClient:
    """Real HTTP to Ray dashboards; one pooled session shared by every reconcile worker."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        resolve: Callable[[str], str] = http_base,
        session: requests.Session | None = None,
    ) -> None:
        self._timeout = timeout
        self._resolve = resolve
        self._session = session or requests.Session()
        self.requests = 0

    def _headers(self, token: str | None) -> dict[str, str]:
        return {"X-Ray-Authorization": f"Bearer {token}"} if token else {}

    def _url(self, address: str, path: str) -> str:
        return f"{self._resolve(address).rstrip('/')}{path}"

    def _job_path(self, job_id: str) -> str:
        return f"/api/jobs/{quote(job_id, safe='')}"

    def job_info(self, address: str, job_id: str, token: str | None) -> Dashboard:
        """`GET /api/jobs/<id>`: RayJobInfo, JobNotFound (404) or DashboardUnreachable (anything else)."""
        self.requests += 1
        try:
            answer = self._session.get(
                self._url(address, self._job_path(job_id)),
                headers=self._headers(token),
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            return DashboardUnreachable(f"{type(exc).__name__}: cannot reach {address}")
        if answer.status_code == 404:
            return JobNotFound()
        if answer.status_code != 200:
            return DashboardUnreachable(f"GET /api/jobs/{job_id} answered HTTP {answer.status_code}")
        try:
            body = answer.json()
            return ray_job_info(body if isinstance(body, dict) else {})
        except ValueError as exc:
            return DashboardUnreachable(f"GET /api/jobs/{job_id}: unreadable answer ({exc})")

    def submit(self, address: str, body: JSON, token: str | None) -> None:
        """`POST /api/jobs/`; returns when submitted (or already known by that id), else SubmitError."""
        self.requests += 1
        sid = str(body.get("submission_id") or "")
        try:
            answer = self._session.post(
                self._url(address, "/api/jobs/"),
                json=body,
                headers=self._headers(token),
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise SubmitError(f"{type(exc).__name__}: cannot reach {address}") from None
        if answer.status_code == 200:
            return
        text = answer.text[:300]
        if "already exists" in text:  # a submission of this id raced us or an earlier pass: it is submitted
            log.debug("ray job %s already submitted to %s", sid, address)
            return
        raise SubmitError(f"POST /api/jobs/ answered HTTP {answer.status_code}: {' '.join(text.split())}")

    def stop(self, address: str, job_id: str, token: str | None) -> bool:
        """`POST /api/jobs/<id>/stop`, best effort; True when the dashboard accepted it."""
        self.requests += 1
        try:
            answer = self._session.post(
                self._url(address, f"{self._job_path(job_id)}/stop"),
                headers=self._headers(token),
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            log.debug("stop of ray job %s at %s failed: %s", job_id, address, type(exc).__name__)
            return False
        return answer.status_code == 200

    def close(self) -> None:
        self._session.close()
