"""`rayside submit` without a submission id makes one in Ray's form; a given id (flag or the operator's
RAY_JOB_SUBMISSION_ID) is used as before."""

from __future__ import annotations

import pytest

from rayside.cli import resolve
from submitter.settings import UsageError, new_submission_id, parse_settings, validate_submission_id


def test_new_ids_are_valid_and_distinct() -> None:
    ids = {new_submission_id() for _ in range(50)}
    assert len(ids) == 50
    for sid in ids:
        assert sid.startswith("raysubmit_") and len(sid) == 26
        assert validate_submission_id("generated", sid) == sid


def test_rayside_submit_goes_through_the_id_making_entry() -> None:
    assert resolve(["submit", "--", "python", "x.py"]) == (("submit",), "rayside.cli", "submit_main")


def test_the_pod_contract_still_requires_the_id() -> None:
    with pytest.raises(UsageError, match="missing RAY_JOB_SUBMISSION_ID"):
        parse_settings([], {"RAY_DASHBOARD_ADDRESS": "h:1"}, lambda _p: "")
