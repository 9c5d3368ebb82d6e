"""`rayside up`'s pure pieces of progress reporting: the operator's spec verdict and plain (non-TTY) lines."""

from __future__ import annotations

import io

from rayside.up.cli import spec_problem
from rayside.up.follow import Progress


def test_spec_problem_reads_the_operators_condition() -> None:
    bad = {"conditions": [{"type": "RayClusterSpecValid", "status": "False", "message": "both set"}]}
    assert spec_problem(bad) == "both set"
    assert spec_problem({"conditions": [{"type": "RayClusterSpecValid", "status": "True"}]}) is None
    assert spec_problem({}) is None


def test_plain_output_prints_each_new_state_once() -> None:
    out = io.StringIO()
    progress = Progress(out)
    for text in ("pods: none", "pods: none", "pods: 1 Running"):
        progress.update(text)
    progress.say("done")
    assert out.getvalue() == "rayside up: pods: none\nrayside up: pods: 1 Running\nrayside up: done\n"
