"""The submitter against a fault-injecting proxy (tests/support/faultproxy.py) in front of the real
token-auth head: 503s, a lost POST response, a WebSocket cut mid-frame, and a dashboard "restart"
(every connection dropped, port refusing for several seconds, then back). Each run must leave exactly one
job record and print the job's output completely, in order, with no line twice.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.e2e.test_submitter_scenarios import REPO, Live, new_sid, records, run, submitter_env
from tests.support.faultproxy import FaultProxy
from tests.support.rayhead import RayHead

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxy(ray_head: RayHead) -> Iterator[FaultProxy]:
    p = FaultProxy(("127.0.0.1", ray_head.dashboard_port)).start()
    yield p
    p.stop()


def printer(n: int, pause: float) -> str:
    return (
        f"python -c \"import time\nfor i in range({n}): print('line', i, flush=True); time.sleep({pause})\""
    )


def assert_complete(stdout: str, n: int) -> None:
    got = [ln for ln in stdout.splitlines() if ln.startswith("line ")]
    assert got == [f"line {i}" for i in range(n)], got


def test_503s_are_retried_and_submit_happens_once(ray_head: RayHead, proxy: FaultProxy) -> None:
    sid = new_sid("f503")
    proxy.fail_next(2, 503, method="GET", path_prefix="/api/version")
    proxy.fail_next(3, 503, method="POST", path_prefix="/api/jobs/")
    res = run(["--", printer(5, 0)], submitter_env(ray_head, sid, address=proxy.address))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == f"SUCC -- Job '{sid}' submitted successfully"
    assert_complete(res.stdout, 5)
    assert res.stderr.count("HTTP 503") >= 5
    assert proxy.count("POST", "/api/jobs/") == 4  # 3 injected failures + 1 real
    assert proxy.count("GET", f"/api/jobs/{sid}") >= 3  # checked before every re-POST
    assert len(records(ray_head, sid)) == 1


def test_lost_submit_response_is_checked_before_reposting(ray_head: RayHead, proxy: FaultProxy) -> None:
    sid = new_sid("flost")
    proxy.lose_next_response("POST", "/api/jobs/")
    res = run(["--", printer(3, 0)], submitter_env(ray_head, sid, address=proxy.address))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == f"SUCC -- Job '{sid}' submitted successfully"
    assert proxy.count("POST", "/api/jobs/") == 1  # the GET found the job: no second POST
    assert_complete(res.stdout, 3)
    assert len(records(ray_head, sid)) == 1


def test_websocket_dropped_mid_stream(ray_head: RayHead, proxy: FaultProxy) -> None:
    sid = new_sid("fws")
    # Ray's first frame (its own lines + the first prints) is ~250 bytes; cut the stream mid-frame after
    # that, once part of the log has been printed, so the replay on reconnect must be de-duplicated.
    proxy.drop_ws_after(400)
    env = submitter_env(ray_head, sid, address=proxy.address)
    proc = subprocess.run(
        [sys.executable, "-m", "submitter", "--", printer(40, 0.1)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout
    merged = proc.stdout
    assert "Log stream interrupted" in merged
    assert merged.index("line 0") < merged.index("Log stream interrupted"), "cut before any output"
    assert proxy.ws_sessions >= 2
    assert_complete(merged, 40)
    assert merged.splitlines()[-1] == f"SUCC -- Job '{sid}' succeeded"
    assert len(records(ray_head, sid)) == 1


def test_dashboard_goes_away_and_comes_back_mid_job(ray_head: RayHead, proxy: FaultProxy) -> None:
    sid = new_sid("fout")
    live = Live.start(["--", printer(12, 0.5)], submitter_env(ray_head, sid, address=proxy.address))
    live.wait_line("line 1")
    proxy.outage(5)  # every connection dropped, port refusing for 5 s: a dashboard restart
    rc, err = live.finish(timeout=180)
    assert rc == 0, err
    assert "connection refused" in err or "Log stream interrupted" in err
    assert_complete("\n".join(live.lines), 12)
    assert live.lines[-1] == f"SUCC -- Job '{sid}' succeeded"
    assert len(records(ray_head, sid)) == 1


def test_polling_fallback_when_websocket_always_fails(ray_head: RayHead, proxy: FaultProxy) -> None:
    sid = new_sid("fpoll")
    proxy.fail_next(1000, 502, method="GET", path_prefix=f"/api/jobs/{sid}/logs/tail")
    start = time.monotonic()
    res = run(["--", printer(6, 0.3)], submitter_env(ray_head, sid, address=proxy.address))
    assert res.returncode == 0, (res.stderr, time.monotonic() - start)
    assert "following the log by polling" in res.stderr
    assert_complete(res.stdout, 6)
    assert proxy.count("GET", f"/api/jobs/{sid}/logs") >= 1
    assert len(records(ray_head, sid)) == 1
