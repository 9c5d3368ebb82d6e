"""Object-metadata rules: names, labels, timestamps, generated names, uids."""

from __future__ import annotations

import os
import random
import re
import time
from datetime import UTC, datetime
from typing import Any

from localkube.errors import cause

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
Obj = dict[str, Any]
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


def name_causes(name: str, label: bool) -> list[dict[str, str]]:
    """Problems with metadata.name: DNS-1123 label (namespaces, services) or subdomain (most kinds)."""
    if not name:
        return [
            cause("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")
        ]
    if label:
        if len(name) > 63 or not DNS_LABEL.match(name):
            return [
                cause(
                    "FieldValueInvalid",
                    "metadata.name",
                    f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                    "alphanumeric "
                    "characters or '-', and must start and end with an alphanumeric character",
                )
            ]
        return []
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        return [
            cause(
                "FieldValueInvalid",
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        ]
    return []


def _key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(LABEL_NAME.match(name))


def label_causes(meta: dict[str, Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for field in ("labels", "annotations"):
        values = meta.get(field) or {}
        if not isinstance(values, dict):
            out.append(cause("FieldValueInvalid", f"metadata.{field}", "Invalid value: must be a map"))
            continue
        for key, value in values.items():
            if not _key_ok(str(key)):
                out.append(
                    cause("FieldValueInvalid", f"metadata.{field}", f'Invalid value: "{key}": invalid key')
                )
            elif field == "labels" and (
                not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value)
            ):
                out.append(
                    cause(
                        "FieldValueInvalid",
                        "metadata.labels",
                        f'Invalid value: "{value}": invalid label value',
                    )
                )
    return out


def now() -> float:
    return time.time()


def get_path(obj: Obj, dotted: str) -> Any:
    cur: Any = obj
    for part in dotted.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def set_path(obj: Obj, dotted: str, value: Any) -> None:
    parts = dotted.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
