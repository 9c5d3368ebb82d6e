"""rayside.quantity: the one exact parser and formatter (operator, localkube kubelet)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rayside.quantity import QuantityError, ceil_int, format_number, format_quantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.5", Decimal("1.5")),
        ("100m", Decimal("0.1")),
        ("1Ki", Decimal(1024)),
        ("1e3", Decimal(1000)),
        ("2Gi", Decimal(2 * 1024**3)),
        ("250n", Decimal("2.5e-7")),
        (".5", Decimal("0.5")),
        (" 3 ", Decimal(3)),
        (7, Decimal(7)),
        (0.25, Decimal("0.25")),
    ],
)
def test_parse_is_exact(text: str | int | float, value: Decimal) -> None:
    assert parse_quantity(text) == value
    assert isinstance(parse_quantity(text), Decimal)


def test_sums_never_drift_like_floats() -> None:
    assert sum((parse_quantity("100m") for _ in range(3)), Decimal(0)) == parse_quantity("300m")


@pytest.mark.parametrize("junk", ["abc", "", "1.2.3", "1Xi", "Gi", "1 Gi", "--1", True])
def test_invalid_strings_are_rejected_with_the_value_named(junk: object) -> None:
    with pytest.raises(QuantityError, match="not a quantity"):
        parse_quantity(junk)  # type: ignore[arg-type]


def test_ceil_int_rounds_up() -> None:
    assert ceil_int("1500m") == 2 and ceil_int("1k") == 1000 and ceil_int("1.5") == 2


@pytest.mark.parametrize(
    ("value", "binary", "text"),
    [
        (Decimal(3), False, "3"),
        (Decimal("1.5"), False, "1500m"),
        (Decimal("0.1"), False, "100m"),
        (Decimal("0.00025"), False, "250u"),
        (Decimal(2 * 1024**3), True, "2Gi"),
        (Decimal(2 * 1024**3), False, str(2 * 1024**3)),
        (Decimal(1536), True, "1536"),  # 1.5Ki is not a whole number of Ki
        (Decimal(3 * 1024**2), True, "3Mi"),
        (Decimal(0), True, "0"),
    ],
)
def test_format_quantity(value: Decimal, binary: bool, text: str) -> None:
    assert format_quantity(value, binary=binary) == text
    assert parse_quantity(text) == value


def test_format_number_is_plain() -> None:
    assert format_number(Decimal("0.5")) == "0.5" and format_number(Decimal("2.0")) == "2"


def test_kubelet_resource_field_ref_is_exact() -> None:
    """The kubelet's `resourceFieldRef` uses the same parser: 9m CPU in units of 3m is 3 (floats said 4)."""
    from localkube.kubelet.podenv import EnvError, NodeResources, resource_value

    node = NodeResources(cpus=4, memory_bytes=8 * 2**30)
    limits = {"resources": {"limits": {"cpu": "9m"}}}
    assert resource_value(limits, {"resource": "limits.cpu", "divisor": "3m"}, node) == "3"
    limits = {"resources": {"limits": {"cpu": "1.1"}}}
    assert resource_value(limits, {"resource": "limits.cpu", "divisor": "100m"}, node) == "11"
    assert resource_value({}, {"resource": "limits.memory", "divisor": "1Mi"}, node) == "8192"
    with pytest.raises(EnvError, match="not a quantity"):
        resource_value({"resources": {"limits": {"cpu": "lots"}}}, {"resource": "limits.cpu"}, node)
