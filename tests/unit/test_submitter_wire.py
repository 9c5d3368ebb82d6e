"""Unit tests of submitter.wire: URLs, request body, response classification, log de-duplication, the
final line and exit codes (pure functions, no I/O)."""

from __future__ import annotations

import pytest

from submitter import wire
from submitter.wire import ExitCode, JobRequest, LogCursor, SubmitVerdict


def test_urls_percent_encode_the_id() -> None:
    base = "http://h:1"
    assert wire.submit_url(base) == "http://h:1/api/jobs/"
    assert wire.job_url(base, "a:b@c+d") == "http://h:1/api/jobs/a%3Ab%40c%2Bd"
    assert wire.logs_url(base, "j") == "http://h:1/api/jobs/j/logs"
    assert wire.tail_url(base, "j") == "ws://h:1/api/jobs/j/logs/tail"
    assert wire.tail_url("https://h/p", "j") == "wss://h/p/api/jobs/j/logs/tail"


def test_auth_header_is_x_ray_authorization() -> None:
    assert wire.auth_headers("T") == {"X-Ray-Authorization": "Bearer T"}
    assert wire.auth_headers(None) == {}


def test_minimal_body_matches_go_omitempty() -> None:
    body = wire.submit_body(JobRequest(entrypoint="python x.py", submission_id="s", metadata={"owner": "a"},
                                       entrypoint_num_cpus=0.5))  # fmt: skip
    assert body == {"entrypoint": "python x.py", "submission_id": "s", "metadata": {"owner": "a"},
                    "entrypoint_num_cpus": 0.5}  # fmt: skip


def test_full_body() -> None:
    req = JobRequest(
        entrypoint="",
        submission_id="s",
        runtime_env={"pip": ["x"]},
        entrypoint_resources={"c": 2.0, "d": 0.25},
        entrypoint_num_cpus=2.0,
        entrypoint_num_gpus=1.5,
        entrypoint_memory=100,
        entrypoint_label_selector={"z": "a"},
    )
    body = wire.submit_body(req)
    assert body["entrypoint"] == ""
    assert body["entrypoint_resources"] == {"c": 2, "d": 0.25}
    assert isinstance(body["entrypoint_num_cpus"], int) and body["entrypoint_num_cpus"] == 2
    assert body["entrypoint_num_gpus"] == 1.5
    assert body["entrypoint_memory"] == 100 and body["entrypoint_label_selector"] == {"z": "a"}
    assert body["runtime_env"] == {"pip": ["x"]}


def test_large_resource_values_keep_precision() -> None:
    body = wire.submit_body(
        JobRequest(entrypoint="", submission_id="s", entrypoint_resources={"r": 16777217})
    )
    assert body["entrypoint_resources"] == {"r": 16777217}  # float32 would give 16777216


DUP_500 = (
    "Traceback...\nValueError: Job with submission_id x already exists. Please use a different submission_id."
)


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, "{}", SubmitVerdict.CREATED),
        (500, DUP_500, SubmitVerdict.MAYBE_DUPLICATE),
        (409, "", SubmitVerdict.MAYBE_DUPLICATE),
        (400, "Job with submission_id x already exists", SubmitVerdict.MAYBE_DUPLICATE),
        (401, "Unauthorized: Missing authentication token", SubmitVerdict.AUTH),
        (403, "Forbidden: Invalid authentication token", SubmitVerdict.AUTH),
        (400, "TypeError: bad", SubmitVerdict.REJECTED),
        (404, "", SubmitVerdict.REJECTED),
        (405, "", SubmitVerdict.REJECTED),
        (500, "No available agent to submit job, please try again later.", SubmitVerdict.RETRY),
        (502, "", SubmitVerdict.RETRY),
        (503, "", SubmitVerdict.RETRY),
        (429, "", SubmitVerdict.RETRY),
    ],
)
def test_classify_submit(status: int, body: str, verdict: SubmitVerdict) -> None:
    assert wire.classify_submit(status, body) is verdict


