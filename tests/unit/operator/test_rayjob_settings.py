"""The RayJob controller's flags and env knobs in OperatorSettings."""

from __future__ import annotations

import pytest

from ray_operator.settings import DEFAULT_SUBMITTER_IMAGE, SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings([], environ={})
    assert settings.build.submitter_image == DEFAULT_SUBMITTER_IMAGE == "rayside/submitter"
    assert (settings.rayjob_transition_grace_seconds, settings.rayjob_status_check_timeout_seconds) == (
        300,
        300,
    )
    assert settings.rayjob_requeue_seconds == 3.0 and not settings.delete_rayjob_after_finish


def test_flags_and_env() -> None:
    environ = {
        "RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS": "30",
        "RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS": "60",
        "DELETE_RAYJOB_CR_AFTER_JOB_FINISHES": "true",
    }
    settings = load_settings(["--submitter-image", "reg/sub:1", "--rayjob-requeue-seconds", "0.5"], environ)
    assert settings.build.submitter_image == "reg/sub:1" and settings.rayjob_requeue_seconds == 0.5
    assert (settings.rayjob_transition_grace_seconds, settings.rayjob_status_check_timeout_seconds) == (
        30,
        60,
    )
    assert settings.delete_rayjob_after_finish
    assert (
        load_settings(["--submitter-image", ""], environ={}).build.submitter_image is None
    )  # KubeRay's script


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (
            [],
            {"RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS": "soon"},
            "RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS='soon' must be",
        ),
        ([], {"DELETE_RAYJOB_CR_AFTER_JOB_FINISHES": "maybe"}, "must be true or false"),
        (["--rayjob-requeue-seconds", "0"], {}, "--rayjob-requeue-seconds 0.0 must be greater than 0"),
    ],
)
def test_bad_values_are_one_line_errors(argv: list[str], environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")) as err:
        load_settings(argv, environ)
    assert "\n" not in str(err.value)
