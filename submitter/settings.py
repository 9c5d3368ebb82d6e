"""Command line + environment -> one immutable `Settings` object, validated before any request is made.

Every user mistake raises `UsageError` with one line naming the flag or variable, the offending value and
what is allowed. File reads (token files) go through an injected `read_text`, so parsing is pure.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import secrets
import shlex
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit

from submitter.wire import JobRequest

SIDECAR_DEFAULT_ADDRESS = "http://127.0.0.1:8265"
SUBMISSION_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=~-]{0,254}")
SUBMISSION_ID_ALLOWED = "1-255 characters from A-Z a-z 0-9 . _ : @ + = ~ -, starting with a letter or digit"

EPILOG = """\
The entrypoint is everything after `--`, joined with single spaces and no quoting (like KubeRay's Go
submitter): `-- echo 'a  b'` submits `echo a  b`. To pass a shell command line with quotes, give it as ONE
argument: -- 'python -c "print(1)"'. --shell-quote joins with shlex quoting instead.

environment:
  RAY_DASHBOARD_ADDRESS   dashboard address, host:port or http(s)://host:port[/prefix] (or --address)
  RAY_JOB_SUBMISSION_ID   submission id (or --submission-id)
  RAY_AUTH_TOKEN          Ray token, sent as `X-Ray-Authorization: Bearer <token>`; else the first line of
  RAY_AUTH_TOKEN_PATH     the file it names; else ~/.ray/auth_token if it exists

exit codes:
  0    the job reached a terminal state (SUCCEEDED, FAILED or STOPPED), or was submitted with --no-wait;
       with --fail-on-job-failure a FAILED job exits 1 instead
  1    job FAILED (with --fail-on-job-failure), Ray rejected the submission, or the job record vanished
  2    usage error: bad flag, bad JSON, bad submission id, missing environment variable
  3    authentication error: HTTP 401 (no token sent) or 403 (wrong token)
  4    dashboard unreachable within the wait/retry budget
  130  interrupted (SIGINT); 143 terminated (SIGTERM). The Ray job is never stopped by the submitter.
