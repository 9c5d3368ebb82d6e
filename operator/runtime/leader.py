"""Leader election on a coordination.k8s.io/v1 Lease, so only one operator replica reconciles.

A candidate takes the Lease when it is absent, unheld, or its holder has not renewed it for
`lease_duration` seconds as observed *locally* (the holder's timestamps are not trusted, so clock skew
between machines does not matter). Writes carry the observed resourceVersion, so two candidates racing
for the same Lease cannot both win (the loser gets 409 Conflict). The leader renews every
`retry_period`; if it cannot renew within `renew_deadline` it stops leading. After a graceful shutdown
the owner calls `release()` so a successor need not wait for the Lease to expire.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rayside.kubeclient import KubeClient, KubeError, NotFound
from rayside.objects import LEASES, resource_version_of

log = logging.getLogger(__name__)


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquire and hold one Lease; `run()` blocks until leadership ends or `stop` is set."""

    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._name = self.name = name
        self._namespace = namespace
        self.identity = identity
        self._lease_duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry_period = retry_period
        self._clock = clock
        self._observed: tuple[str, str, float] | None = None  # (holder, resourceVersion, seen at)
        self.leading = threading.Event()

    def _spec(self, transitions: int, acquire_time: str | None) -> dict[str, Any]:
        now = _now_rfc3339()
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self._lease_duration),
            "acquireTime": acquire_time or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this candidate holds the Lease afterwards."""
        try:
            lease = self._client.get(LEASES.path(self._namespace, self._name))
        except NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self._name, "namespace": self._namespace},
                "spec": self._spec(0, None),
            }
            self._client.create(LEASES.path(self._namespace), body)
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        rv = resource_version_of(lease)
        now = self._clock()
        if self._observed is None or self._observed[:2] != (holder, rv):
            self._observed = (holder, rv, now)
        expired = now - self._observed[2] >= float(spec.get("leaseDurationSeconds") or self._lease_duration)
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
        acquire = spec.get("acquireTime") if holder == self.identity else None
        lease["spec"] = self._spec(transitions, acquire)
        updated = self._client.replace(LEASES.path(self._namespace, self._name), lease)
        self._observed = (self.identity, resource_version_of(updated), self._clock())
        return True

    def _attempt(self) -> bool:
        try:
            return self.try_acquire_or_renew()
        except KubeError as exc:
            log.debug("lease %s/%s: attempt failed: %s", self._namespace, self._name, exc.reason)
            return False
        except OSError as exc:
            log.debug("lease %s/%s: attempt failed: %s", self._namespace, self._name, exc)
            return False

    def run(self, stop: threading.Event, on_started: Callable[[], None]) -> None:
        """Wait to acquire, call `on_started`, renew until stopped or the renew deadline passes."""
        while not stop.is_set() and not self._attempt():
            stop.wait(self._retry_period)
        if stop.is_set():
            return
        log.info("became leader (lease %s/%s, identity %s)", self._namespace, self._name, self.identity)
        self.leading.set()
        on_started()
        last_renew = self._clock()
        while not stop.wait(self._retry_period):
            if self._attempt():
                last_renew = self._clock()
            elif self._clock() - last_renew > self._renew_deadline:
                log.error("lost leadership of lease %s/%s", self._namespace, self._name)
                self.leading.clear()
                return

    def release(self) -> None:
        """Give the Lease up (holder cleared, 1 s duration) if we hold it."""
        if not self.leading.is_set():
            return
        self.leading.clear()
        try:
            lease = self._client.get(LEASES.path(self._namespace, self._name))
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"].update(
                {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": _now_rfc3339()}
            )
            self._client.replace(LEASES.path(self._namespace, self._name), lease)
        except (KubeError, OSError) as exc:
            log.debug("lease %s/%s: release failed: %s", self._namespace, self._name, exc)
