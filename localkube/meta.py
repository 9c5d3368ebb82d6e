"""Object-metadata helpers: timestamps, generated names, uids, dotted paths (name and label rules are in
`localkube/validation.py`)."""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime
from typing import Any

from rayside.objects import JSON

GEN_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


_rfc3339_cache: list[tuple[int, str]] = [(-(2**62), "")]


def rfc3339(ts: float) -> str:
    """`ts` as RFC 3339 UTC with second precision; the last second's text is reused (every write
    formats one or two timestamps, and strftime is slow)."""
    sec = int(ts // 1)
    cached = _rfc3339_cache[0]
    if cached[0] != sec:
        cached = _rfc3339_cache[0] = (sec, datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return cached[1]


def new_uid() -> str:
    """A random (version 4) UUID as text, without the cost of building a `uuid.UUID`."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generated_name(prefix: str, rng: random.Random) -> str:
    return prefix[:58] + "".join(rng.choice(GEN_ALPHABET) for _ in range(5))


def now() -> float:
    return time.time()


def get_path(obj: JSON, dotted: str) -> Any:
    cur: Any = obj
    for part in dotted.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def set_path(obj: JSON, dotted: str, value: Any) -> None:
    parts = dotted.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
