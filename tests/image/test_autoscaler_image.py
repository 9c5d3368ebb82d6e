"""Opt-in: build images/autoscaler.Dockerfile with buildah and run the provider's command line in it.

It pulls the Ray base image (several GB), so CI skips it; run it with `RAYSIDE_IMAGE_TESTS=1 python -m pytest
tests/image/test_autoscaler_image.py -m image` as root with buildah installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TAG = "localhost/rayside/autoscaler:test"


@pytest.mark.image
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    os.environ.get("RAYSIDE_IMAGE_TESTS") != "1" or os.geteuid() != 0 or shutil.which("buildah") is None,
    reason="builds a container image as root with buildah; set RAYSIDE_IMAGE_TESTS=1 to run",
)
def test_autoscaler_image_builds_and_runs_the_provider() -> None:
    build = ["buildah", "bud", "-f", "images/autoscaler.Dockerfile", "-t", TAG, "."]
    assert subprocess.run(build, cwd=REPO, check=False, timeout=3000).returncode == 0
    box = subprocess.run(["buildah", "from", TAG], capture_output=True, text=True, check=True).stdout.strip()
    try:
        run = ["buildah", "run", box, "--", "python", "-m", "autoscaler_provider", "--help"]
        out = subprocess.run(run, capture_output=True, text=True, check=False, timeout=300)
        assert out.returncode == 0 and "--cluster-namespace" in out.stdout, out.stderr
        usage = ["buildah", "run", box, "--", "python", "-m", "autoscaler_provider"]
        bad = subprocess.run(usage, capture_output=True, text=True, check=False, timeout=300)
        assert bad.returncode == 2 and "--cluster-name" in bad.stderr
    finally:
        subprocess.run(["buildah", "rm", box], check=False, capture_output=True)
