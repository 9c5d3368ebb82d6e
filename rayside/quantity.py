"""Kubernetes resource quantities, exactly: the one parser and the one formatter every rayside process uses.

`parse_quantity("500m")` is `Decimal("0.5")`, `parse_quantity("1Gi")` is 1073741824, `"1e3"` is 1000; never
a float, so sums and comparisons that decide something (replica resources, PodGroup minResources,
`resourceFieldRef` values) are exact. `format_quantity` renders a Decimal back the way Kubernetes prints
it: integers plain (`"3"`), or with a binary suffix for byte counts (`"2Gi"`), fractions in the smallest
SI unit that makes them whole (`"1500m"`, `"250u"`). `format_number` is for places that want a plain
number, not a quantity (`ray start --num-gpus=0.5`). No I/O.
"""

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
_RE = re.compile(r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_BINARY = ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki")
_FRACTIONS = (("m", Decimal("1e3")), ("u", Decimal("1e6")), ("n", Decimal("1e9")))

Quantity = str | int | float | Decimal


class QuantityError(ValueError):
    """A value is not a Kubernetes quantity."""


def parse_quantity(value: Quantity) -> Decimal:
    """The exact value of a quantity (`"500m"` → 0.5, `"1Gi"` → 1073741824, `"1e3"` → 1000).

    Raises QuantityError (a ValueError) naming the value for anything else (`"abc"`, `"1.2.3"`, `""`,
    booleans)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _RE.match(str(value).strip())
    if not match or match.group(2) not in SUFFIXES:
        raise QuantityError(f"{value!r} is not a quantity (examples: 2, 500m, 1Gi)")
    try:
        return Decimal(match.group(1)) * SUFFIXES[match.group(2)]
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid decimals
        raise QuantityError(f"{value!r} is not a quantity") from exc


def quantity_or_zero(value: object) -> Decimal:
    """Like `parse_quantity`, but anything that is not a quantity counts as 0 (for arithmetic over pod
    templates that validation already accepted)."""
    try:
        return parse_quantity(value if isinstance(value, str | int | float | Decimal) else str(value))
    except QuantityError:
        return Decimal(0)


def ceil_int(value: Quantity) -> int:
    """Quantity rounded up to an integer (Kubernetes `Quantity.Value()`)."""
    return math.ceil(parse_quantity(value))


def _integral(value: Decimal) -> bool:
    return value == value.to_integral_value()


def format_quantity(value: Decimal, *, binary: bool = False) -> str:
    """The quantity text of `value`: whole numbers plain (with the largest exact binary suffix when
    `binary`, for byte counts: `"2Gi"`), fractions in the smallest SI unit that makes them whole
    (`"1500m"`, `"250u"`, `"3n"`), anything finer as a plain decimal."""
    if _integral(value):
        if binary and value:
            for suffix in _BINARY:
                unit = SUFFIXES[suffix]
                if value % unit == 0:
                    return f"{int(value / unit)}{suffix}"
        return str(int(value))
    for suffix, scale in _FRACTIONS:
        scaled = value * scale
        if _integral(scaled):
            return f"{int(scaled)}{suffix}"
    return format(value.normalize(), "f")


def format_number(value: Decimal) -> str:
    """A plain number (not a quantity), like Go's float formatting in JSON: `"2"`, `"0.5"`."""
    if _integral(value):
        return str(int(value))
    return format(value.normalize(), "f")
