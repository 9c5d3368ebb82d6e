"""Pure decisions of the submitter: URLs, the submit request body, response classification, log
de-duplication across reconnects, the final status line and the exit code. No I/O happens here.

Everything in this module is a function of its arguments so that it can be unit-tested exhaustively and
the I/O layers (`client.py`, `follow.py`) stay thin.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
DUPLICATE_PHRASES = ("Please use a different submission_id", "already exists")


class ExitCode(enum.IntEnum):
    """Process exit codes (documented in `--help` and docs/submitter.md)."""

    OK = 0  # job reached a terminal state (or was submitted, with --no-wait)
    FAILURE = 1  # job FAILED with --fail-on-job-failure; Ray rejected the submission; job vanished
    USAGE = 2  # bad flag, bad JSON, bad id, missing environment variable
    AUTH = 3  # the dashboard answered 401 (token missing) or 403 (token wrong)
    UNREACHABLE = 4  # the dashboard could not be reached within the retry budget
    INTERRUPTED = 130  # SIGINT; the Ray job is left running
    TERMINATED = 143  # SIGTERM; the Ray job is left running


# --- URLs ------------------------------------------------------------------------------------------------
def job_path(submission_id: str) -> str:
    """`/api/jobs/<id>` with the id percent-encoded as one path segment."""
    return "/api/jobs/" + quote(submission_id, safe="")


def submit_url(base_url: str) -> str:
    return base_url + "/api/jobs/"  # the trailing slash is mandatory on Ray 2.60


def job_url(base_url: str, submission_id: str) -> str:
    return base_url + job_path(submission_id)


def logs_url(base_url: str, submission_id: str) -> str:
    return job_url(base_url, submission_id) + "/logs"


def tail_url(base_url: str, submission_id: str) -> str:
    """The log-tail WebSocket URL: `http` becomes `ws`, `https` becomes `wss`."""
    scheme, rest = base_url.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest + job_path(submission_id) + "/logs/tail"


def auth_headers(token: str | None) -> dict[str, str]:
    """`X-Ray-Authorization` (not `Authorization`), so proxies that own `Authorization` keep working."""
    return {"X-Ray-Authorization": f"Bearer {token}"} if token else {}


# --- request body ----------------------------------------------------------------------------------------
def json_number(value: float) -> int | float:
    """2.0 -> 2, 0.5 -> 0.5: the shortest JSON form, like the Go submitter."""
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


@dataclass(frozen=True)
class JobRequest:
    """What to submit; built once from argv + env by `settings.parse_settings`."""

    entrypoint: str
    submission_id: str
    runtime_env: Mapping[str, Any] | None = None
    metadata: Mapping[str, str] | None = None
    entrypoint_resources: Mapping[str, float] | None = None
    entrypoint_num_cpus: float = 0.0
    entrypoint_num_gpus: float = 0.0
    entrypoint_memory: int = 0
    entrypoint_label_selector: Mapping[str, str] | None = None


def submit_body(req: JobRequest) -> dict[str, Any]:
    """The JSON body of `POST /api/jobs/`. Empty maps and zero amounts are omitted (Go `omitempty`)."""
    body: dict[str, Any] = {}
    if req.runtime_env:
        body["runtime_env"] = dict(req.runtime_env)
    if req.metadata:
        body["metadata"] = dict(req.metadata)
    if req.entrypoint_resources:
        body["entrypoint_resources"] = {k: json_number(float(v)) for k, v in req.entrypoint_resources.items()}
    body["entrypoint"] = req.entrypoint
    body["submission_id"] = req.submission_id
    if req.entrypoint_num_cpus:
        body["entrypoint_num_cpus"] = json_number(req.entrypoint_num_cpus)
    if req.entrypoint_num_gpus:
        body["entrypoint_num_gpus"] = json_number(req.entrypoint_num_gpus)
    if req.entrypoint_memory:
        body["entrypoint_memory"] = req.entrypoint_memory
    if req.entrypoint_label_selector:
        body["entrypoint_label_selector"] = dict(req.entrypoint_label_selector)
    return body


# --- responses -------------------------------------------------------------------------------------------
class SubmitVerdict(enum.Enum):
    CREATED = "created"
    MAYBE_DUPLICATE = "maybe-duplicate"  # confirm with GET /api/jobs/<id>
    AUTH = "auth"
    REJECTED = "rejected"  # a permanent client-side problem: do not retry
    RETRY = "retry"  # transient server trouble: the job may or may not exist, GET before re-POSTing


def classify_submit(status: int, body: str) -> SubmitVerdict:
    if 200 <= status < 300:
        return SubmitVerdict.CREATED
    if status in (401, 403):
        return SubmitVerdict.AUTH
    if status == 409 or (status in (400, 500) and any(p in body for p in DUPLICATE_PHRASES)):
        return SubmitVerdict.MAYBE_DUPLICATE
    if status == 429 or status >= 500:
        return SubmitVerdict.RETRY
    return SubmitVerdict.REJECTED


def last_line(text: str, limit: int = 300) -> str:
    """The informative part of a Ray error body: its last non-empty line (tracebacks end with the error)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else "(empty body)"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def auth_message(status: int, url: str) -> str:
    if status == 401:
        return (
            f"HTTP 401 from {url}: the dashboard requires a token and none was sent "
            "(set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)"
        )
    return (
        f"HTTP 403 from {url}: the dashboard rejected the token "
        "(RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH holds the wrong token for this cluster)"
    )


