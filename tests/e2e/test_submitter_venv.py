"""The submitter installed alone: a fresh virtualenv with only the `submitter` extra (no ray, kubernetes
or pydantic installed), `--help` through both entry points, and a real submission to the session head
through `rayside submit`, asserting at exit that none of those packages was imported.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.rayhead import RayHead

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("ray", "kubernetes", "pydantic")
PROJECT_FILES = ("pyproject.toml", "README.md", "rayside", "submitter", "localkube", "autoscaler_provider")
PROJECT_FILES += ("operator", "ray_operator")

# Runs `rayside submit ARGS` in-process, then fails (exit 99) if a forbidden package was imported.
WRAPPER = """
import sys
from rayside.cli import main
rc = main(["submit", *sys.argv[1:]])
import submitter
bad = [m for m in {forbidden!r} if m in sys.modules]
print("SUBMITTER-FROM", submitter.__file__, file=sys.stderr)
if bad:
    print("IMPORTED", bad, file=sys.stderr)
    sys.exit(99)
sys.exit(rc)
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("submitter-venv")
    src = root / "src"  # a clean copy: building in the shared checkout would leave build/ behind
    src.mkdir()
    for name in PROJECT_FILES:
        path = REPO / name
        if path.is_symlink():
            (src / name).symlink_to(path.readlink())
        elif path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif path.exists():
            shutil.copy2(path, src / name)
    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    py = env_dir / "bin" / "python"
    res = subprocess.run(  # the runner's pip installs into the bare venv (no ensurepip: faster)
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", f"{src}[submitter]"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=root,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return env_dir


def test_forbidden_packages_are_not_installed(venv: Path) -> None:
    code = f"import importlib.util; print([m for m in {FORBIDDEN!r} if importlib.util.find_spec(m)])"
    res = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=venv, check=True
    )
    assert res.stdout.strip() == "[]"


def test_help_through_both_entry_points(venv: Path) -> None:
    for cmd in (
        [str(venv / "bin" / "rayside"), "submit", "--help"],
        [str(venv / "bin" / "python"), "-m", "submitter", "-h"],
    ):
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=venv, timeout=60, check=False)
        assert res.returncode == 0, res.stderr
        assert "exit codes:" in res.stdout and "RAY_DASHBOARD_ADDRESS" in res.stdout


def test_real_submission_without_ray_imports(venv: Path, ray_head: RayHead) -> None:
    sid = f"rs-venv-{uuid.uuid4().hex[:10]}"
    env = ray_head.client_env()
    env.update(
        RAY_DASHBOARD_ADDRESS=ray_head.address, RAY_JOB_SUBMISSION_ID=sid, RAY_AUTH_TOKEN=ray_head.token
    )
    env.pop("PYTHONPATH", None)
    script = WRAPPER.format(forbidden=FORBIDDEN)
    res = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, "--", "echo", "from-venv"],
        env=env,
        cwd=venv,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "from-venv" in res.stdout.splitlines()
    assert res.stdout.splitlines()[-1] == f"SUCC -- Job '{sid}' succeeded"
    assert str(venv) in res.stderr  # the installed copy ran, not the checkout
    assert ray_head.get_job(sid).json()["status"] == "SUCCEEDED"
