"""Sample KubeRay YAMLs and expected builder outputs for the operator unit tests, with their loaders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

GOLDEN = Path(__file__).parent
SAMPLES = sorted(p.name for p in GOLDEN.glob("ray*.yaml"))


def load(name: str) -> dict[str, Any]:
    """One YAML document under golden/ as a dict."""
    data = yaml.safe_load((GOLDEN / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data