def retry_delay(attempt: int, base: float = 0.5, cap: float = 5.0) -> float:
    """Exponential backoff (attempt counts from 1): 0.5, 1, 2, 4, 5, 5, ..."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)))


# --- log de-duplication ----------------------------------------------------------------------------------
@dataclass
class LogCursor:
    """Skips what was already printed when Ray replays the whole log on a new connection.

    `written` counts characters printed over the whole run; `seen` counts characters received on the
    current stream (reset by `restart`). Only the part of a chunk beyond `written` is new.
    """

    written: int = 0
    seen: int = 0

    def restart(self) -> None:
        self.seen = 0

    def feed(self, chunk: str) -> str:
        start = self.seen
        self.seen += len(chunk)
        if self.seen <= self.written:
            return ""
        new = chunk[max(0, self.written - start) :]
        self.written = self.seen
        return new

    def feed_whole_log(self, text: str) -> str:
        """For polling: `text` is the complete log so far."""
        self.restart()
        return self.feed(text)


def close_code(payload: bytes) -> int:
    """The status code of a WebSocket close frame payload (1005 when absent)."""
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005


# --- the end ---------------------------------------------------------------------------------------------
def is_terminal(job: Mapping[str, Any]) -> bool:
    return job.get("status") in TERMINAL_STATUSES


def final_line(submission_id: str, job: Mapping[str, Any]) -> str:
    """The last stdout line: the job's real status and the first line of its message."""
    status = str(job.get("status"))
    message = str(job.get("message") or "").strip().splitlines()
    first = message[0].rstrip(":").strip() if message else ""
    if status == "SUCCEEDED":
        return f"SUCC -- Job '{submission_id}' succeeded"
    if status == "FAILED":
        detail = f" [{job['error_type']}]" if job.get("error_type") else ""
        return f"FAIL -- Job '{submission_id}' failed{detail}: {first or 'no message'}"
    if status == "STOPPED":
        return f"INFO -- Job '{submission_id}' was stopped: {first or 'no message'}"
    return f"INFO -- Job '{submission_id}' ended in status {status}: {first}"


def exit_code_for(job: Mapping[str, Any], fail_on_job_failure: bool) -> ExitCode:
    """0 for every terminal job (K8sJobMode contract); FAILED is 1 only with --fail-on-job-failure.

    STOPPED counts as success, like KubeRay (a stopped RayJob is `Complete`).
    """
    if fail_on_job_failure and job.get("status") == "FAILED":
        return ExitCode.FAILURE
    if not is_terminal(job):
        return ExitCode.FAILURE
    return ExitCode.OK


def is_finite_non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0
