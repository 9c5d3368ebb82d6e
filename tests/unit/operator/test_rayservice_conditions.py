"""Serve's error messages as the RayService condition and Event show them (`conditions.error_summary`)."""

from __future__ import annotations

from ray_operator.rayservice.conditions import error_summary, failed_apps

TRACE = (
    "Deploying application app failed with exception:\n"
    "Traceback (most recent call last):\n"
    + '  File "/x/ray/serve/_private/api.py", line 10, in build\n    import_attr(path)\n' * 40
    + "AttributeError: module 'verapp' has no attribute 'missing'\n"
)


def test_a_traceback_keeps_its_preamble_and_the_exception() -> None:
    summary = error_summary(TRACE)
    assert summary == (
        "Deploying application app failed with exception: "
        "AttributeError: module 'verapp' has no attribute 'missing'"
    )


def test_plain_messages_are_put_on_one_line_and_cut() -> None:
    assert error_summary("  replica\n  failed  ") == "replica failed"
    long = error_summary("x" * 2000, limit=50)
    assert len(long) == 50 and long.endswith("...")


def test_failed_apps_name_status_and_the_summary() -> None:
    apps = {
        "app": {"status": "DEPLOY_FAILED", "message": TRACE},
        "ok": {"status": "RUNNING", "message": ""},
        "": {"status": "UNHEALTHY", "message": ""},
    }
    assert failed_apps(apps) == [
        "app: DEPLOY_FAILED: Deploying application app failed with exception: "
        "AttributeError: module 'verapp' has no attribute 'missing'",
        "default: UNHEALTHY",
    ]
