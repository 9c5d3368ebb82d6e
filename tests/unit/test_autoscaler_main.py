"""`python -m autoscaler_provider` usage errors: one line on stderr, exit status 2."""

from __future__ import annotations

import pytest

from autoscaler_provider.__main__ import main


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "the following arguments are required: --cluster-name, --cluster-namespace"),
        (["--cluster-name", "rc"], "required: --cluster-namespace"),
        (["--cluster-name", " ", "--cluster-namespace", "ns"], "--cluster-name must not be empty"),
        (["--cluster-name", "rc", "--cluster-namespace", "ns", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv, run=lambda *_: pytest.fail("must not start"))
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("python -m autoscaler_provider: error: ") and needle in line
