"""The submitter's one HTTP layer: a `requests.Session` against the Ray dashboard plus tenacity retries.

Transient trouble (refused connections, timeouts, 5xx, 429) is retried with bounded exponential backoff;
401/403 become `AuthError`, other 4xx `RejectedError`. A POST whose answer was lost is never repeated
blindly: the next attempt first asks `GET /api/jobs/<id>` whether the job exists (exactly-once submit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import tenacity

from submitter import wire
from submitter.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
Say = Callable[[str], None]


class SubmitterError(Exception):
    """An error that ends the run with `exit_code` and a one-line message."""

    exit_code = wire.ExitCode.FAILURE


class AuthError(SubmitterError):
    exit_code = wire.ExitCode.AUTH


class UnreachableError(SubmitterError):
    exit_code = wire.ExitCode.UNREACHABLE


class RejectedError(SubmitterError):
    exit_code = wire.ExitCode.FAILURE


class Transient(Exception):
    """One failed attempt that is worth retrying."""


def describe(exc: BaseException) -> str:
    """A short, token-free description of a transport error."""
    text = str(exc)
    for needle, short in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "DNS lookup failed"),
        ("Temporary failure in name resolution", "DNS lookup failed"),
        ("RemoteDisconnected", "connection closed by the server without a response"),
        ("Connection reset", "connection reset"),
        ("Connection aborted", "connection aborted"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate verification failed"),
    ):
        if needle in text:
            return short
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return f"{type(exc).__name__}: {text[:200]}"


def was_sent(exc: requests.RequestException) -> bool:
    """False when the request provably never reached the server (refused / connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    return not ("NewConnectionError" in repr(exc) or "Connection refused" in str(exc))


@dataclass
class Submission:
    created: bool  # False: the job already existed (restarted submitter) and we attach to it
    job: dict[str, Any] | None  # the job record when it was looked up


class DashboardClient:
    """Talks to one dashboard. `clock`/`sleep` are injected; `say` prints progress lines (stderr)."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        say: Say,
    ) -> None:
        self.s = settings
        self.session = session
        self.clock = clock
        self.sleep = sleep
        self.say = say
        session.headers.update(wire.auth_headers(settings.token))
        session.headers["User-Agent"] = "rayside-submitter"  # never browser-like (POST would get 405)
        if settings.ca_bundle:
            session.verify = settings.ca_bundle

    # -- retry machinery ----------------------------------------------------------------------------------
    def retrying(self, what: str, fn: Callable[[], T], budget: float | None) -> T:
        """Call fn until it stops raising Transient; give up after `budget` seconds (None: never)."""
        start = self.clock()

        def stop(state: tenacity.RetryCallState) -> bool:
            return budget is not None and self.clock() - start >= budget

        def announce(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            self.say(f"INFO -- {what}: {exc}; retrying in {delay:.1f}s")

        backoff = tenacity.wait_exponential(multiplier=0.5, max=5)

        def wait(state: tenacity.RetryCallState) -> float:
            delay = float(backoff(state))
            if budget is None:
                return delay
            return max(0.0, min(delay, budget - (self.clock() - start)))  # never sleep past the budget

        retryer = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            wait=wait,
            stop=stop,
            sleep=self.sleep,
            before_sleep=announce,
            reraise=True,
        )
        try:
            return retryer(fn)
        except Transient as exc:
            spent = self.clock() - start
            raise UnreachableError(f"{what}: giving up after {spent:.0f}s: {exc}") from None

    def _send(self, method: str, url: str, **kw: Any) -> requests.Response:
        log.debug("%s %s (job %s)", method, url, self.s.job.submission_id)
        try:
            return self.session.request(
                method, url, timeout=self.s.request_timeout, allow_redirects=False, **kw
            )
        except requests.RequestException as exc:
            raise Transient(describe(exc)) from exc

    def _check_auth(self, resp: requests.Response) -> None:
        if resp.status_code in (401, 403):
            raise AuthError(wire.auth_message(resp.status_code, resp.url))

    # -- endpoints ----------------------------------------------------------------------------------------
    def wait_ready(self) -> None:
        """Wait until `GET /api/version` answers 200 (dashboard up, token accepted)."""
        url = self.s.base_url + "/api/version"

        def probe() -> None:
            resp = self._send("GET", url)
            self._check_auth(resp)
            if resp.status_code != 200:
                raise Transient(f"HTTP {resp.status_code}")

        self.retrying(f"Waiting for the Ray dashboard at {self.s.base_url}", probe, self.s.wait_timeout)

    def get_job_once(self) -> dict[str, Any] | None:
        """One `GET /api/jobs/<id>`: the record, None on 404; Transient on trouble."""
        resp = self._send("GET", wire.job_url(self.s.base_url, self.s.job.submission_id))
        self._check_auth(resp)
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise Transient(f"HTTP {resp.status_code}: {wire.last_line(resp.text)}")
        try:
            job: dict[str, Any] = resp.json()
        except ValueError:
            raise Transient("the job record is not JSON") from None
        return job

    def get_job(self) -> dict[str, Any] | None:
        return self.retrying("Reading the job status", self.get_job_once, self.s.retry_timeout)

    def get_logs(self) -> str:
        def once() -> str:
            resp = self._send("GET", wire.logs_url(self.s.base_url, self.s.job.submission_id))
            self._check_auth(resp)
            if resp.status_code == 404:
                raise RejectedError(f"job '{self.s.job.submission_id}' no longer exists on the dashboard")
            if resp.status_code != 200:
                raise Transient(f"HTTP {resp.status_code}: {wire.last_line(resp.text)}")
            try:
                return str(resp.json()["logs"])
            except (ValueError, KeyError, TypeError):
                raise Transient("the logs response is not {'logs': ...} JSON") from None

        return self.retrying("Reading the job logs", once, self.s.retry_timeout)

    def submit(self) -> Submission:
        """Submit exactly once: re-POST only after GET has confirmed that the job does not exist."""
        body = wire.submit_body(self.s.job)
        url = wire.submit_url(self.s.base_url)
        state = {"in_doubt": False}

        def attempt() -> Submission:
            if state["in_doubt"]:
                job = self.get_job_once()
                if job is not None:
                    return Submission(created=True, job=job)
            try:
                resp = self.session.request("POST", url, json=body, timeout=self.s.request_timeout)
            except requests.RequestException as exc:
                state["in_doubt"] = state["in_doubt"] or was_sent(exc)
                raise Transient(describe(exc)) from exc
            return self._submit_answer(resp, state)

        return self.retrying(f"Submitting job '{self.s.job.submission_id}'", attempt, self.s.retry_timeout)

    def _submit_answer(self, resp: requests.Response, state: dict[str, bool]) -> Submission:
        verdict = wire.classify_submit(resp.status_code, resp.text)
        if verdict is wire.SubmitVerdict.CREATED:
            return Submission(created=True, job=None)
        if verdict is wire.SubmitVerdict.AUTH:
            raise AuthError(wire.auth_message(resp.status_code, url=resp.url))
        if verdict is wire.SubmitVerdict.REJECTED:
            raise RejectedError(
                f"Ray rejected the submission (HTTP {resp.status_code}): {wire.last_line(resp.text)}"
            )
        if verdict is wire.SubmitVerdict.MAYBE_DUPLICATE:
            job = self.get_job_once()
            if job is not None:
                return Submission(created=state["in_doubt"], job=job)
            raise Transient(f"HTTP {resp.status_code} says the job exists, but GET finds no such job")
        state["in_doubt"] = True
        raise Transient(f"HTTP {resp.status_code}: {wire.last_line(resp.text)}")
