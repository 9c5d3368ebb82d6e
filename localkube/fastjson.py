"""JSON encoding and decoding for the hot paths (request bodies, responses, watch events, object copies):
orjson when it is installed, else the standard library, with identical results for Kubernetes objects.

orjson is several times faster; where it refuses a value the standard library accepts (integers beyond
64 bits, non-string keys, the non-standard NaN/Infinity literals) the call falls back to `json`, so
behaviour, accepted input and error messages stay those of the standard library.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is part of the localkube extra
    orjson = None  # type: ignore[assignment]

_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)  # bodies are JSON trees


def dumps(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:
            pass
    return _ENCODER.encode(value).encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON; invalid input raises the standard library's `json.JSONDecodeError` (a ValueError)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def clone(value: Any) -> Any:
    """A deep copy of JSON data (a round trip, faster than copy.deepcopy)."""
    return loads(dumps(value))