def test_last_line_and_auth_messages() -> None:
    assert wire.last_line("a\n  b  \n\n") == "b"
    assert wire.last_line("") == "(empty body)"
    assert len(wire.last_line("x" * 1000)) == 300
    assert "401" in wire.auth_message(401, "u") and "none was sent" in wire.auth_message(401, "u")
    assert "403" in wire.auth_message(403, "u") and "wrong token" in wire.auth_message(403, "u")


def test_retry_delay_is_bounded_exponential() -> None:
    assert [wire.retry_delay(i) for i in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


class TestLogCursor:
    def test_first_stream_passes_through(self) -> None:
        c = LogCursor()
        assert [c.feed(x) for x in ("ab", "cd\n", "e")] == ["ab", "cd\n", "e"]
        assert c.written == 6

    def test_replay_is_skipped_and_only_new_text_printed(self) -> None:
        c = LogCursor()
        c.feed("line 0\nline 1\nli")  # dropped mid-line
        c.restart()
        # the new connection replays everything, batched differently
        assert c.feed("line 0\n") == ""
        assert c.feed("line 1\nline 2\n") == "ne 2\n"
        assert c.feed("line 3\n") == "line 3\n"

    def test_replay_shorter_than_written_prints_nothing(self) -> None:
        c = LogCursor()
        c.feed("abcdef")
        c.restart()
        assert c.feed("abc") == ""
        assert c.feed("def") == ""
        assert c.feed("g") == "g"

    def test_polling_whole_log(self) -> None:
        c = LogCursor()
        c.feed("ab")  # from the websocket
        assert c.feed_whole_log("abcd") == "cd"
        assert c.feed_whole_log("abcd") == ""
        assert c.feed_whole_log("abcdef") == "ef"

    def test_concatenation_equals_the_log(self) -> None:
        log = "".join(f"tick {i}\n" for i in range(50))
        c, out = LogCursor(), []
        for cut in (37, 120, 121, 300, len(log)):
            c.restart()
            for start in range(0, cut, 13):
                out.append(c.feed(log[start : min(cut, start + 13)]))
        assert "".join(out) == log


def test_close_code() -> None:
    assert wire.close_code(b"\x03\xe8") == 1000
    assert wire.close_code(b"\x03\xf3bye") == 1011
    assert wire.close_code(b"") == 1005


@pytest.mark.parametrize(
    ("job", "line"),
    [
        ({"status": "SUCCEEDED", "message": "Job finished successfully."}, "SUCC -- Job 'j' succeeded"),
        (
            {
                "status": "FAILED",
                "error_type": "JOB_ENTRYPOINT_COMMAND_ERROR",
                "message": "Job entrypoint command failed with exit code 3, last available logs "
                "(truncated to 20,000 chars):\nboom\n",
            },
            "FAIL -- Job 'j' failed [JOB_ENTRYPOINT_COMMAND_ERROR]: Job entrypoint command failed with exit "
            "code 3, last available logs (truncated to 20,000 chars)",
        ),
        ({"status": "FAILED", "message": None}, "FAIL -- Job 'j' failed: no message"),
        (
            {"status": "STOPPED", "message": "Job was intentionally stopped."},
            "INFO -- Job 'j' was stopped: Job was intentionally stopped.",
        ),
    ],
)
def test_final_line(job: dict[str, object], line: str) -> None:
    assert wire.final_line("j", job) == line


@pytest.mark.parametrize(
    ("status", "strict", "code"),
    [
        ("SUCCEEDED", False, ExitCode.OK),
        ("FAILED", False, ExitCode.OK),
        ("STOPPED", False, ExitCode.OK),
        ("SUCCEEDED", True, ExitCode.OK),
        ("FAILED", True, ExitCode.FAILURE),
        ("STOPPED", True, ExitCode.OK),
        ("RUNNING", False, ExitCode.FAILURE),
    ],
)
def test_exit_code_for(status: str, strict: bool, code: ExitCode) -> None:
    assert wire.exit_code_for({"status": status}, strict) is code


def test_exit_codes_are_distinct() -> None:
    codes = [ExitCode.FAILURE, ExitCode.USAGE, ExitCode.AUTH, ExitCode.UNREACHABLE]
    assert len(set(codes)) == len(codes) and int(ExitCode.OK) == 0
