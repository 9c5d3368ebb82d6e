"""The submitter's 15 acceptance scenarios, hardened expectations, against the real token-auth head
(the session `ray_head` fixture) and, for the wire format, the recording stub dashboard.

Exit codes follow the submitter's documented table (0 ok, 1 job failed/rejected, 2 usage, 3 auth,
4 unreachable, 143 SIGTERM) rather than the Go submitter's blanket 1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support.faultproxy import FaultProxy
from tests.support.rayhead import RayHead, free_port
from tests.support.stubdashboard import StubDashboard

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def new_sid(tag: str) -> str:
    return f"rs-{tag}-{uuid.uuid4().hex[:10]}"


def submitter_env(head: RayHead | None, sid: str | None, address: str | None = None) -> dict[str, str]:
    if head is not None:
        env = head.client_env()
        env["RAY_AUTH_TOKEN"] = head.token
        env["RAY_DASHBOARD_ADDRESS"] = address or head.address
    else:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env["HOME"] = "/nonexistent"  # no ~/.ray/auth_token
        env["RAY_DASHBOARD_ADDRESS"] = address or ""
    if sid is not None:
        env["RAY_JOB_SUBMISSION_ID"] = sid
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "submitter", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Live:
    """A submitter running in the background whose stdout is collected line by line."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, args: list[str], env: dict[str, str]) -> Live:
        proc = subprocess.Popen(
            [sys.executable, "-m", "submitter", *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        live = cls(proc)
        threading.Thread(target=live._read, daemon=True).start()
        return live

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, needle: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in ln for ln in list(self.lines)):
                return
            assert self.proc.poll() is None or any(needle in ln for ln in self.lines), self.lines
            time.sleep(0.1)
        raise AssertionError(f"no line containing {needle!r} after {timeout}s: {self.lines}")

    def finish(self, timeout: float = 180) -> tuple[int, str]:
        rc = self.proc.wait(timeout)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        time.sleep(0.2)  # let the reader thread drain
        return rc, err


def records(head: RayHead, sid: str) -> list[dict[str, object]]:
    return [j for j in head.list_jobs() if j.get("submission_id") == sid]


COUNTER = 'python -c "import os;[print(os.environ[\\"counter_name\\"],\\"got\\",i) for i in range(1,6)]"'
RUNTIME_ENV = '{"env_vars":{"counter_name":"test_counter"}}'


def test_1_happy_path_and_2_rerun_attaches(ray_head: RayHead) -> None:
    sid = new_sid("s1")
    env = submitter_env(ray_head, sid)
    res = run(["--runtime-env-json", RUNTIME_ENV, "--", COUNTER], env)
    out = res.stdout.splitlines()
    assert res.returncode == 0, res.stderr
    assert out[0] == f"SUCC -- Job '{sid}' submitted successfully"
    assert out[1] == "INFO -- Tailing logs until the job finishes:"
    got = [ln for ln in out if ln.startswith("test_counter got")]
    assert got == [f"test_counter got {i}" for i in range(1, 6)]
    assert out[-1] == f"SUCC -- Job '{sid}' succeeded"
    job = ray_head.get_job(sid).json()
    assert job["status"] == "SUCCEEDED"
    assert job["runtime_env"]["env_vars"]["counter_name"] == "test_counter"

    # scenario 2: same id, different entrypoint -> attach, full replay, still one record
    res2 = run(["--runtime-env-json", RUNTIME_ENV, "--", "echo", "something else"], env)
    out2 = res2.stdout.splitlines()
    assert res2.returncode == 0, res2.stderr
    assert out2[0] == f"INFO -- Job '{sid}' has already been submitted, tailing logs."
    assert [ln for ln in out2 if ln.startswith("test_counter got")] == got
    assert out2[-1] == f"SUCC -- Job '{sid}' succeeded"
    recs = records(ray_head, sid)
    assert len(recs) == 1 and recs[0]["entrypoint"] == COUNTER
    assert "entrypoint differs" in res2.stderr


def test_3_restart_mid_run_replays_then_follows(ray_head: RayHead) -> None:
    sid = new_sid("s3")
    env = submitter_env(ray_head, sid)
    entry = "python -c \"import time\nfor i in range(15): print('tick', i, flush=True); time.sleep(1)\""
    first = Live.start(["--", entry], env)
    first.wait_line("submitted successfully")
    time.sleep(3)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    second = run(["--", entry], env)
    assert second.returncode == 0, second.stderr
    out = second.stdout.splitlines()
    assert out[0] == f"INFO -- Job '{sid}' has already been submitted, tailing logs."
    assert [ln for ln in out if ln.startswith("tick ")] == [f"tick {i}" for i in range(15)]
    assert out[-1] == f"SUCC -- Job '{sid}' succeeded"
    assert len(records(ray_head, sid)) == 1


def test_4_failing_entrypoint_reports_real_status(ray_head: RayHead) -> None:
    sid = new_sid("s4")
    env = submitter_env(ray_head, sid)
    res = run(["--", "echo boom; exit 3"], env)
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert "boom" in out
    assert out[-1].startswith(f"FAIL -- Job '{sid}' failed [JOB_ENTRYPOINT_COMMAND_ERROR]: ")
    assert "exit code 3" in out[-1]
    job = ray_head.get_job(sid).json()
    assert (job["status"], job["error_type"], job["driver_exit_code"]) == (
        "FAILED",
        "JOB_ENTRYPOINT_COMMAND_ERROR",
        3,
    )
    # opt-in: non-zero exit on FAILED (what SidecarMode uses); attaches, does not resubmit
    res2 = run(["--fail-on-job-failure", "--", "echo boom; exit 3"], env)
    assert res2.returncode == 1, res2.stderr
    assert res2.stdout.splitlines()[-1] == out[-1]
    assert len(records(ray_head, sid)) == 1


def test_5_job_fails_before_driver_start(ray_head: RayHead) -> None:
    sid = new_sid("s5")
    res = run(["--runtime-env-json", '{"pip": 123}', "--", "echo", "never"], submitter_env(ray_head, sid))
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[:2] == [
        f"SUCC -- Job '{sid}' submitted successfully",
        "INFO -- Tailing logs until the job finishes:",
    ]
    assert len(out) == 3 and out[2].startswith(
        f"FAIL -- Job '{sid}' failed [JOB_SUPERVISOR_ACTOR_START_FAILURE]"
    )
    job = ray_head.get_job(sid).json()
    assert (job["status"], job["error_type"]) == ("FAILED", "JOB_SUPERVISOR_ACTOR_START_FAILURE")


def test_6_externally_stopped(ray_head: RayHead) -> None:
    sid = new_sid("s6")
    live = Live.start(["--", "sleep 60"], submitter_env(ray_head, sid))
    live.wait_line("Tailing logs")
    r = requests.post(f"{ray_head.url}/api/jobs/{sid}/stop", headers=ray_head.headers(), timeout=30)
    assert r.status_code == 200 and r.json() == {"stopped": True}
    rc, err = live.finish(timeout=60)
    assert rc == 0, err
    assert live.lines[-1] == f"INFO -- Job '{sid}' was stopped: Job was intentionally stopped."
    job = ray_head.get_job(sid).json()
    assert (job["status"], job["message"]) == ("STOPPED", "Job was intentionally stopped.")


@pytest.mark.parametrize(
    ("token", "code", "word"), [(None, 401, "none was sent"), (f"bad{uuid.uuid4().hex}", 403, "wrong token")]
)
def test_7_8_missing_or_wrong_token(ray_head: RayHead, token: str | None, code: int, word: str) -> None:
    sid = new_sid(f"s{code}")
    env = submitter_env(ray_head, sid)
    del env["RAY_AUTH_TOKEN"]
    if token is not None:
        env["RAY_AUTH_TOKEN"] = token
    res = run(["--", "echo", "x"], env)
    assert res.returncode == 3
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ERROR -- ") and str(code) in err[0] and word in err[0]
    assert "SUCC" not in res.stdout
    assert ray_head.token not in res.stderr + res.stdout
    assert token is None or token not in res.stderr + res.stdout
    assert ray_head.get_job(sid).status_code == 404


@pytest.fixture
def stub() -> Iterator[StubDashboard]:
    s = StubDashboard().start()
    yield s
    s.stop()


def test_9_wire_format(stub: StubDashboard) -> None:
    sid = new_sid("s9")
    env = submitter_env(None, sid, address=stub.address)
    env["RAY_AUTH_TOKEN"] = "T"
    res = run(
        ["--metadata-json", '{"owner":"a"}', "--entrypoint-num-cpus", "0.5", "--", "python", "x.py"], env
    )
    assert res.returncode == 0, res.stderr
    assert "hi" in res.stdout.splitlines()
    posts = [r for r in stub.recorded if r.method == "POST"]
    assert len(posts) == 1 and posts[0].path == "/api/jobs/"
    headers = {k.lower(): v for k, v in posts[0].headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["x-ray-authorization"] == "Bearer T"
    assert "authorization" not in headers and "origin" not in headers
    assert json.loads(posts[0].body) == {
        "entrypoint": "python x.py",
        "submission_id": sid,
        "metadata": {"owner": "a"},
        "entrypoint_num_cpus": 0.5,
    }
    tails = [r for r in stub.recorded if r.path == f"/api/jobs/{sid}/logs/tail"]
    assert len(tails) == 1
    ws_headers = {k.lower(): v for k, v in tails[0].headers.items()}
    assert ws_headers["x-ray-authorization"] == "Bearer T" and "origin" not in ws_headers
    assert ws_headers["upgrade"].lower() == "websocket"


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("RAY_JOB_SUBMISSION_ID", "missing RAY_JOB_SUBMISSION_ID in environment variables"),
        ("RAY_DASHBOARD_ADDRESS", "missing RAY_DASHBOARD_ADDRESS in environment variables"),
        ("both", "missing RAY_DASHBOARD_ADDRESS in environment variables"),
    ],
)
def test_10_missing_env(stub: StubDashboard, drop: str, message: str) -> None:
    env = submitter_env(None, new_sid("s10"), address=stub.address)
    env["RAY_AUTH_TOKEN"] = "T"
    for var in ("RAY_JOB_SUBMISSION_ID", "RAY_DASHBOARD_ADDRESS") if drop == "both" else (drop,):
        del env[var]
    res = run(["--", "echo", "x"], env)
    assert res.returncode == 2
    assert res.stderr == f"ERROR --  {message}\n"
    assert stub.recorded == []


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--entrypoint-resources", '{"cpu":"Intentionally wrong value"}'], "--entrypoint-resources"),
        (["--metadata-json", '{"a":1}'], "--metadata-json"),
        (["--runtime-env-json", "not json"], "--runtime-env-json"),
        (["--entrypoint-num-cpus", "lots"], "--entrypoint-num-cpus"),
        (["--entrypoint-memory", "1.5"], "--entrypoint-memory"),
        (["--submission-id", "a/b"], "--submission-id"),
        (["--address", "ftp://x:1"], "--address"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_11_local_validation(stub: StubDashboard, args: list[str], field: str) -> None:
    env = submitter_env(None, new_sid("s11"), address=stub.address)
    res = run([*args, "--", "echo", "x"], env)
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR --  ") and field in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert stub.recorded == []


def test_12_resources_reach_ray_and_sigterm_leaves_job(ray_head: RayHead) -> None:
    sid = new_sid("s12")  # never reused: the record may stay PENDING for Ray's 15-minute start timeout
    live = Live.start(
        ["--ping-interval", "2", "--entrypoint-num-cpus", "64", "--", "echo", "x"],
        submitter_env(ray_head, sid),
    )
    live.wait_line("Tailing logs")
    seen = list(live.lines)
    time.sleep(20)
    assert live.proc.poll() is None, "the submitter must keep waiting for a PENDING job"
    assert live.lines == seen
    job = ray_head.get_job(sid).json()
    assert job["status"] == "PENDING" and "It may be waiting for resources" in job["message"]
    live.proc.send_signal(signal.SIGTERM)
    rc, err = live.finish(timeout=30)
    assert rc == 143 and "keeps running" in err
    assert ray_head.get_job(sid).json()["status"] == "PENDING"  # not stopped by the submitter
    requests.post(f"{ray_head.url}/api/jobs/{sid}/stop", headers=ray_head.headers(), timeout=30)


def test_13_unreachable_dashboard_retries_then_gives_up() -> None:
    port = free_port()
    env = submitter_env(None, new_sid("s13"), address=f"127.0.0.1:{port}")
    res = run(["--wait-timeout", "4", "--", "echo", "x"], env)
    assert res.returncode == 4
    assert res.stderr.count("retrying in") >= 2
    assert res.stderr.splitlines()[-1].startswith("ERROR --  Waiting for the Ray dashboard")
    assert "connection refused" in res.stderr


def test_13_dashboard_comes_up_during_retry_window(ray_head: RayHead) -> None:
    proxy = FaultProxy((ray_head.address.split(":")[0], ray_head.dashboard_port)).start()
    try:
        proxy.refuse_for(4)
        sid = new_sid("s13b")
        res = run(["--", "echo", "late"], submitter_env(ray_head, sid, address=proxy.address))
        assert res.returncode == 0, res.stderr
        assert "connection refused" in res.stderr and "retrying in" in res.stderr
        assert "late" in res.stdout.splitlines()
        assert len(records(ray_head, sid)) == 1
    finally:
        proxy.stop()


def test_14_address_forms_and_joining(ray_head: RayHead) -> None:
    # three submitters at once (they are independent jobs): two address forms, and the joining rule
    # through the `rayside submit` dispatcher
    runs: list[tuple[str, list[str], str, str]] = []
    for address in (f"http://{ray_head.address}/", ray_head.address):
        runs.append(
            (new_sid("s14"), ["-m", "submitter", "--", "echo", "hello", "world"], address, "hello world")
        )
    runs.append(
        (new_sid("s14q"), ["-m", "rayside.cli", "submit", "--", "echo", "a  b"], ray_head.address, "a b")
    )
    procs = [
        subprocess.Popen(
            [sys.executable, *args],
            env=submitter_env(ray_head, sid, address=address),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for sid, args, address, _ in runs
    ]
    for proc, (sid, args, _, printed) in zip(procs, runs, strict=True):
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert printed in out.splitlines()
        expected = "echo a  b" if "rayside.cli" in args else "echo hello world"
        assert ray_head.get_job(sid).json()["entrypoint"] == expected


def test_15_oversized_log_frame(ray_head: RayHead) -> None:
    sid = new_sid("s15")
    res = run(["--", "python -c \"print('x' * 70000)\""], submitter_env(ray_head, sid))
    assert res.returncode == 0, res.stderr
    assert "x" * 70000 in res.stdout.splitlines()


def test_no_wait_exits_after_submit(ray_head: RayHead) -> None:
    sid = new_sid("nw")
    res = run(["--no-wait", "--", "echo", "bye"], submitter_env(ray_head, sid))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"SUCC -- Job '{sid}' submitted successfully"]
    assert ray_head.wait_job_terminal(sid)["status"] == "SUCCEEDED"
