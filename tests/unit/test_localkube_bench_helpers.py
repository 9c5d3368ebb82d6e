"""Pure helpers of benchmarks/localkube_throughput.py (percentiles, work split, result table)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "localkube_throughput.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("localkube_throughput", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["localkube_throughput"] = module
    spec.loader.exec_module(module)
    return module


def test_percentile(bench: ModuleType) -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 50) == 50.0
    assert bench.percentile(values, 99) == 99.0
    assert bench.percentile(values, 100) == 100.0
    assert bench.percentile([], 99) == 0.0
    assert bench.percentile([7.0], 1) == 7.0


def test_split(bench: ModuleType) -> None:
    assert bench.split(10, 3) == [4, 3, 3]
    assert bench.split(2, 4) == [1, 1]
    assert sum(bench.split(10_000, 7)) == 10_000


def test_format_table_has_ratio_column(bench: ModuleType) -> None:
    m = bench.Metric("creates/s", "", True, {"off": 1000.0, "on": 500.0})
    missing = bench.Metric("rss", "MiB", False, {"off": 10.0})
    lines = bench.format_table([m, missing], ["off", "on"]).splitlines()
    assert lines[0].split() == ["metric", "off", "on", "on/off"]
    assert lines[2].split() == ["creates/s", "1,000.0", "500.0", "0.50x"]
    assert lines[3].split() == ["rss", "[MiB]", "10.0", "-", "-"]


def test_bad_arguments_exit_2(bench: ModuleType) -> None:
    with pytest.raises(SystemExit) as err:
        bench.parse_args(["--pods", "0"])
    assert err.value.code == 2
