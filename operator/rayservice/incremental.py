"""The arithmetic of `NewClusterWithIncrementalUpgrade`, as pure functions over plain numbers.

Traffic (HTTPRoute weights) moves by `stepSizePercent` at most every `intervalSeconds`, never ahead of the
receiving cluster's Serve `target_capacity`; capacities move by at most `maxSurgePercent` per step and only
once traffic has caught up with them. During a rollback everything runs the other way. Defaults for unset
values: active capacity/traffic 100, pending 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Levels:
    """Capacities and traffic of the two clusters (None = not set yet)."""

    active_tc: int | None = None
    pending_tc: int | None = None
    active_traffic: int | None = None
    pending_traffic: int | None = None

    @property
    def a_tc(self) -> int:
        return 100 if self.active_tc is None else self.active_tc

    @property
    def p_tc(self) -> int:
        return 0 if self.pending_tc is None else self.pending_tc

    @property
    def a_traffic(self) -> int:
        return 100 if self.active_traffic is None else self.active_traffic

    @property
    def p_traffic(self) -> int:
        return 0 if self.pending_traffic is None else self.pending_traffic


def _elapsed(since: datetime | None, now: datetime, interval: int) -> bool:
    return since is None or (now - since).total_seconds() >= interval


def next_weights(
    levels: Levels,
    *,
    rollback: bool,
    pending_ready: bool,
    last_moved: datetime | None,
    now: datetime,
    step: int,
    interval: int,
) -> tuple[int, int]:
    """The (active, pending) route weights for this pass. `last_moved` is the pending cluster's
    lastTrafficMigratedTime (the active one's during a rollback)."""
    active, pending = levels.a_traffic, levels.p_traffic
    if (not rollback and pending == levels.p_tc) or (rollback and active == levels.a_tc):
        return active, pending
    if not _elapsed(last_moved, now, interval):
        return active, pending
    if rollback:
        active = min(100, active + step, levels.a_tc)
        return active, 100 - active
    if pending_ready:
        pending = min(100, pending + step, levels.p_tc)
        return 100 - pending, pending
    return active, pending


def needs_capacity_update(levels: Levels, *, rollback: bool) -> bool:
    """Whether target capacities still have to move (the route and Gateway being ready is checked by the
    caller)."""
    values = (levels.active_tc, levels.pending_tc, levels.active_traffic, levels.pending_traffic)
    if any(v is None for v in values):
        return True
    if rollback:
        return not (levels.a_tc == 100 and levels.p_tc == 0)
    return not (levels.a_tc == 0 and levels.p_tc == 100)


def capacity_goal(levels: Levels, *, role: str, rollback: bool, surge: int) -> int | None:
    """The new `target_capacity` of the `role` ("active" or "pending") cluster, or None for no change."""
    a_tc, p_tc = levels.a_tc, levels.p_tc
    if not rollback:
        if p_tc != levels.p_traffic:
            return None  # traffic has not caught up with the pending capacity yet
        if role == "active" and a_tc + p_tc > 100:
            return max(0, a_tc - surge)
        if role == "pending" and a_tc + p_tc <= 100:
            return min(100, p_tc + surge)
        return None
    if a_tc != levels.a_traffic:
        return None
    if role == "pending" and a_tc + p_tc > 100:
        return max(0, p_tc - surge)
    if role == "active" and a_tc + p_tc <= 100:
        return min(100, a_tc + surge)
    return None


def rollback_done(levels: Levels, *, pending_head_ready: bool) -> bool:
    """A rollback is complete when the active cluster has all capacity and traffic back, and the pending
    one has none (or its head is gone, so it serves nothing anyway)."""
    active_back = levels.a_tc == 100 and levels.a_traffic == 100
    pending_empty = levels.p_tc == 0 and levels.p_traffic == 0
    return active_back and (pending_empty or not pending_head_ready)
