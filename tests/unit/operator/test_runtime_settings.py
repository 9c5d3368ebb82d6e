"""Operator settings/flags parsing and the RayCluster event predicate (pure; no I/O)."""

from __future__ import annotations

import pytest

from ray_operator.cli import main
from ray_operator.raycluster.assembly import spec_or_meta_changed
from ray_operator.settings import SettingsError, load_settings


def test_defaults_and_flags() -> None:
    s = load_settings([], environ={})
    assert s.namespaces == () and s.reconcile_concurrency == 1 and s.kube_qps == 100.0 and s.kube_burst == 200
    assert s.requeue_seconds == 300.0 and not s.leader_elect and s.build.batch_scheduler is None
    s = load_settings(
        ["--namespace", "a,b", "--namespace", "c", "--reconcile-concurrency", "4", "--kube-qps", "50",
         "--kube-burst", "60", "--feature-gates", "RayMultiHostIndexing=false",
         "--batch-scheduler", "volcano", "--leader-elect"],
        environ={"RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV": "30", "ENABLE_RANDOM_POD_DELETE": "true",
                 "CLUSTER_DOMAIN": "k.local", "POD_NAMESPACE": "ops", "POD_NAME": "op-0"},
    )  # fmt: skip
    assert s.namespaces == ("a", "b", "c") and s.reconcile_concurrency == 4
    assert (s.kube_qps, s.kube_burst) == (50.0, 60)
    assert not s.gates.enabled("RayMultiHostIndexing") and s.build.batch_scheduler == "volcano"
    assert s.leader_elect and s.leader_election_namespace == "ops" and s.identity == "op-0"
    assert s.requeue_seconds == 30.0 and s.enable_random_pod_delete and s.build.cluster_domain == "k.local"


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        (["--kube-qps", "0"], {}, "--kube-qps 0.0 must be greater than 0"),
        (["--reconcile-concurrency", "x"], {}, "invalid int value"),
        (["--batch-scheduler", "slurm"], {}, "--batch-scheduler 'slurm' is not supported"),
        (["--feature-gates", "Nope=true"], {}, "unknown gate 'Nope'"),
        ([], {"ENABLE_RANDOM_POD_DELETE": "maybe"}, "ENABLE_RANDOM_POD_DELETE='maybe' must be true or false"),
        ([], {"RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV": "soon"}, "must be a number"),
    ],
)
def test_bad_input_is_one_clear_line(argv: list[str], env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(argv, environ=env)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_cli_usage_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--kube-burst", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rayside operator: --kube-burst -1") and err.count("\n") == 1


def test_status_only_updates_do_not_trigger() -> None:
    old = {"metadata": {"generation": 1, "labels": {"a": "1"}}, "status": {"state": ""}}
    assert not spec_or_meta_changed(old, {**old, "status": {"state": "ready"}})
    assert spec_or_meta_changed(old, {"metadata": {"generation": 2, "labels": {"a": "1"}}})
    assert spec_or_meta_changed(old, {"metadata": {"generation": 1, "labels": {"a": "2"}}})
    assert spec_or_meta_changed(None, old) and spec_or_meta_changed(old, None)
