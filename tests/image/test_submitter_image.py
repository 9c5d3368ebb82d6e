"""Opt-in: build the submitter image with buildah and run it against a real Ray head.

Slow (several minutes) and needs root, so CI skips it; run it with `RAYSIDE_IMAGE_TESTS=1 python -m pytest
tests/image -m image`, or directly with `bash images/check_submitter_image.sh` (see docs/images.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.image
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    os.environ.get("RAYSIDE_IMAGE_TESTS") != "1" or os.geteuid() != 0 or shutil.which("buildah") is None,
    reason="builds a container image as root with buildah; set RAYSIDE_IMAGE_TESTS=1 to run",
)
def test_submitter_image_builds_and_runs_a_real_submission() -> None:
    proc = subprocess.run(
        ["bash", str(REPO / "images/check_submitter_image.sh")], cwd=REPO, check=False, timeout=3500
    )
    assert proc.returncode == 0
