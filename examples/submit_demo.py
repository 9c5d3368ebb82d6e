"""The main job, end to end: a Ray job submitted by rayside's no-Ray submitter to a token-auth Ray head.

Starts an isolated Ray 2.60 head with token auth (free ports, its own temp dir and HOME), runs
`rayside submit` as a separate process (the token travels in its environment only, never in argv) for a
small job that prints a few lines, streams the submitter's output, stops the head and exits with the
submitter's exit code.

    python3 -m pip install -e '.[dev]' && python3 examples/submit_demo.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.rayhead import RayHead, new_head  # noqa: E402

JOB = (
    'python -c "import time\nfor i in range(1, 6): '
    "print(f'hello from the Ray job, step {i}/5', flush=True); time.sleep(0.5)\""
)


def rayside_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("rayside")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "rayside.cli"]


def start_head() -> RayHead:
    """A running head; `RayHead.start` retries on fresh ports if `ray start` dies on a busy machine."""
    head = new_head()
    print(f"demo: starting a token-auth Ray head (temp dir {head.temp_dir}) ...", flush=True)
    try:
        head.start(num_cpus=1)
    except (RuntimeError, TimeoutError) as exc:
        head.stop()
        shutil.rmtree(head.temp_dir.parent, ignore_errors=True)
        raise SystemExit(f"demo: could not start a Ray head: {str(exc).strip().splitlines()[-1]}") from exc
    return head


def main() -> int:
    head = start_head()
    try:
        sid = f"demo-{uuid.uuid4().hex[:8]}"
        env = head.client_env()
        env.update(RAY_DASHBOARD_ADDRESS=head.address, RAY_JOB_SUBMISSION_ID=sid, RAY_AUTH_TOKEN=head.token)
        cmd = [*rayside_cmd(), "submit", "--", JOB]
        print(f"demo: dashboard at {head.url}; running: rayside submit -- <job>  (id {sid})\n", flush=True)
        rc = subprocess.run(cmd, env=env, cwd=REPO, check=False).returncode
        print(f"\ndemo: the submitter exited with code {rc}", flush=True)
        return rc
    finally:
        print("demo: stopping the Ray head", flush=True)
        head.stop()
        shutil.rmtree(head.temp_dir.parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
