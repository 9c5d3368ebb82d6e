"""Unit tests of submitter.settings: argv + env -> Settings, and every rejected input (no I/O)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from submitter.settings import (
    SIDECAR_DEFAULT_ADDRESS,
    Settings,
    UsageError,
    normalize_address,
    parse_settings,
    resolve_token,
    split_argv,
    validate_submission_id,
)

ENV = {"RAY_DASHBOARD_ADDRESS": "127.0.0.1:8265", "RAY_JOB_SUBMISSION_ID": "job-1"}


def no_files(path: str) -> str:
    raise FileNotFoundError(path)


def files(mapping: dict[str, str]) -> Callable[[str], str]:
    def read(path: str) -> str:
        if path in mapping:
            return mapping[path]
        raise FileNotFoundError(path)

    return read


def parse(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    return parse_settings(argv, ENV if env is None else env, no_files)


def test_defaults_and_go_compatible_join() -> None:
    s = parse(["--", "echo", "a  b"])
    assert s.base_url == "http://127.0.0.1:8265"
    assert s.job.entrypoint == "echo a  b"
    assert s.job.submission_id == "job-1"
    assert s.token is None and not s.no_wait and not s.fail_on_job_failure
    assert s.wait_timeout == 60.0


def test_one_argument_command_line_is_kept_verbatim() -> None:
    s = parse(["--", 'python -c "print(1)"'])
    assert s.job.entrypoint == 'python -c "print(1)"'


def test_shell_quote_option() -> None:
    assert parse(["--shell-quote", "--", "echo", "a  b"]).job.entrypoint == "echo 'a  b'"


def test_flags_may_follow_positionals_before_double_dash() -> None:
    s = parse(["echo", "--no-wait", "hi", "--", "--not-a-flag"])
    assert s.no_wait and s.job.entrypoint == "echo hi --not-a-flag"


def test_no_entrypoint_is_empty_string() -> None:
    assert parse([]).job.entrypoint == ""


def test_all_fields() -> None:
    s = parse(
        [
            "--runtime-env-json", '{"env_vars": {"A": "1"}}',
            "--metadata-json", '{"owner": "a"}',
            "--entrypoint-resources", '{"custom": 2, "x": 0.25}',
            "--entrypoint-num-cpus", "0.5",
            "--entrypoint-num-gpus", "1",
            "--entrypoint-memory", "1073741824",
            "--entrypoint-label-selector", '{"zone": "a"}',
            "--", "python", "x.py",
        ]
    )  # fmt: skip
    assert s.job.runtime_env == {"env_vars": {"A": "1"}}
    assert s.job.metadata == {"owner": "a"}
    assert s.job.entrypoint_resources == {"custom": 2, "x": 0.25}
    assert (s.job.entrypoint_num_cpus, s.job.entrypoint_num_gpus, s.job.entrypoint_memory) == (
        0.5,
        1.0,
        2**30,
    )
    assert s.job.entrypoint_label_selector == {"zone": "a"}


def test_flags_override_env() -> None:
    s = parse(["--address", "https://ray.example:443/proxy/", "--submission-id", "other"])
    assert s.base_url == "https://ray.example:443/proxy"
    assert s.job.submission_id == "other"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAY_JOB_SUBMISSION_ID": "x"}, "missing RAY_DASHBOARD_ADDRESS in environment variables"),
        ({"RAY_DASHBOARD_ADDRESS": "h:1"}, "missing RAY_JOB_SUBMISSION_ID in environment variables"),
        ({}, "missing RAY_DASHBOARD_ADDRESS in environment variables"),
        ({"RAY_DASHBOARD_ADDRESS": "", "RAY_JOB_SUBMISSION_ID": "x"}, "missing RAY_DASHBOARD_ADDRESS"),
    ],
)
def test_missing_env(env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse([], env)


def test_sidecar_defaults() -> None:
    s = parse(["--sidecar"], {"RAY_JOB_SUBMISSION_ID": "x", "RAY_DASHBOARD_ADDRESS": ""})
    assert s.base_url == SIDECAR_DEFAULT_ADDRESS
    assert s.wait_timeout is None
    assert parse(["--sidecar", "--wait-timeout", "30"]).wait_timeout == 30.0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--runtime-env-json", "not json"], "--runtime-env-json: not valid JSON"),
        (["--runtime-env-json", "[1]"], "--runtime-env-json: got a JSON list"),
        (["--metadata-json", '{"a": 1}'], "--metadata-json: value of 'a' is 1"),
        (
            ["--entrypoint-resources", '{"cpu": "Intentionally wrong value"}'],
            "--entrypoint-resources: value of",
        ),
        (["--entrypoint-resources", '{"cpu": true}'], "--entrypoint-resources: value of 'cpu' is true"),
        (["--entrypoint-resources", '{"cpu": -1}'], "--entrypoint-resources"),
        (["--entrypoint-label-selector", '{"a": ["b"]}'], "--entrypoint-label-selector"),
        (["--entrypoint-num-cpus", "abc"], "--entrypoint-num-cpus: 'abc' is not a non-negative number"),
        (["--entrypoint-num-gpus", "-1"], "--entrypoint-num-gpus: '-1' is out of range"),
        (["--entrypoint-num-cpus", "nan"], "out of range"),
        (["--entrypoint-memory", "1.5"], "--entrypoint-memory: '1.5' is not a non-negative integer"),
        (["--submission-id", "a/b"], "--submission-id: 'a/b' is not a valid submission id"),
        (["--submission-id", ".."], "not a valid submission id"),
        (["--address", "ftp://h:1"], "--address: 'ftp://h:1' is not a valid address"),
        (["--address", "h:notaport"], "--address"),
        (["--address", "http://user:pw@h:1"], "credentials"),
        (["--request-timeout", "0"], "--request-timeout"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_input_is_one_clear_line(argv: list[str], needle: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(argv)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_json_flags_mean_absent() -> None:
    s = parse(["--runtime-env-json", "", "--metadata-json", " "])
    assert s.job.runtime_env is None and s.job.metadata is None


def test_bad_env_submission_id_names_the_variable() -> None:
    with pytest.raises(UsageError, match="RAY_JOB_SUBMISSION_ID: 'a b'"):
        parse([], {"RAY_DASHBOARD_ADDRESS": "h:1", "RAY_JOB_SUBMISSION_ID": "a b"})


@pytest.mark.parametrize("sid", ["raysubmit_abc123", "rayjob-sample-x7k2p", "a", "A.b:c@d+e=f~g-h_i"])
def test_valid_ids(sid: str) -> None:
    assert validate_submission_id("x", sid) == sid


def test_id_length_limit() -> None:
    validate_submission_id("x", "a" * 255)
    with pytest.raises(UsageError):
        validate_submission_id("x", "a" * 256)


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("127.0.0.1:8265", "http://127.0.0.1:8265"),
        ("http://127.0.0.1:8265/", "http://127.0.0.1:8265"),
        ("https://h:8443", "https://h:8443"),
        (" svc.ns.svc.cluster.local:8265 ", "http://svc.ns.svc.cluster.local:8265"),
        (
            "http://h/api/v1/namespaces/n/services/s:8265/proxy/",
            "http://h/api/v1/namespaces/n/services/s:8265/proxy",
        ),
        ("[::1]:8265", "http://[::1]:8265"),
    ],
)
def test_normalize_address(raw: str, url: str) -> None:
    assert normalize_address("x", raw) == url


class TestToken:
    def test_env_first(self) -> None:
        env = {"RAY_AUTH_TOKEN": " t1 ", "RAY_AUTH_TOKEN_PATH": "/p", "HOME": "/h"}
        assert resolve_token(env, files({"/p": "t2", "/h/.ray/auth_token": "t3"})) == "t1"

    def test_path_second_first_line(self) -> None:
        env = {"RAY_AUTH_TOKEN_PATH": "/p", "HOME": "/h"}
        assert resolve_token(env, files({"/p": "t2\nignored\n", "/h/.ray/auth_token": "t3"})) == "t2"

    def test_home_file_third(self) -> None:
        assert resolve_token({"HOME": "/h"}, files({"/h/.ray/auth_token": "t3\n"})) == "t3"

    def test_none(self) -> None:
        assert resolve_token({"HOME": "/h"}, no_files) is None

    def test_missing_path_file_is_an_error(self) -> None:
        with pytest.raises(UsageError, match="RAY_AUTH_TOKEN_PATH: '/p' is missing"):
            resolve_token({"RAY_AUTH_TOKEN_PATH": "/p"}, no_files)

    def test_token_with_control_characters_rejected_without_echo(self) -> None:
        with pytest.raises(UsageError) as info:
            resolve_token({"HOME": "/h"}, files({"/h/.ray/auth_token": "sec\x07ret"}))
        assert "sec" not in str(info.value)

    def test_token_not_in_repr(self) -> None:
        s = parse_settings([], {**ENV, "RAY_AUTH_TOKEN": "s3cr3t"}, no_files)
        assert s.token == "s3cr3t" and "s3cr3t" not in repr(s)


def test_split_argv() -> None:
    assert split_argv(["--no-wait", "--", "a", "--", "b"]) == (["--no-wait"], ["a", "--", "b"])
    assert split_argv(["x"]) == (["x"], [])
