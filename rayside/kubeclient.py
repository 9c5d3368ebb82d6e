"""The one Kubernetes API client every rayside process uses (operator, localkube controllers and kubelet,
autoscaler provider).

It owns HTTP: configuration and auth come from the `kubernetes` library (kubeconfig or in-cluster), requests
and responses are raw JSON dicts, every status maps to one exception class, transient failures are retried
with exponential backoff (tenacity), and a token bucket enforces QPS/burst. Everything else calls this module
instead of opening its own HTTP sessions.
"""

from __future__ import annotations

import builtins
import copy
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import requests.adapters
import tenacity

from rayside.objects import JSON

log = logging.getLogger(__name__)

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


# -- errors -------------------------------------------------------------------------------------------------
class KubeError(Exception):
    """An API error response (or a transport failure, status 0)."""

    status: int = 0

    def __init__(self, status: int, reason: str, message: str, body: JSON | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}


class BadRequest(KubeError): ...


class Unauthorized(KubeError): ...


class Forbidden(KubeError): ...


class NotFound(KubeError): ...


class Conflict(KubeError): ...


class AlreadyExists(Conflict): ...


class Gone(KubeError): ...


class Invalid(KubeError): ...


class TooManyRequests(KubeError): ...


class ServerError(KubeError): ...


class TransportError(KubeError):
    """The request did not get an HTTP answer (refused, reset, timed out)."""


