"""Scale expectations: remember the Pods this operator just created or deleted until its cache sees them.

An informer cache lags the API server. Without expectations a reconcile that runs right after a create
would still count the old Pods and create them again. After each create/delete the reconciler records
`(pod name, action)` under `(namespace, cluster, group)` (the head group is ""). A group is *satisfied*
when every record is observed: a created Pod is in the cache (or `create_timeout` seconds have passed, in
case it was deleted before the cache saw it), a deleted Pod is gone from it. An unsatisfied group is
skipped for this pass; the cache event that satisfies it queues the cluster again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Action(Enum):
    CREATE = "create"
    DELETE = "delete"


@dataclass(frozen=True)
class _Record:
    pod: str
    action: Action
    at: float


GroupKey = tuple[str, str, str]  # (namespace, cluster, group)


class ScaleExpectations:
    """Thread-safe expectation records; `exists(namespace, pod name)` reads the informer cache."""

    def __init__(
        self,
        exists: Callable[[str, str], bool],
        *,
        clock: Callable[[], float] = time.monotonic,
        create_timeout: float = 30.0,
    ) -> None:
        self._exists = exists
        self._clock = clock
        self._create_timeout = create_timeout
        self._lock = threading.Lock()
        self._records: dict[GroupKey, dict[str, _Record]] = {}

    def expect(self, key: GroupKey, pod: str, action: Action) -> None:
        with self._lock:
            self._records.setdefault(key, {})[pod] = _Record(pod, action, self._clock())

    def _observed(self, namespace: str, record: _Record) -> bool:
        present = self._exists(namespace, record.pod)
        if record.action is Action.CREATE:
            return present or self._clock() - record.at >= self._create_timeout
        return not present

    def satisfied(self, key: GroupKey) -> bool:
        """True when every record of the group has been observed; observed records are dropped."""
        with self._lock:
            records = self._records.get(key)
            if not records:
                return True
            for pod, record in list(records.items()):
                if self._observed(key[0], record):
                    del records[pod]
            if not records:
                del self._records[key]
                return True
            return False

    def clear_cluster(self, namespace: str, cluster: str) -> None:
        """Drop every record of a cluster (it was deleted, or all its Pods are being recreated)."""
        with self._lock:
            for key in [k for k in self._records if k[0] == namespace and k[1] == cluster]:
                del self._records[key]

    def pending(self, key: GroupKey) -> int:
        with self._lock:
            return len(self._records.get(key, {}))
