"""Follows a Ray job's log until the job is terminal, printing every character exactly once.

Primary path: the `/api/jobs/<id>/logs/tail` WebSocket (websocket-client; no message size limit; keepalive
pings when the stream is quiet, plus a status check so a stream that stays open after the job ended
cannot hang the follower). Ray replays the
whole log on every connection, so a `wire.LogCursor` skips what was already written. After repeated
WebSocket failures the follower falls back to polling `GET /api/jobs/<id>` + `GET .../logs`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import websocket

from submitter import wire
from submitter.client import AuthError, DashboardClient, RejectedError, SubmitterError, Transient
from submitter.settings import Settings

log = logging.getLogger(__name__)
MAX_WS_FAILURES = 3  # consecutive WebSocket failures without new output before falling back to polling


class WebSocketLike(Protocol):
    def recv_data(self, control_frame: bool = False) -> tuple[int, Any]: ...
    def settimeout(self, timeout: float | None) -> None: ...
    def ping(self, payload: str | bytes = "") -> None: ...
    def close(self, status: int = 1000, reason: bytes = b"", timeout: int = 3) -> None: ...


Connect = Callable[..., WebSocketLike]


class StreamBroken(Exception):
    """The WebSocket ended abnormally; reconnect."""


def connect_websocket(
    url: str, headers: dict[str, str], timeout: float, ca_bundle: str | None
) -> WebSocketLike:
    """Open the tail WebSocket. No Origin header (`suppress_origin`), no size limit, no tracing."""
    sslopt = {"ca_certs": ca_bundle} if ca_bundle else None
    ws: WebSocketLike = websocket.create_connection(
        url,
        timeout=timeout,
        header=[f"{k}: {v}" for k, v in headers.items()],
        suppress_origin=True,
        sslopt=sslopt,
        enable_multithread=False,
        skip_utf8_validation=True,  # decoded leniently below; the pure-Python validator is slow on big frames
    )
    return ws


class LogFollower:
    def __init__(
        self,
        settings: Settings,
        client: DashboardClient,
        connect: Connect,
        write: Callable[[str], None],
        say: Callable[[str], None],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.s = settings
        self.client = client
        self.connect = connect
        self.write = write
        self.say = say
        self.clock = clock
        self.sleep = sleep
        self.cursor = wire.LogCursor()

    def follow(self) -> dict[str, Any]:
        """Print the log until the job is terminal; return the final job record."""
        failures = 0
        while failures < MAX_WS_FAILURES:
            before = self.cursor.written
            try:
                self._tail_once()
            except (StreamBroken, websocket.WebSocketException, OSError) as exc:
                failures = 0 if self.cursor.written > before else failures + 1
                delay = wire.retry_delay(failures or 1)
                self.say(f"INFO -- Log stream interrupted ({self._why(exc)}); reconnecting in {delay:.1f}s")
                self.sleep(delay)
                continue
            job = self._job_or_fail()
            if wire.is_terminal(job):
                return job
            self.say(f"INFO -- Log stream closed but the job is {job.get('status')}; reconnecting")
            failures = 0
        self.say("INFO -- WebSocket keeps failing; following the log by polling instead")
        return self.poll()

    @staticmethod
    def _why(exc: BaseException) -> str:
        return str(exc) or type(exc).__name__

    def _job_or_fail(self) -> dict[str, Any]:
        job = self.client.get_job()
        if job is None:
            raise RejectedError(f"job '{self.s.job.submission_id}' no longer exists on the dashboard")
        return job

    def _open(self) -> WebSocketLike:
        url = wire.tail_url(self.s.base_url, self.s.job.submission_id)
        log.debug("opening %s (job %s)", url, self.s.job.submission_id)
        try:
            return self.connect(
                url, wire.auth_headers(self.s.token), self.s.request_timeout, self.s.ca_bundle
            )
        except websocket.WebSocketBadStatusException as exc:
            if exc.status_code in (401, 403):
                raise AuthError(wire.auth_message(exc.status_code, url)) from None
            if exc.status_code == 404:
                self._job_or_fail()  # a 404 from a proxy is not proof; ask the dashboard
            raise StreamBroken(f"handshake answered HTTP {exc.status_code}") from None

    def _tail_once(self) -> None:
        """One WebSocket session; returns when the log is complete, raises StreamBroken otherwise."""
        ws = self._open()
        self.cursor.restart()
        try:
            ws.settimeout(self.s.ping_interval)
            last_heard, pong_seen = self.clock(), False
            while True:
                try:
                    opcode, data = ws.recv_data(control_frame=True)
                except websocket.WebSocketTimeoutException:
                    if self._on_silence(ws, self.clock() - last_heard, pong_seen):
                        return
                    continue
                last_heard = self.clock()
                if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
                    self._emit(self.cursor.feed(text))
                elif opcode == websocket.ABNF.OPCODE_PONG:
                    pong_seen = True
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    code = wire.close_code(bytes(data or b""))
                    if code != 1000:
                        raise StreamBroken(f"closed with code {code}")
                    return
        finally:
            with contextlib.suppress(Exception):
                ws.close(timeout=1)

    def _on_silence(self, ws: WebSocketLike, silent_for: float, pong_seen: bool) -> bool:
        """The stream was quiet for a ping interval (normal for a PENDING or quiet job: Ray sends no
        heartbeats). Ping to keep idle proxies from cutting us; if this server answers pings, a missing
        pong means a dead connection. Also ask for the job's status: if it is terminal but the stream
        stays silent, read the rest of the log with GET and finish (True)."""
        if pong_seen and silent_for > 2.5 * self.s.ping_interval:
            raise StreamBroken("no pong from the dashboard; connection presumed dead")
        ws.ping()
        try:
            job = self.client.get_job_once()
        except Transient:
            return False  # dashboard trouble: the stream itself will fail if it is really gone
        if job is None:
            raise RejectedError(f"job '{self.s.job.submission_id}' no longer exists on the dashboard")
        if wire.is_terminal(job) and silent_for >= 2 * self.s.ping_interval:
            self._emit(self.cursor.feed_whole_log(self.client.get_logs()))
            return True
        return False

    def _emit(self, text: str) -> None:
        if text:
            self.write(text)

    def poll(self) -> dict[str, Any]:
        """Polling fallback: status first, then the whole log; stop after a log read that followed a
        terminal status (so the log is complete)."""
        while True:
            job = self._job_or_fail()
            self._emit(self.cursor.feed_whole_log(self.client.get_logs()))
            if wire.is_terminal(job):
                return job
            self.sleep(self.s.poll_interval)


__all__ = ["LogFollower", "StreamBroken", "SubmitterError", "connect_websocket"]
