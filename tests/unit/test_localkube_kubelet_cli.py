"""Pure parts of the kubelet process: flag parsing and validation, and the child command line of `serve`."""

from __future__ import annotations

from pathlib import Path

import pytest

from localkube.kubelet.child import ChildError, kubelet_command
from localkube.kubelet.cli import DEFAULT_KUBECONFIG, UsageError, parse_settings


def test_defaults() -> None:
    cfg = parse_settings([])
    assert cfg.kubeconfig == DEFAULT_KUBECONFIG and cfg.mode == "simulated" and cfg.node_name == "localkube"
    assert (cfg.qps, cfg.burst, cfg.ready_delay, cfg.state_dir) == (1000.0, 2000, None, None)
    assert cfg.kubelet_options() == {}


def test_flags() -> None:
    argv = ["--kubeconfig", "/k", "--mode", "process", "--node-name", "n-1.x", "--ready-delay", "0.25"]
    cfg = parse_settings([*argv, "--qps", "5.5", "--burst", "7", "--state-dir", "/s", "-v"])
    assert (cfg.kubeconfig, cfg.mode, cfg.node_name) == (Path("/k"), "process", "n-1.x")
    assert (cfg.qps, cfg.burst) == (5.5, 7)
    assert cfg.state_dir == Path("/s") and cfg.verbose and cfg.kubelet_options() == {"ready_delay": 0.25}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mode", "vm"], "--mode 'vm': not allowed (use 'simulated' or 'process')"),
        (["--ready-delay", "-0.5"], "--ready-delay '-0.5': must be >= 0"),
        (["--ready-delay", "nan"], "--ready-delay 'nan': must be >= 0"),
        (["--qps", "0"], "--qps '0': must be >= 0.001"),
        (["--burst", "1.5"], "--burst '1.5': must be an integer >= 1"),
        (
            ["--node-name", "Node_1"],
            "--node-name 'Node_1': must be a lowercase RFC 1123 subdomain (e.g. 'node-1')",
        ),
        (["--what"], "unrecognized arguments: --what"),
    ],
)
def test_bad_values_name_the_flag_and_value(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_settings(argv)
    assert str(info.value) == message


def test_child_command_passes_the_supported_options_as_flags() -> None:
    cmd = kubelet_command(Path("/kc"), "simulated", Path("/st"), {"ready_delay": 0.1, "node_name": "n1"})
    assert cmd[1:] == [
        "-m", "localkube.kubelet", "--kubeconfig", "/kc", "--mode", "simulated", "--state-dir", "/st",
        "--exit-with-parent", "--node-name", "n1", "--ready-delay", "0.1",
    ]  # fmt: skip


def test_child_command_rejects_options_without_a_flag() -> None:
    with pytest.raises(ChildError, match="network"):
        kubelet_command(Path("/kc"), "process", Path("/st"), {"network": "host"})
