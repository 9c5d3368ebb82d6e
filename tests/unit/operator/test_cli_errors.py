"""Every user error of `rayside operator`, `rayside crds` and `rayside get token` is one stderr line and the
documented exit code (docs/operator.md), never a traceback. Runs the real command in a subprocess; the only
"server" is a closed port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEAD_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    (tmp_path / "notes.txt").write_text("just some text\n")
    (tmp_path / "empty.kubeconfig").write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    (tmp_path / "dead.kubeconfig").write_text(DEAD_KUBECONFIG)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "emptydir").mkdir()
    return tmp_path


CASES: list[tuple[str, int, str]] = [
    ("operator --kubeconfig {d}/missing", 2, "rayside operator: --kubeconfig '{d}/missing' does not exist"),
    ("operator --kubeconfig {d}/notes.txt", 2, "not a kubeconfig"),
    ("operator --kubeconfig {d}/empty.kubeconfig", 2, "cannot be used"),
    ("operator --kubeconfig {d}/dead.kubeconfig --context nope", 2, "(context 'nope') cannot be used"),
    ("operator", 2, "no kubeconfig found"),
    ("operator --bogus", 2, "rayside operator: unrecognized arguments: --bogus"),
    ("operator --health-probe-bind-address nope", 2, "--health-probe-bind-address 'nope'"),
    ("crds --bogus", 2, "rayside crds: unrecognized arguments: --bogus"),
    ("crds --out {d}/afile/sub", 2, "rayside crds: --out '{d}/afile/sub': cannot write"),
    ("crds --check --out {d}/emptydir", 1, "stale CRDs in {d}/emptydir"),
    ("get token", 2, "rayside get token: the following arguments are required: name"),
    (
        "get token c --kubeconfig {d}/missing",
        2,
        "rayside get token: --kubeconfig '{d}/missing' does not exist",
    ),
    ("get token c --kubeconfig {d}/notes.txt", 2, "not a kubeconfig"),
    ("get token c --kubeconfig {d}/dead.kubeconfig", 1, "rayside get token: cannot talk to the API server"),
]


@pytest.mark.parametrize(("args", "code", "message"), CASES, ids=[c[0] for c in CASES])
def test_user_errors_are_one_line_and_the_documented_exit_code(
    files: Path, args: str, code: int, message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG" and not k.startswith("KUBERNETES_")}
    env["HOME"] = str(files / "home")  # no ~/.kube/config
    argv = [part.format(d=files) for part in args.split()]
    proc = subprocess.run(
        [sys.executable, "-m", "rayside.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=files,
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert message.format(d=files) in proc.stderr
    assert proc.stdout == ""