"""


class UsageError(Exception):
    """A user mistake in flags or environment; the message is one line."""


@dataclass(frozen=True)
class Settings:
    base_url: str
    job: JobRequest
    token: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    no_wait: bool = False
    sidecar: bool = False
    fail_on_job_failure: bool = False
    wait_timeout: float | None = 60.0  # None: wait forever for the dashboard to come up
    retry_timeout: float = 120.0  # how long one outage may last once the dashboard was seen
    request_timeout: float = 30.0
    ping_interval: float = 15.0
    poll_interval: float = 1.0
    verbose: bool = False


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="rayside submit",
        description="Submit a Ray job to a Ray dashboard and follow its logs until it ends (no Ray needed).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("--address", help="dashboard address (overrides RAY_DASHBOARD_ADDRESS)")
    p.add_argument("--submission-id", help="submission id (overrides RAY_JOB_SUBMISSION_ID)")
    p.add_argument("--runtime-env-json", default="", help="runtime_env as a JSON object")
    p.add_argument("--metadata-json", default="", help="metadata as a JSON object of string to string")
    p.add_argument(
        "--entrypoint-resources", default="", help="custom resources, JSON object of name to number"
    )
    p.add_argument("--entrypoint-num-cpus", default="0", help="CPUs reserved for the entrypoint")
    p.add_argument("--entrypoint-num-gpus", default="0", help="GPUs reserved for the entrypoint")
    p.add_argument("--entrypoint-memory", default="0", help="memory (bytes, integer) for the entrypoint")
    p.add_argument("--entrypoint-label-selector", default="", help="node labels, JSON object string->string")
    p.add_argument("--ca-bundle", help="CA bundle (PEM file) to verify an https:// dashboard")
    p.add_argument("--no-wait", action="store_true", help="exit after submitting; do not follow logs")
    p.add_argument("--sidecar", action="store_true", help="head-pod sidecar: wait for the dashboard forever")
    p.add_argument("--fail-on-job-failure", action="store_true", help="exit 1 when the job ends FAILED")
    p.add_argument("--shell-quote", action="store_true", help="join the entrypoint with shell quoting")
    p.add_argument(
        "--wait-timeout", default=None, help="seconds to wait for the dashboard (default 60; 0=forever)"
    )
    p.add_argument("--retry-timeout", default="120", help="seconds one outage may last before giving up")
    p.add_argument("--request-timeout", default="30", help="seconds per HTTP request")
    p.add_argument("--ping-interval", default="15", help="seconds between WebSocket keepalive pings")
    p.add_argument("--poll-interval", default="1", help="seconds between polls in polling fallback")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging to stderr")
    p.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    return p


def _short(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def parse_number(flag: str, raw: str, *, integer: bool = False, positive: bool = False) -> float:
    kind = "a non-negative integer" if integer else "a non-negative number such as 1 or 0.5"
    try:
        value = float(int(raw)) if integer else float(raw)
    except ValueError:
        raise UsageError(f"{flag}: {_short(raw)} is not {kind}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise UsageError(
            f"{flag}: {_short(raw)} is out of range (expected {kind}{', > 0' if positive else ''})"
        )
    return value


def parse_json_object(flag: str, raw: str, expected: str) -> dict[str, Any] | None:
    """'' means absent. Anything but a JSON object is an error."""
    if raw.strip() == "":
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{flag}: not valid JSON ({exc.msg} at column {exc.colno}); expected {expected}"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag}: got a JSON {type(value).__name__}, expected {expected}")
    return value


def parse_string_map(flag: str, raw: str) -> dict[str, str] | None:
    expected = 'a JSON object of string to string, e.g. {"owner": "a"}'
    obj = parse_json_object(flag, raw, expected)
    for key, val in (obj or {}).items():
        if not isinstance(val, str):
            raise UsageError(f"{flag}: value of {key!r} is {json.dumps(val)}; expected {expected}")
    return obj


def parse_resources(flag: str, raw: str) -> dict[str, float] | None:
    expected = 'a JSON object of resource name to non-negative number, e.g. {"custom": 1}'
    obj = parse_json_object(flag, raw, expected)
    for key, val in (obj or {}).items():
        ok = isinstance(val, int | float) and not isinstance(val, bool) and math.isfinite(val) and val >= 0
        if not ok or key == "":
            raise UsageError(f"{flag}: value of {key!r} is {json.dumps(val)}; expected {expected}")
    return obj


def new_submission_id() -> str:
    """A fresh submission id in Ray's own form (`raysubmit_` + 16 letters/digits) when none is given."""
    alphabet = string.ascii_letters + string.digits
    return "raysubmit_" + "".join(secrets.choice(alphabet) for _ in range(16))


def validate_submission_id(source: str, value: str) -> str:
    if not SUBMISSION_ID_RE.fullmatch(value):
        raise UsageError(f"{source}: {_short(value)} is not a valid submission id ({SUBMISSION_ID_ALLOWED})")
    return value


def normalize_address(source: str, raw: str) -> str:
    """`host:port` -> `http://host:port`; keeps https and a path prefix; drops trailing slashes."""
    text = raw.strip()
    url = text if "://" in text else "http://" + text
    allowed = "expected host:port or http(s)://host:port[/path]"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UsageError(f"{source}: {_short(raw)} is not a valid address ({allowed})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{source}: {_short(raw)} is not a valid address ({allowed})")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UsageError(
            f"{source}: credentials, query and fragment are not allowed in the address ({allowed})"
        )
    netloc = parts.netloc if port is None else f"{parts.netloc.rsplit(':', 1)[0]}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def _read_first_line(path: str, read_text: Callable[[str], str]) -> str | None:
    try:
        lines = read_text(path).strip().splitlines()
    except OSError:
        return None
    return lines[0].strip() if lines else None


