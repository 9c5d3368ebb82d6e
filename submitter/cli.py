"""Entry point of `rayside submit` and `python -m submitter`: builds the settings once, wires the HTTP
client and the log follower together, runs wait -> submit -> follow -> final status, and maps every
outcome to a documented exit code (see `--help`). Progress goes to stderr; the job's log to stdout.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TextIO

import requests

from submitter import wire
from submitter.client import DashboardClient, SubmitterError
from submitter.follow import LogFollower, connect_websocket
from submitter.settings import Settings, UsageError, build_parser, parse_settings

ExitCode = wire.ExitCode


class Terminated(BaseException):
    """Raised from the SIGTERM/SIGINT handler; BaseException so no `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _read_text(path: str) -> str:
    with open(os.path.expanduser(path), encoding="utf-8") as fh:
        return fh.read(65536)


class Run:
    """One submission: wait for the dashboard, submit (or attach), follow, report."""

    def __init__(
        self, settings: Settings, client: DashboardClient, follower: LogFollower, out: TextIO
    ) -> None:
        self.s = settings
        self.client = client
        self.follower = follower
        self.out = out

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def __call__(self) -> ExitCode:
        sid = self.s.job.submission_id
        self.client.wait_ready()
        submission = self.client.submit()
        if submission.created:
            self.line(f"SUCC -- Job '{sid}' submitted successfully")
        else:
            self.line(f"INFO -- Job '{sid}' has already been submitted, tailing logs.")
            existing = (submission.job or {}).get("entrypoint")
            if existing is not None and existing != self.s.job.entrypoint:
                self.follower.say(f"WARN -- the existing job's entrypoint differs from ours: {existing!r}")
        if self.s.no_wait:
            return ExitCode.OK
        self.line("INFO -- Tailing logs until the job finishes:")
        job = self.follower.follow()
        self.line(wire.final_line(sid, job))
        return wire.exit_code_for(job, self.s.fail_on_job_failure)


def build_run(
    settings: Settings,
    out: TextIO,
    err: TextIO,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Run:
    def say(text: str) -> None:
        err.write(text + "\n")
        err.flush()

    def write(text: str) -> None:
        out.write(text)
        out.flush()

    client = DashboardClient(settings, requests.Session(), clock, sleep, say)
    follower = LogFollower(settings, client, connect_websocket, write, say, clock, sleep)
    return Run(settings, client, follower, out)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signum)


def error_line(text: str) -> str:
    return f"ERROR --  {text}"  # two spaces, like the Go submitter's Println


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    err = sys.stderr
    flags = args[: args.index("--")] if "--" in args else args
    if "-h" in flags or "--help" in flags:
        build_parser().print_help()
        return ExitCode.OK
    try:
        settings = parse_settings(args, os.environ, _read_text)
        if settings.ca_bundle and not os.path.isfile(settings.ca_bundle):
            raise UsageError(
                f"--ca-bundle: {settings.ca_bundle!r} is not a readable file (expected a PEM bundle)"
            )
    except UsageError as exc:
        print(error_line(str(exc)), file=err)
        return ExitCode.USAGE
    if settings.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=err, format="%(name)s: %(message)s")
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return int(build_run(settings, sys.stdout, err)())
    except SubmitterError as exc:
        print(error_line(str(exc)), file=err)
        return int(exc.exit_code)
    except Terminated as exc:
        name = "SIGTERM" if exc.signum == signal.SIGTERM else "SIGINT"
        print(f"INFO -- {name}: exiting; job '{settings.job.submission_id}' keeps running", file=err)
        return int(ExitCode.TERMINATED if exc.signum == signal.SIGTERM else ExitCode.INTERRUPTED)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
