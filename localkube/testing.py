"""Test helpers: `with running(...) as lk:` starts a LocalKube on a free port and stops it afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from localkube.cluster import LocalKube, Settings


@contextmanager
def running(**kw: Any) -> Iterator[LocalKube]:
    """Start a LocalKube (`Settings` fields as keyword arguments); yields it and always stops it."""
    lk = LocalKube(Settings(**kw))
    lk.start()
    try:
        yield lk
    finally:
        lk.stop()
