"""Manager: starts informers, waits for their caches, then runs controllers (as leader, if electing).

`run(stop)` returns an exit code: 0 after a graceful stop, 1 if leadership was lost (the process should
exit so a fresh replica takes over) or the caches never synced. `synced` is set once every informer cache
has synced (the readiness signal: standby replicas that wait for leadership are ready too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from ray_operator.runtime.leader import LeaderElector
from rayside.runtime.controller import Controller
from rayside.runtime.informer import Informer

log = logging.getLogger(__name__)


class Manager:
    def __init__(
        self,
        *,
        informers: Sequence[Informer],
        controllers: Sequence[Controller],
        leader: LeaderElector | None = None,
        sync_timeout: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.informers = list(informers)
        self.controllers = list(controllers)
        self.leader = leader
        self._sync_timeout = sync_timeout
        self._clock = clock
        self.started = threading.Event()
        self.synced = threading.Event()

    def _wait_synced(self, stop: threading.Event) -> bool:
        deadline = self._clock() + self._sync_timeout
        for informer in self.informers:
            while not informer.synced.wait(0.1):
                if stop.is_set() or self._clock() > deadline:
                    return False
        return True

    def _start_controllers(self) -> None:
        for controller in self.controllers:
            controller.start()
        self.started.set()

    def run(self, stop: threading.Event) -> int:
        """Run until `stop` is set (or leadership is lost); returns the process exit code."""
        for informer in self.informers:
            informer.start(stop)
        if not self._wait_synced(stop):
            if stop.is_set():
                return 0
            log.error("informer caches did not sync within %.0fs", self._sync_timeout)
            stop.set()
            return 1
        self.synced.set()
        lost = False
        if self.leader is not None:
            self.leader.run(stop, self._start_controllers)
            lost = not stop.is_set() and self.started.is_set()
        else:
            self._start_controllers()
            stop.wait()
        for controller in self.controllers:
            controller.stop()
        if self.leader is not None:
            self.leader.release()
        stop.set()
        return 1 if lost else 0
