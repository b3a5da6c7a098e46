"""A short-lived cache of query plans, so a Query after its Preview does not plan again.

Planning builds the OpenDP measurement and asks its privacy map for the cost: a few
milliseconds of OpenDP per call, done once for Preview and again for Query. The cache
keeps the *plan* (measurement, cost, expected accuracy), never a release: every lookup
hands out an unreleased copy (`QueryPlan.unreleased_copy`), so each answer still runs
the measurement once and draws its own noise.

The key is the canonical query hash (every field of the request, including its query_id
and requested accuracy) and the data snapshot the plan scans, so a new snapshot plans
afresh. Planning is deterministic for that key (public schema, policy and OpenDP only),
so a cached plan charges exactly what a fresh plan would. Entries live at most
`ttl_seconds` and at most `max_entries` are kept (least recently used leaves first).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from privacy.plan import QueryPlan

DEFAULT_MAX_ENTRIES = 64
DEFAULT_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class PlanKey:
    query_hash: str
    """SHA-256 of the query's canonical bytes."""
    snapshot_id: str
    """The data snapshot the plan scans at release."""


@dataclass
class PlanCacheStats:
    hits: int = 0
    misses: int = 0


class PlanCache:
    """Thread-safe, bounded, time-limited map from PlanKey to an unreleased QueryPlan."""

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or ttl_seconds <= 0:
            raise ValueError("a plan cache needs max_entries >= 1 and ttl_seconds > 0")
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._plans: OrderedDict[PlanKey, tuple[float, QueryPlan]] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = PlanCacheStats()

    def __len__(self) -> int:
        with self._lock:
            return len(self._plans)

    def plan(self, key: PlanKey, build: Callable[[], QueryPlan]) -> QueryPlan:
        """An unreleased plan for `key`: cached if planned within the TTL, else `build()`.

        `build` runs outside the lock (two threads may both plan the same query; planning
        is deterministic, so either result is the same plan). Errors from `build` are not
        cached."""
        now = self._clock()
        with self._lock:
            self._evict_expired(now)
            cached = self._plans.get(key)
            if cached is not None:
                self._plans.move_to_end(key)
                self.stats.hits += 1
                return cached[1].unreleased_copy()
            self.stats.misses += 1
        built = build()
        with self._lock:
            self._plans[key] = (now + self._ttl, built.unreleased_copy())
            self._plans.move_to_end(key)
            while len(self._plans) > self._max_entries:
                self._plans.popitem(last=False)
        return built

    def _evict_expired(self, now: float) -> None:
        expired = [key for key, (expires, _) in self._plans.items() if expires <= now]
        for key in expired:
            del self._plans[key]
