"""Kubernetes resource quantities: parse `500m`, `2Gi`, `1e3` into exact Decimals (no I/O)."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_RE = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


class QuantityError(ValueError):
    """A value is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a quantity (`"500m"` → 0.5, `"1Gi"` → 1073741824)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _RE.match(value.strip())
    if not match or match.group(2) not in SUFFIXES:
        raise QuantityError(f"{value!r} is not a quantity (examples: 2, 500m, 1Gi)")
    try:
        return Decimal(match.group(1)) * SUFFIXES[match.group(2)]
    except InvalidOperation as exc:
        raise QuantityError(f"{value!r} is not a quantity") from exc


def quantity_or_zero(value: object) -> Decimal:
    """Like `parse_quantity`, but anything that is not a quantity counts as 0 (for status arithmetic over
    pod templates the API server already accepted)."""
    try:
        return parse_quantity(value if isinstance(value, str | int | float) else str(value))
    except QuantityError:
        return Decimal(0)


def ceil_int(value: str | int | float) -> int:
    """Quantity rounded up to an integer (Kubernetes `Quantity.Value()`)."""
    return math.ceil(parse_quantity(value))


def format_number(value: Decimal) -> str:
    """Render like Go's float formatting in JSON: integral values without a fraction."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")