_BY_STATUS: dict[int, type[KubeError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def error_for(status: int, body: JSON | None, text: str = "") -> KubeError:
    """Map an HTTP status and its (Status) body to the matching exception."""
    body = body or {}
    reason = str(body.get("reason") or "")
    message = str(body.get("message") or text[:500])
    if status == 409 and reason == "AlreadyExists":
        return AlreadyExists(status, reason, message, body)
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else KubeError)
    return cls(status, reason or cls.__name__, message, body)


_DEFAULT = object()  # "use the client's default timeout"


@dataclass(frozen=True)
class WatchEvent:
    type: str
    object: JSON


# -- rate limiting ------------------------------------------------------------------------------------------
class TokenBucket:
    """Thread-safe token bucket: `qps` tokens per second, at most `burst` banked. qps <= 0 disables it.

    Two priorities share the one budget, so the configured QPS always holds: a normal caller reserves the
    next token and sleeps until it is due; a deferrable caller (status writes, Events) takes a token only
    when one is banked and no normal caller is waiting, for at most `max_defer` seconds, then reserves
    like a normal caller. Under sustained load deferrable writes therefore go last but are not starved.
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._last = clock()
        self._waiting = 0  # normal callers between their reservation and its due time
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def _take_if_idle(self) -> float | None:
        """Deferrable: take a banked token if no normal caller waits (None); else seconds to look again."""
        with self._lock:
            self._refill()
            if self._waiting == 0 and self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return max((1.0 - self._tokens) / self.qps, 1.0 / self.qps)

    def acquire(self, *, deferrable: bool = False, max_defer: float = 0.0) -> None:
        if self.qps <= 0:
            return
        if deferrable:
            deadline = self._clock() + max_defer
            while True:
                wait = self._take_if_idle()
                if wait is None:
                    return
                left = deadline - self._clock()
                if left <= 0:
                    break
                self._sleep(min(wait, left))
        with self._lock:
            self._waiting += 1
        try:
            delay = self.reserve()
            if delay > 0:
                self._sleep(delay)
        finally:
            with self._lock:
                self._waiting -= 1


# -- the client ---------------------------------------------------------------------------------------------
def _retryable(method: str) -> Callable[[BaseException], bool]:
    def check(exc: BaseException) -> bool:
        if not isinstance(exc, KubeError):
            return False
        if isinstance(exc, TransportError):
            # a POST may have reached the server unless the connection was refused outright
            return method != "POST" or exc.reason == "ConnectionRefused"
        if exc.status in {429, 503}:
            return True
        return exc.status >= 500 and method != "POST"

    return check


def _wait_with_retry_after(base: tenacity.wait.wait_base) -> Callable[[tenacity.RetryCallState], float]:
    def wait(state: tenacity.RetryCallState) -> float:
        delay = float(base(state))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, KubeError):
            details = exc.body.get("details") or {}
            retry_after = details.get("retryAfterSeconds") if isinstance(details, dict) else None
            if isinstance(retry_after, int | float):
                delay = max(delay, float(retry_after))
        return delay

    return wait


class KubeClient:
    """Raw-JSON Kubernetes client with retries, a QPS/burst limit and per-verb request counts."""

    def __init__(
        self,
        host: str,
        *,
        session: requests.Session | None = None,
        auth_header: Callable[[], str | None] = lambda: None,
        qps: float = 50.0,
        burst: int = 100,
        timeout: float = 30.0,
        retries: int = 5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.host = host.rstrip("/")
        self.session = session or requests.Session()
        self._auth_header = auth_header
        self.timeout = timeout
        self.retries = max(1, retries)
        self._sleep = sleep
        self.limiter = TokenBucket(qps, burst, clock=clock, sleep=sleep)
        self._stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._deferrable = False
        self._max_defer = 0.0

    def deferrable(self, max_defer: float) -> KubeClient:
        """A view of this client (same connection pool, budget and statistics) whose requests yield to
        the normal ones for up to `max_defer` seconds each (see `TokenBucket`): for writes that may lag,
        like status and Events, so that they never slow down creating and deleting objects."""
        view = copy.copy(self)
        view._deferrable, view._max_defer = True, max(0.0, max_defer)
        return view

    def prepaid(self) -> KubeClient:
        """A view whose requests skip the token bucket, for a caller that took its token from `limiter`
        itself (e.g. to decide what to send only once its turn has come)."""
        view = copy.copy(self)
        view.limiter = TokenBucket(0, 1)
        return view

    @classmethod
    def from_config(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        pool_size: int = 64,
        **kwargs: Any,
    ) -> KubeClient:
        """Build from a kubeconfig (explicit path, $KUBECONFIG, ~/.kube/config), else in-cluster config.

        `pool_size` keep-alive connections are kept per host (requests keeps 10): more threads than that
        sending at once would otherwise open and discard a TCP+TLS connection per request."""
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config

        cfg = k8s_client.Configuration()
        try:
            k8s_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
        except (k8s_config.ConfigException, FileNotFoundError, TypeError):
            if kubeconfig:
                raise
            k8s_config.load_incluster_config(client_configuration=cfg)
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size))
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.verify = (cfg.ssl_ca_cert or True) if cfg.verify_ssl else False
        if cfg.cert_file and cfg.key_file:
            session.cert = (cfg.cert_file, cfg.key_file)

        def auth_header() -> str | None:
            value = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
            return str(value) if value else None

        return cls(cfg.host, session=session, auth_header=auth_header, **kwargs)

    # -- statistics -----------------------------------------------------------------------------------------
    @property
    def stats(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self._stats)

    def _count(self, verb: str) -> None:
        with self._stats_lock:
            self._stats[verb] += 1

    # -- the one place HTTP happens --------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        content_type: str | None,
        stream: bool = False,
        timeout: float | object | None = _DEFAULT,
    ) -> requests.Response:
        self.limiter.acquire(deferrable=self._deferrable, max_defer=self._max_defer)
        headers = {"Accept": "application/json"}
        auth = self._auth_header()
        if auth:
            headers["Authorization"] = auth
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type or "application/json"
        self._count(method)
        effective = self.timeout if timeout is _DEFAULT else timeout
        try:
            resp = self.session.request(
                method,
                self.host + path,
                params=_query(params),
                data=data,
                headers=headers,
                timeout=effective if isinstance(effective, float | int) else None,
                stream=stream,
                verify=self.session.verify,  # else $REQUESTS_CA_BUNDLE overrides the kubeconfig CA
            )
        except requests.ConnectionError as exc:
            refused = "refused" in str(exc).lower()
            raise TransportError(0, "ConnectionRefused" if refused else "ConnectionError", str(exc)) from exc
        except requests.Timeout as exc:
            raise TransportError(0, "Timeout", str(exc)) from exc
        if resp.status_code >= 400:
            text = resp.text
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            raise error_for(resp.status_code, parsed if isinstance(parsed, dict) else None, text)
        return resp

    def _retrying(self, method: str) -> tenacity.Retrying:
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries),
            wait=_wait_with_retry_after(tenacity.wait_random_exponential(multiplier=0.2, max=5.0)),
            retry=tenacity.retry_if_exception(_retryable(method)),
            sleep=self._sleep,
            reraise=True,
            before_sleep=_log_retry,
        )

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> JSON:
        """Send one API request (with retries) and return the decoded JSON body."""
        for attempt in self._retrying(method):
            with attempt:
                resp = self._send(method, path, params, body, content_type)
        if not resp.content:
            return {}
        result = resp.json()
        return result if isinstance(result, dict) else {"items": result}

    # -- verbs ----------------------------------------------------------------------------------------------
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> JSON:
        return self.request("GET", path, params)

    def list(self, path: str, params: Mapping[str, Any] | None = None) -> JSON:
        return self.request("GET", path, params)

    def list_all(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[builtins.list[JSON], str]:
        """List every page (following `continue`); returns the items and the list's resourceVersion."""
        query = dict(params or {})
        items: builtins.list[JSON] = []
        while True:
            page = self.list(path, query)
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion", ""))
            query["continue"] = meta["continue"]

    def create(self, path: str, body: JSON, params: Mapping[str, Any] | None = None) -> JSON:
        return self.request("POST", path, params, body)

    def replace(self, path: str, body: JSON, params: Mapping[str, Any] | None = None) -> JSON:
        return self.request("PUT", path, params, body)

    def patch(
        self,
        path: str,
        body: Any,
        patch_type: str = "merge",
        params: Mapping[str, Any] | None = None,
    ) -> JSON:
        if patch_type not in PATCH_TYPES:
            raise ValueError(f"patch_type {patch_type!r} is not one of {sorted(PATCH_TYPES)}")
        return self.request("PATCH", path, params, body, PATCH_TYPES[patch_type])

    def delete(self, path: str, params: Mapping[str, Any] | None = None, body: JSON | None = None) -> JSON:
        return self.request("DELETE", path, params, body)

    def watch(
        self,
        path: str,
        resource_version: str = "",
        timeout_seconds: int = 300,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[WatchEvent]:
        """Stream watch events until the server ends the watch; raises `Gone` when the version is too old."""
        query = dict(params or {})
        query.update(watch="true", allowWatchBookmarks="true", timeoutSeconds=timeout_seconds)
        if resource_version:
            query["resourceVersion"] = resource_version
        resp = self._send("GET", path, query, None, None, stream=True, timeout=timeout_seconds + 30)
        try:
            for line in resp.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    raise error_for(int(obj.get("code") or 500), obj)
                yield WatchEvent(str(event.get("type")), obj)
        except requests.RequestException as exc:
            raise TransportError(0, "WatchInterrupted", str(exc)) from exc
        finally:
            resp.close()

    def stream(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[bytes]:
        """Stream a raw body (e.g. pods/log?follow=true) chunk by chunk."""
        resp = self._send("GET", path, params, None, None, stream=True, timeout=None)
        try:
            yield from resp.iter_content(chunk_size=None)
        except requests.RequestException as exc:
            raise TransportError(0, "StreamInterrupted", str(exc)) from exc
        finally:
            resp.close()


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.debug("retry %d after %s", state.attempt_number, exc)


def _query(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out
