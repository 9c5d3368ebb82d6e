"""Pure parts of rayside.kubeclient: paths, status→exception mapping, retry policy, the token bucket."""

from __future__ import annotations

import pytest

from rayside.kubeclient import (
    AlreadyExists,
    Conflict,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    ServerError,
    TokenBucket,
    TooManyRequests,
    TransportError,
    _retryable,
    error_for,
)


@pytest.mark.parametrize(
    ("status", "reason", "cls"),
    [
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", AlreadyExists),
        (410, "Expired", Gone),
        (422, "Invalid", Invalid),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
        (504, "Timeout", ServerError),
        (418, "Teapot", KubeError),
    ],
)
def test_error_for_maps_status_and_reason(status: int, reason: str, cls: type[KubeError]) -> None:
    err = error_for(status, {"kind": "Status", "reason": reason, "message": "m", "code": status})
    assert type(err) is cls
    assert (err.status, err.reason, err.message) == (status, reason, "m")


def test_error_for_without_status_body_keeps_text() -> None:
    err = error_for(502, None, "bad gateway from proxy")
    assert isinstance(err, ServerError)
    assert err.message == "bad gateway from proxy"


def test_retry_policy() -> None:
    get, post = _retryable("GET"), _retryable("POST")
    assert get(ServerError(500, "x", "m")) and not post(ServerError(500, "x", "m"))
    assert get(TooManyRequests(429, "x", "m")) and post(TooManyRequests(429, "x", "m"))
    assert post(ServerError(503, "x", "m"))
    assert post(TransportError(0, "ConnectionRefused", "m"))
    assert not post(TransportError(0, "Timeout", "m")) and get(TransportError(0, "Timeout", "m"))
    assert not get(NotFound(404, "x", "m")) and not get(Conflict(409, "x", "m"))
    assert not get(ValueError("not an API error"))


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_allows_burst_then_paces_at_qps() -> None:
    t = FakeTime()
    bucket = TokenBucket(qps=10, burst=5, clock=t.clock, sleep=t.sleep)
    for _ in range(5):
        bucket.acquire()
    assert t.slept == []
    for _ in range(10):
        bucket.acquire()
    assert t.now == pytest.approx(1.0)  # 10 more requests at 10 QPS take one second
    assert all(s == pytest.approx(0.1) for s in t.slept)


def test_token_bucket_refills_while_idle_but_not_past_burst() -> None:
    t = FakeTime()
    bucket = TokenBucket(qps=2, burst=3, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        bucket.acquire()
    t.now += 100  # a long idle period banks at most `burst` tokens
    for _ in range(3):
        bucket.acquire()
    assert t.slept == []
    bucket.acquire()
    assert t.slept == [pytest.approx(0.5)]


def test_token_bucket_disabled_with_zero_qps() -> None:
    t = FakeTime()
    bucket = TokenBucket(qps=0, burst=1, clock=t.clock, sleep=t.sleep)
    for _ in range(100):
        bucket.acquire()
    assert t.slept == []


def test_deferrable_takes_a_banked_token_at_once() -> None:
    t = FakeTime()
    bucket = TokenBucket(qps=10, burst=2, clock=t.clock, sleep=t.sleep)
    bucket.acquire(deferrable=True, max_defer=30)
    assert t.slept == []


def test_deferrable_waits_for_a_whole_token_when_the_bucket_is_empty() -> None:
    t = FakeTime()
    bucket = TokenBucket(qps=10, burst=2, clock=t.clock, sleep=t.sleep)
    bucket.acquire()
    bucket.acquire()
    bucket.acquire(deferrable=True, max_defer=30)
    assert t.now == pytest.approx(0.1)
    bucket.acquire()  # the deferrable write used the budget: the next normal one waits its turn
    assert t.now == pytest.approx(0.2)


def test_deferrable_yields_to_a_waiting_normal_caller_for_at_most_max_defer() -> None:
    t = FakeTime()
    bucket = TokenBucket(qps=10, burst=1, clock=t.clock, sleep=t.sleep)
    finished: list[tuple[str, float]] = []
    inner_started = False

    def sleep(seconds: float) -> None:
        # the first sleep is the normal caller waiting for its token: while it waits, a deferrable caller
        # arrives (re-entrant, as another thread would); it must not take the refilled token before it
        nonlocal inner_started
        if not inner_started:
            inner_started = True
            t.sleep(0.05)
            bucket.acquire(deferrable=True, max_defer=2.0)
            finished.append(("deferrable", t.now))
        t.sleep(seconds)

    bucket._sleep = sleep
    bucket.acquire()  # takes the banked token
    bucket.acquire()  # waits 0.1 s; the deferrable caller arrives meanwhile and gives way for 2 s
    finished.append(("normal", t.now))
    assert finished[0][0] == "deferrable"
    assert finished[0][1] >= 2.05  # it waited out max_defer although tokens refilled long before
    assert len(finished) == 2
