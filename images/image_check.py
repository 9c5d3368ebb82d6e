"""Run the submitter inside a buildah image against a real token-auth Ray head (and, for tracing, a TLS stub).

Used by `images/build_submitter_image.sh` (run from the repository root with the host's Python 3.11):

- `trace IMAGE OUTDIR`: run the submitter from the build-stage image under `python -X importtime` (plus a
  dump of `sys.modules` at exit) through
  every path it has (help, usage errors, real submission with a DNS name, duplicate, failing job, wrong
  token, unreachable dashboard, https with a CA bundle) and save each run's stderr; the slim base keeps only
  the stdlib modules these runs imported.
- `check IMAGE`: run the image's own ENTRYPOINT as its own USER: `--help`, an unknown flag, a submission
  without the token (401), then a real submission (runtime env, log tailing, final status) and a re-run of
  the same submission id; verify output, exit codes and the dashboard's record.

Every process runs with `buildah run --isolation chroot --network host` on the image's root filesystem.
Environment (including the Ray token) reaches the container through a bind-mounted file read by a two-line
exec wrapper, never through argv.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.support.rayhead import RayHead, free_port, new_head  # noqa: E402

ENV_IN_CONTAINER = "/run/rayside-env"
# Reads KEY=VALUE lines from the mounted env file and execs argv[1:] with them added to the environment.
EXEC_WITH_ENV = (
    "import os,sys;e=dict(os.environ);"
    f"e.update(l.split('=',1) for l in open('{ENV_IN_CONTAINER}').read().splitlines() if l);"
    "os.execve(sys.argv[1],sys.argv[1:],e)"
)
# Runs the submitter like `python -m submitter` and, at exit, writes every loaded module name to stderr:
# `-X importtime` alone misses modules loaded through importlib.import_module (codecs, for one).
RUN_AND_DUMP_MODULES = (
    "import atexit,runpy,sys;"
    "atexit.register(lambda: sys.stderr.write('MODULES '+' '.join(sorted(sys.modules))+'\\n'));"
    "runpy.run_module('submitter',run_name='__main__',alter_sys=True)"
)
SCENARIO_ONE = 'python -c "import os;[print(os.environ[\\"counter_name\\"],\\"got\\",i) for i in range(1,6)]"'


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str


class Buildah:
    """The few buildah operations used here, against one private vfs storage root."""

    def __init__(self, storage: Sequence[str], secrets_dir: Path) -> None:
        self.base = ["buildah", *storage]
        self.secrets_dir = secrets_dir

    def _out(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], check=True, capture_output=True, text=True).stdout.strip()

    def config(self, image: str) -> dict[str, object]:
        info = json.loads(self._out("inspect", "--type", "image", image))
        cfg: dict[str, object] = info["OCIv1"]["config"]
        return cfg

    @contextlib.contextmanager
    def container(self, image: str) -> Iterator[str]:
        ctr = self._out("from", "--pull-never", image)
        try:
            yield ctr
        finally:
            subprocess.run([*self.base, "rm", ctr], check=False, capture_output=True)

    def run(
        self,
        ctr: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        mounts: Sequence[tuple[Path, str]] = (),
        timeout: float = 300,
    ) -> Result:
        cmd = [*self.base, "run", "--isolation", "chroot", "--network", "host"]
        if user:
            cmd += ["--user", user]
        for host, inside in mounts:
            cmd += ["-v", f"{host}:{inside}:ro"]
        with tempfile.NamedTemporaryFile("w", dir=self.secrets_dir, suffix=".env") as f:
            if env is not None:
                f.write("".join(f"{k}={v}\n" for k, v in env.items()))
                f.flush()
                os.chmod(f.name, 0o444)  # readable by the container's non-root user; the dir is 0700
                cmd += ["-v", f"{f.name}:{ENV_IN_CONTAINER}:ro"]
                argv = [argv[0], "-c", EXEC_WITH_ENV, *argv]
            proc = subprocess.run(
                [*cmd, ctr, "--", *argv], check=False, capture_output=True, text=True, timeout=timeout
            )
        return Result(proc.returncode, proc.stdout, proc.stderr)


HEAD_DIED = 75  # EX_TEMPFAIL: the Ray head (not the image) failed; the shell scripts retry once


class HeadFailed(Exception):
    """The Ray head (not the image under test) failed to start or died."""


@contextlib.contextmanager
def ray_head() -> Iterator[RayHead]:
    """A fresh token-auth Ray head (tests/support/rayhead.py), fully started; failures raise HeadFailed."""
    head = new_head()
    try:
        try:
            head.start(num_cpus=1)
        except (RuntimeError, TimeoutError) as e:
            raise HeadFailed(str(e)[-600:]) from e
        if not node_started(head):
            raise HeadFailed(f"ray head {head.address} did not finish starting")
        yield head
    finally:
        head.stop()
        shutil.rmtree(head.temp_dir.parent, ignore_errors=True)


def head_died(head: RayHead) -> bool:
    """True (after printing the head's log tail) when the Ray head's dashboard no longer answers."""
    try:
        alive = head.get_job("no-such-job").status_code == 404
    except OSError:
        alive = False
    if not alive:
        log = head.log_path.read_text(errors="replace") if head.log_path.exists() else ""
        print(f"Ray head {head.address} died during the run; head log tail:\n{log[-600:]}", file=sys.stderr)
    return not alive


def node_started(head: RayHead, timeout: float = 300) -> bool:
    """Wait until `ray start` reports the node up: the dashboard answers earlier, and on an overloaded machine
    the raylet can still time out (then `ray start` exits and takes the dashboard with it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.log_path.exists() and "Ray runtime started" in head.log_path.read_text(errors="replace"):
            return True
        if head.proc is not None and head.proc.poll() is not None:
            break
        time.sleep(1)
    head_died(head)
    return False


def program_output(stderr: str) -> str:
    """A traced run's stderr without the import trace."""
    lines = stderr.splitlines()
    return "\n".join(ln for ln in lines if not ln.startswith(("import time:", "MODULES ")))


# -- tracing --------------------------------------------------------------------------------------------
class _StubHandler(http.server.BaseHTTPRequestHandler):
    """An https dashboard stand-in: answers /api/version, accepts the submission, 404s the rest."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        data = json.dumps({"job_id": body.get("submission_id", "x")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path != "/api/version":
            self.send_error(404)
            return
        data = json.dumps({"version": "4", "ray_version": "2.60.0", "ray_commit": "x"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextlib.contextmanager
def tls_stub(workdir: Path) -> Iterator[tuple[int, Path]]:
    cert, key = workdir / "tls.crt", workdir / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    cert.chmod(0o644)
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _StubHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port, cert
    finally:
        server.shutdown()
        server.server_close()
        cert.unlink(missing_ok=True)
        key.unlink(missing_ok=True)


def trace_scenarios(head: RayHead, tls_port: int) -> list[tuple[str, list[str], dict[str, str]]]:
    """(name, submitter args, extra env) for every path the traced runs exercise."""
    sid = f"trace-{uuid.uuid4().hex[:8]}"
    ok = {"RAY_DASHBOARD_ADDRESS": f"localhost:{head.dashboard_port}", "RAY_AUTH_TOKEN": head.token}

    def job(suffix: str, **extra: str) -> dict[str, str]:
        return {**ok, "RAY_JOB_SUBMISSION_ID": sid + suffix, **extra}

    counter_env = '{"env_vars":{"counter_name":"test_counter"}}'
    https = f"https://localhost:{tls_port}"
    return [
        ("help", ["--help"], {}),
        ("bad-flag", ["--no-such-flag"], {}),
        ("missing-env", ["--", "echo", "x"], {}),
        ("bad-json", ["--runtime-env-json", "not json", "--", "echo"], job("")),
        ("submit", ["-v", "--runtime-env-json", counter_env, "--", SCENARIO_ONE], job("")),
        ("resubmit", ["--", "echo", "again"], job("")),
        ("failing", ["--fail-on-job-failure", "--", "echo boom; exit 3"], job("f")),
        ("wrong-token", ["--", "echo"], job("w", RAY_AUTH_TOKEN="wrong")),
        ("unreachable", ["--retry-timeout", "2", "--", "echo"],
         job("u", RAY_DASHBOARD_ADDRESS=f"localhost:{free_port()}")),
        ("https", ["--ca-bundle", "/run/tls.crt", "--retry-timeout", "3", "--", "echo"],
         job("s", RAY_DASHBOARD_ADDRESS=https)),
    ]  # fmt: skip


def cmd_trace(bh: Buildah, image: str, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with ray_head() as head, tls_stub(bh.secrets_dir) as (tls_port, cert), bh.container(image) as ctr:
        base_env = {
            "PYTHONPATH": "/opt/submitter/site.zip:/opt/submitter",
            "PYTHONUNBUFFERED": "1",
            "HOME": "/tmp",
        }
        for name, args, env in trace_scenarios(head, tls_port):
            argv = ["/usr/bin/python3.11", "-X", "importtime", "-c", RUN_AND_DUMP_MODULES, *args]
            res = bh.run(ctr, argv, env={**base_env, **env}, mounts=[(cert, "/run/tls.crt")], timeout=180)
            (out / f"{name}.log").write_text(res.stderr)
            print(f"  traced {name:12s} exit {res.rc}")
            if name == "submit" and res.rc != 0:
                print(res.stdout, program_output(res.stderr)[-3000:], sep="\n", file=sys.stderr)
                return HEAD_DIED if head_died(head) else 1
    return 0


# -- checking the final image ---------------------------------------------------------------------------
def expect(cond: bool, what: str, res: Result | None = None) -> bool:
    print(f"  {'ok  ' if cond else 'FAIL'} {what}")
    if not cond and res is not None:
        print(f"--- exit {res.rc}\n--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}")
    return cond


def check_rejections(bh: Buildah, ctr: str, entry: list[str], user: str, head: RayHead) -> bool:
    """A bad flag (exit 2) and a missing token (exit 3, HTTP 401, nothing submitted)."""
    res = bh.run(ctr, [*entry, "--no-such-flag"], user=user)
    good = expect(res.rc == 2 and res.stderr.startswith("ERROR -- "), "unknown flag: ERROR line, exit 2", res)
    sid = f"imgcheck-{uuid.uuid4().hex[:8]}"
    env = {"RAY_DASHBOARD_ADDRESS": f"localhost:{head.dashboard_port}", "RAY_JOB_SUBMISSION_ID": sid}
    res = bh.run(ctr, [*entry, "--", "echo", "x"], env=env, user=user)
    good &= expect(
        res.rc == 3 and "401" in res.stderr and "SUCC" not in res.stdout, "no token: 401, exit 3", res
    )
    good &= expect(head.get_job(sid).status_code == 404, "no token: nothing submitted")
    return good


def cmd_check(bh: Buildah, image: str) -> int:
    cfg = bh.config(image)
    entry = [str(a) for a in cfg.get("Entrypoint") or []]  # type: ignore[attr-defined]
    user = str(cfg.get("User") or "")
    good = expect(user == "65532:65532", f"image USER is 65532:65532 (got {user!r})")
    good &= expect(bool(entry), f"image ENTRYPOINT {entry}")
    with ray_head() as head, bh.container(image) as ctr:
        res = bh.run(ctr, [*entry, "--help"], user=user)
        print(f"  $ {' '.join(entry)} --help  (exit {res.rc}, {len(res.stdout.splitlines())} lines)")
        good &= expect(res.rc == 0 and "usage:" in res.stdout and "RAY_DASHBOARD_ADDRESS" in res.stdout,
                       "--help prints usage, exit 0", res)  # fmt: skip
        good &= expect(
            res.stderr.strip() == "", "--help writes nothing to stderr (no interpreter warnings)", res
        )
        good &= check_rejections(bh, ctr, entry, user, head)
        sid = f"imgcheck-{uuid.uuid4().hex[:8]}"
        env = {"RAY_DASHBOARD_ADDRESS": f"localhost:{head.dashboard_port}", "RAY_JOB_SUBMISSION_ID": sid,
               "RAY_AUTH_TOKEN": head.token}  # fmt: skip
        args = ["--runtime-env-json", '{"env_vars":{"counter_name":"test_counter"}}', "--", SCENARIO_ONE]
        res = bh.run(ctr, [*entry, *args], env=env, user=user)
        print(f"  $ {' '.join(entry)} --runtime-env-json ... -- <counter script>  (exit {res.rc})")
        for line in res.stdout.splitlines():
            print(f"    | {line}")
        lines = res.stdout.splitlines()
        counters = [ln for ln in lines if ln.startswith("test_counter got")]
        good &= expect(res.rc == 0, "submission exits 0", res)
        good &= expect(
            bool(lines) and lines[0] == f"SUCC -- Job '{sid}' submitted successfully", "first line: submitted"
        )
        good &= expect(counters == [f"test_counter got {i}" for i in range(1, 6)], "job log tailed: got 1..5")
        good &= expect(
            bool(lines) and lines[-1].startswith(f"SUCC -- Job '{sid}' succeeded"), "last line: succeeded"
        )
        job = head.wait_job_terminal(sid, timeout=120)
        runtime_env = job.get("runtime_env")
        env_vars = runtime_env.get("env_vars") if isinstance(runtime_env, dict) else None
        good &= expect(job["status"] == "SUCCEEDED", f"dashboard status {job['status']}")
        carried = isinstance(env_vars, dict) and env_vars.get("counter_name") == "test_counter"
        good &= expect(carried, "dashboard runtime_env carries counter_name")
        res = bh.run(ctr, [*entry, "--", "echo", "other"], env=env, user=user)
        lines = res.stdout.splitlines()
        good &= expect(res.rc == 0 and bool(lines) and "has already been submitted" in lines[0],
                       "re-run with the same id: already submitted, exit 0", res)  # fmt: skip
        good &= expect(
            sum(ln.startswith("test_counter got") for ln in lines) == 5, "re-run replays the full log"
        )
        good &= expect(
            sum(j.get("submission_id") == sid for j in head.list_jobs()) == 1, "exactly one job record"
        )
        if not good and head_died(head):
            return HEAD_DIED
    return 0 if good else 1


def main() -> int:
    p = argparse.ArgumentParser(
        description="Run the submitter inside a buildah image against a real Ray head."
    )
    p.add_argument("--storage", required=True, help="buildah global storage flags, one string")
    p.add_argument("--secrets-dir", type=Path, required=True, help="0700 directory for env files")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("trace")
    t.add_argument("image")
    t.add_argument("out", type=Path)
    c = sub.add_parser("check")
    c.add_argument("image")
    args = p.parse_args()
    args.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    bh = Buildah(args.storage.split(), args.secrets_dir)
    try:
        if args.cmd == "trace":
            return cmd_trace(bh, args.image, args.out)
        return cmd_check(bh, args.image)
    except HeadFailed as e:
        print(f"the Ray head failed (not the image): {e}", file=sys.stderr)
        return HEAD_DIED


if __name__ == "__main__":
    sys.exit(main())
