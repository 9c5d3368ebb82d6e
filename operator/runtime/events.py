"""Kubernetes Events (core/v1) about the objects the operator manages.

Events are best effort: a failure to record one is logged at debug and never fails a reconcile. Callers
must never put secrets (e.g. a Ray auth token) into a message.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from rayside.eventcorrelator import EventCorrelator
from rayside.events import event_body as shared_event_body
from rayside.kubeclient import KubeClient, KubeError, NotFound, resource_path

log = logging.getLogger(__name__)

COMPONENT = "rayside-operator"


def event_body(obj: dict[str, Any], *, type_: str, reason: str, message: str) -> dict[str, Any]:
    """The Event describing `obj`, reported by the operator (pure)."""
    return shared_event_body(obj, type_=type_, reason=reason, message=message, component=COMPONENT)


class EventRecorder:
    """Sends Events from a background thread so a reconcile never waits for one.

    Repeats are correlated like client-go's recorder does: an Event identical to a recent one patches that
    one's `count` and `lastTimestamp` instead of creating another (`rayside.eventcorrelator`).

    Events go through a deferrable view of the client: they yield the shared QPS budget to object writes
    for up to `max_defer` seconds each, so a large scale-up is not slowed by its own Events. At most
    `max_queue` Events wait; beyond that the oldest are dropped (counted in `dropped`), as client-go's
    broadcaster drops Events it cannot keep up with. `close()` sends what it can within a deadline.
    """

    def __init__(
        self,
        client: KubeClient,
        *,
        max_queue: int = 1000,
        max_defer: float = 30.0,
        correlator: EventCorrelator | None = None,
    ) -> None:
        self._client = client.deferrable(max_defer)
        self._correlator = correlator or EventCorrelator()
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._max_queue = max(1, max_queue)
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._busy = False
        self.dropped = 0

    def record(self, obj: dict[str, Any], *, type_: str, reason: str, message: str) -> None:
        ns = obj.get("metadata", {}).get("namespace") or "default"
        body = event_body(obj, type_=type_, reason=reason, message=message)
        with self._cv:
            if self._closing:
                return
            if len(self._queue) >= self._max_queue:
                _, old = self._queue.popleft()
                self.dropped += 1
                log.debug("event queue full: dropped %s on %s", old.get("reason"), old["involvedObject"])
            self._queue.append((ns, body))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-recorder", daemon=True)
                self._thread.start()
            self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._queue) + (1 if self._busy else 0)

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking Events; send the queued ones for up to `timeout` seconds, drop the rest."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cv:
            if self._queue:
                log.debug("%d events not recorded at shutdown", len(self._queue))
                self.dropped += len(self._queue)
                self._queue.clear()

    def _run(self) -> None:
        while True:
            with self._cv:
                self._busy = False
                while not self._queue and not self._closing:
                    self._cv.wait()
                if not self._queue:
                    return
                ns, body = self._queue.popleft()
                self._busy = True
            self._send(ns, body)

    def _send(self, ns: str, body: dict[str, Any]) -> None:
        """Create the Event, or patch the count of the earlier identical one (see EventCorrelator)."""
        events = resource_path(group="", version="v1", plural="events", namespace=ns)
        decision = self._correlator.correlate(body)
        try:
            if decision.patch is not None:
                try:
                    self._client.patch(f"{events}/{decision.name}", decision.patch)
                    return
                except NotFound:  # expired or deleted: create it again, with the running count
                    pass
            self._client.create(events, decision.body)
        except (KubeError, OSError) as exc:
            name = body["involvedObject"].get("name")
            log.debug("event %s on %s/%s not recorded: %s", body.get("reason"), ns, name, exc)
