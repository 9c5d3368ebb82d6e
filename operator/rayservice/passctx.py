"""The mutable scratchpad of one pure RayService decision: the new status, the actions so far, requeue."""

from __future__ import annotations

import copy
from datetime import datetime

from ray_operator.rayservice import conditions as cond
from ray_operator.rayservice.observed import REQUEUE_SECONDS, UPGRADE_TIMEOUT, Action, Decision, Observed
from rayside.objects import JSON, generation_of


class Ctx:
    """Built by `plan.decide` from an `Observed`; `decision()` turns it into the returned `Decision`."""

    def __init__(self, o: Observed) -> None:
        self.o = o
        self.old: JSON = copy.deepcopy(o.obj.get("status") or {})
        self.status: JSON = copy.deepcopy(self.old)
        self.actions: list[Action] = []
        self.requeue: float | None = REQUEUE_SECONDS
        self.delete_at: dict[str, datetime] = dict(o.delete_at)

    @property
    def active_name(self) -> str:
        return str((self.status.get("activeServiceStatus") or {}).get("rayClusterName") or "")

    @property
    def pending_name(self) -> str:
        return str((self.status.get("pendingServiceStatus") or {}).get("rayClusterName") or "")

    def detail(self, side: str) -> JSON:
        """`activeServiceStatus` / `pendingServiceStatus` of the new status (created when missing)."""
        value = self.status.get(side)
        if not isinstance(value, dict):
            value = {}
            self.status[side] = value
        return value

    def stamp_generation(self) -> None:
        self.status["observedGeneration"] = generation_of(self.o.obj)

    def decision(self, *, write: bool = True) -> Decision:
        status: JSON | None = None
        if write:
            gen = self.status.get("observedGeneration")
            for item in self.status.get("conditions") or []:
                # an upgrade timeout remembers the generation it gave up on (plan: not retried until it moves)
                if item.get("reason") != UPGRADE_TIMEOUT or "observedGeneration" not in item:
                    item["observedGeneration"] = gen
            if self.status.get("conditions") is not None:
                self.status["serviceStatus"] = "Running" if cond.is_true(self.status, "Ready") else ""
            if cond.status_changed(self.old, self.status):
                self.status["lastUpdateTime"] = cond.fmt(self.o.now)
                status = self.status
        return Decision(actions=self.actions, status=status, requeue=self.requeue, delete_at=self.delete_at)
