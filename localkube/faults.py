"""Fault injection for reliability tests: per-verb error rates, added latency and forced watch drops.

Deterministic for a given seed. Changeable at runtime through `LocalKube.faults` or the admin path
`/localkube/faults` (GET shows, PUT replaces the settings with a JSON object of the same shape).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
CODES = (409, 429, 500, 503)


@dataclass
class Faults:
    """`error_rates[verb][code]` is the probability (0..1) that a request of that verb fails with it."""

    seed: int = 0
    error_rates: dict[str, dict[int, float]] = field(default_factory=dict)
    latency: float = 0.0  # seconds added to every resource request
    watch_drop_after: float | None = None  # close every watch after this many seconds
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)
        self.error_rates = self._check(self.error_rates)

    @staticmethod
    def _check(rates: dict[Any, Any]) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for verb, codes in rates.items():
            if verb not in VERBS and verb != "*":
                raise ValueError(f"fault verb {verb!r} is not one of {', '.join(VERBS)} or '*'")
            out[verb] = {}
            for code, rate in dict(codes).items():
                if int(code) not in CODES:
                    raise ValueError(f"fault code {code!r} for {verb} is not one of {CODES}")
                if not 0.0 <= float(rate) <= 1.0:
                    raise ValueError(f"fault rate {rate!r} for {verb}/{code} must be between 0 and 1")
                out[verb][int(code)] = float(rate)
        return out

    def set(
        self,
        error_rates: dict[str, dict[int, float]] | None = None,
        latency: float | None = None,
        watch_drop_after: float | None = None,
        seed: int | None = None,
    ) -> None:
        with self._lock:
            if error_rates is not None:
                self.error_rates = self._check(error_rates)
            if latency is not None:
                self.latency = max(0.0, float(latency))
            self.watch_drop_after = watch_drop_after
            if seed is not None:
                self.seed = seed
                self._rng.seed(seed)

    def clear(self) -> None:
        self.set(error_rates={}, latency=0.0, watch_drop_after=None)

    def pick(self, verb: str) -> int | None:
        """The error code to inject for this request, if any (one random draw per configured code)."""
        with self._lock:
            rates = {**self.error_rates.get("*", {}), **self.error_rates.get(verb, {})}
            for code in sorted(rates):
                if self._rng.random() < rates[code]:
                    return code
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "latency": self.latency,
            "watch_drop_after": self.watch_drop_after,
            "error_rates": {
                v: {str(c): r for c, r in codes.items()} for v, codes in self.error_rates.items()
            },
        }

    def update_from(self, data: dict[str, Any]) -> None:
        self.set(
            error_rates=data.get("error_rates", {}),
            latency=data.get("latency", 0.0),
            watch_drop_after=data.get("watch_drop_after"),
            seed=data.get("seed"),
        )