def resolve_token(env: Mapping[str, str], read_text: Callable[[str], str]) -> str | None:
    """RAY_AUTH_TOKEN, then the file named by RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token (if present)."""
    token = env.get("RAY_AUTH_TOKEN", "").strip() or None
    source = "RAY_AUTH_TOKEN"
    path = env.get("RAY_AUTH_TOKEN_PATH", "").strip()
    if token is None and path:
        token = _read_first_line(path, read_text)
        source = "RAY_AUTH_TOKEN_PATH"
        if token is None:
            raise UsageError(
                f"RAY_AUTH_TOKEN_PATH: {path!r} is missing, unreadable or empty (expected a token file)"
            )
    if token is None and env.get("HOME"):
        token = _read_first_line(env["HOME"].rstrip("/") + "/.ray/auth_token", read_text)
        source = "~/.ray/auth_token"
    if token is not None and (any(c.isspace() for c in token) or not token.isprintable()):
        raise UsageError(f"{source}: the token contains whitespace or control characters (not shown)")
    return token


def _pick(flag_value: str | None, flag: str, env: Mapping[str, str], var: str) -> tuple[str, str] | None:
    """(value, where it came from): the flag wins over the environment variable."""
    if flag_value is not None and flag_value.strip():
        return flag_value, flag
    if env.get(var, "").strip():
        return env[var], var
    return None


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Flags (and positionals) before the first `--`; everything after it is the entrypoint."""
    args = list(argv)
    if "--" in args:
        i = args.index("--")
        return args[:i], args[i + 1 :]
    return args, []


def parse_settings(argv: Sequence[str], env: Mapping[str, str], read_text: Callable[[str], str]) -> Settings:
    flags, tail = split_argv(argv)
    ns = build_parser().parse_intermixed_args(flags)
    words = [*ns.args, *tail]
    address = _pick(ns.address, "--address", env, "RAY_DASHBOARD_ADDRESS")
    if address is None and ns.sidecar:
        address = (SIDECAR_DEFAULT_ADDRESS, "--sidecar default")
    if address is None:
        raise UsageError("missing RAY_DASHBOARD_ADDRESS in environment variables")
    sid = _pick(ns.submission_id, "--submission-id", env, "RAY_JOB_SUBMISSION_ID")
    if sid is None:
        raise UsageError("missing RAY_JOB_SUBMISSION_ID in environment variables")
    job = JobRequest(
        entrypoint=shlex.join(words) if ns.shell_quote else " ".join(words),
        submission_id=validate_submission_id(sid[1], sid[0].strip()),
        runtime_env=parse_json_object("--runtime-env-json", ns.runtime_env_json, "a JSON object"),
        metadata=parse_string_map("--metadata-json", ns.metadata_json),
        entrypoint_resources=parse_resources("--entrypoint-resources", ns.entrypoint_resources),
        entrypoint_num_cpus=parse_number("--entrypoint-num-cpus", ns.entrypoint_num_cpus),
        entrypoint_num_gpus=parse_number("--entrypoint-num-gpus", ns.entrypoint_num_gpus),
        entrypoint_memory=int(parse_number("--entrypoint-memory", ns.entrypoint_memory, integer=True)),
        entrypoint_label_selector=parse_string_map(
            "--entrypoint-label-selector", ns.entrypoint_label_selector
        ),
    )
    wait_raw = ns.wait_timeout if ns.wait_timeout is not None else ("0" if ns.sidecar else "60")
    wait = parse_number("--wait-timeout", wait_raw)
    return Settings(
        base_url=normalize_address(address[1], address[0]),
        job=job,
        token=resolve_token(env, read_text),
        ca_bundle=ns.ca_bundle,
        no_wait=ns.no_wait,
        sidecar=ns.sidecar,
        fail_on_job_failure=ns.fail_on_job_failure,
        wait_timeout=None if wait == 0 else wait,
        retry_timeout=parse_number("--retry-timeout", ns.retry_timeout, positive=True),
        request_timeout=parse_number("--request-timeout", ns.request_timeout, positive=True),
        ping_interval=parse_number("--ping-interval", ns.ping_interval, positive=True),
        poll_interval=parse_number("--poll-interval", ns.poll_interval, positive=True),
        verbose=ns.verbose,
    )
