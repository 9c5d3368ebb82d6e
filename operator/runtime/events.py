"""Kubernetes Events (core/v1) about the objects the operator manages.

Events are best effort: a failure to record one is logged at debug and never fails a reconcile. Callers
must never put secrets (e.g. a Ray auth token) into a message.
"""

from __future__ import annotations

import logging

from rayside.eventcorrelator import EventCorrelator
from rayside.events import event_body as shared_event_body
from rayside.kubeclient import KubeClient, KubeError, NotFound
from rayside.objects import EVENTS, JSON, namespace_of
from rayside.runtime.background import BackgroundQueue

log = logging.getLogger(__name__)

COMPONENT = "rayside-operator"


def event_body(obj: JSON, *, type_: str, reason: str, message: str) -> JSON:
    """The Event describing `obj`, reported by the operator (pure)."""
    return shared_event_body(obj, type_=type_, reason=reason, message=message, component=COMPONENT)


class EventRecorder(BackgroundQueue[tuple[str, JSON]]):
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
        super().__init__("event-recorder", max_queue=max(1, max_queue))
        self._client = client.deferrable(max_defer)
        self._correlator = correlator or EventCorrelator()

    def record(self, obj: JSON, *, type_: str, reason: str, message: str) -> None:
        ns = namespace_of(obj) or "default"
        self._enqueue((ns, event_body(obj, type_=type_, reason=reason, message=message)))

    def pending(self) -> int:
        return self.backlog()

    def _on_drop(self, item: tuple[str, JSON]) -> None:
        body = item[1]
        log.debug("event queue full: dropped %s on %s", body.get("reason"), body["involvedObject"])

    def _process(self, item: tuple[str, JSON]) -> None:
        """Create the Event, or patch the count of the earlier identical one (see EventCorrelator)."""
        ns, body = item
        decision = self._correlator.correlate(body)
        try:
            if decision.patch is not None:
                try:
                    self._client.patch(EVENTS.path(ns, decision.name), decision.patch)
                    return
                except NotFound:  # expired or deleted: create it again, with the running count
                    pass
            self._client.create(EVENTS.path(ns), decision.body)
        except (KubeError, OSError) as exc:
            name = body["involvedObject"].get("name")
            log.debug("event %s on %s/%s not recorded: %s", body.get("reason"), ns, name, exc)
