"""Feature gates (`--feature-gates`), BuildSettings defaults, names and quantities."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ray_operator.builders import BuildSettings, names
from ray_operator.features import FeatureGateError, FeatureGates
from rayside.quantity import QuantityError, ceil_int, parse_quantity


def test_gate_defaults_follow_kuberay_head() -> None:
    gates = FeatureGates()
    assert gates.enabled("RayClusterStatusConditions") and gates.enabled("RayJobDeletionPolicy")
    assert gates.enabled("RayMultiHostIndexing") and gates.enabled("RayServiceIncrementalUpgrade")
    assert not gates.enabled("RayCronJob") and not gates.enabled("SidecarSubmitterRestart")
    old = FeatureGates.v1_5()
    assert not old.enabled("RayMultiHostIndexing") and old.enabled("RayClusterStatusConditions")


def test_parse_feature_gates() -> None:
    gates = FeatureGates.parse(" RayMultiHostIndexing=false, RayCronJob=TRUE ,")
    assert not gates.enabled("RayMultiHostIndexing") and gates.enabled("RayCronJob")
    assert FeatureGates.parse("") == FeatureGates.parse(" ")
    with pytest.raises(FeatureGateError, match="unknown gate 'Nope'"):
        FeatureGates.parse("Nope=true")
    with pytest.raises(FeatureGateError, match="must be Name=true or Name=false"):
        FeatureGates.parse("RayCronJob=yes")


def test_settings_are_frozen_with_login_shell_option() -> None:
    settings = BuildSettings()
    assert settings.shell() == ["/bin/bash", "-c", "--"]
    assert BuildSettings(enable_login_shell=True).shell() == ["/bin/bash", "-cl", "--"]
    with pytest.raises(AttributeError):
        settings.cluster_domain = "x"  # type: ignore[misc]


def test_names() -> None:
    assert names.check_name("1abc") == "rabc" and names.check_name("-x") == "rx"
    long = "a" * 60
    assert names.check_name(long) == "a" * 50
    assert names.head_pod_prefix("RC") == "rc-head-"
    assert names.worker_pod_prefix("c" * 45, "group") == ("c" * 45 + "-grou")[:50] + "-worker-"
    assert names.fqdn("rc-head-svc", "ns", "cluster.local") == "rc-head-svc.ns.svc.cluster.local"
    assert set(names.RAND_ALPHABET) == set("bcdfghjklmnpqrstvwxz2456789")


def test_quantities() -> None:
    assert parse_quantity("500m") == Decimal("0.5")
    assert parse_quantity("2Gi") == 2 * 1024**3
    assert parse_quantity(3) == 3 and parse_quantity("1e3") == 1000
    assert ceil_int("1500m") == 2 and ceil_int("1k") == 1000
    with pytest.raises(QuantityError, match="'abc' is not a quantity"):
        parse_quantity("abc")
