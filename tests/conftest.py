"""Fixtures shared by every test tier.

`ray_head` is one real Ray head with token auth for the whole session (a head costs ~6 s and ~400 MB, so
e2e tests share it). Tests that need a head of their own use `tests.support.rayhead.running_head()`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.rayhead import RayHead, new_head


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    head = new_head()
    try:
        head.start(num_cpus=1)
        yield head
    finally:
        head.stop()
        shutil.rmtree(head.temp_dir.parent, ignore_errors=True)
