"""localkube.fastjson gives the standard library's results and errors, whether orjson or json works."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from localkube import fastjson

CASES: list[Any] = [
    {"a": [1, 2.5, None, True, False, "x"], "b": {"c": {}}, "d": []},
    {"unicode": "é漢字 \u2028", "escapes": 'q"b\\s\n\t'},
    {"big": 2**70, "neg": -(2**65)},  # beyond 64 bits: the standard library handles these
    [1e300, -0.0, 0.1],
]


@pytest.mark.parametrize("value", CASES)
def test_round_trip_matches_json(value: Any) -> None:
    assert json.loads(fastjson.dumps(value)) == value
    assert fastjson.loads(json.dumps(value)) == value
    assert fastjson.clone(value) == value


def test_dumps_is_compact() -> None:
    assert fastjson.dumps({"a": [1, {"b": None}]}) == b'{"a":[1,{"b":null}]}'


def test_non_string_keys_fall_back_to_json() -> None:
    assert fastjson.dumps({1: "x"}) == b'{"1":"x"}'


def test_loads_accepts_what_json_accepts() -> None:
    assert math.isnan(fastjson.loads(b'{"v": NaN}')["v"])
    assert fastjson.loads(b"  [1]  ") == [1]


def test_clone_is_deep() -> None:
    value: dict[str, Any] = {"a": {"b": [1, {"c": 2}]}}
    copy = fastjson.clone(value)
    copy["a"]["b"][1]["c"] = 3
    assert value["a"]["b"][1]["c"] == 2


def test_invalid_input_raises_the_standard_error() -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        fastjson.loads(b'{"a": ')
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(b'{"a": ')
    assert str(info.value) == str(expected.value)
