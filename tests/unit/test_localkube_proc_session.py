"""Session ids parsed from /proc/PID/stat lines (the process kubelet kills container leftovers by them)."""

from __future__ import annotations

from localkube.kubelet.container import session_in_stat


def test_session_is_the_sixth_field() -> None:
    assert session_in_stat(b"4242 (raylet) S 4200 4210 4199 0 -1 4194560 2518 0 0 0") == 4199


def test_command_name_with_spaces_and_parentheses() -> None:
    line = b"77 (ray::Dashboard) (x) ) R 1 77 70 0 -1 0 0"
    assert session_in_stat(line) == 70


def test_short_or_garbled_line() -> None:
    assert session_in_stat(b"77 (sh) S 1") is None
    assert session_in_stat(b"") is None
