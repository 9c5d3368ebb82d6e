"""Shared helpers for tests that talk to localkube: polling until a condition holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    check: Callable[[], Any],
    timeout: float = 20.0,
    what: str = "condition",
    interval: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """Poll `check` every `interval` s until it returns a truthy value (returned); fail after `timeout` s.

    Exceptions of the `ignore` types (e.g. request errors while a server is still starting) count as a
    falsy result: polling goes on and the last one is shown if the wait times out. Others propagate.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except ignore as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
