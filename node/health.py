"""Whether the node may answer at all, decided by its ledger.

The start-up self-check decides whether the node answers at all, and any ledger fault
seen while serving (a LedgerFault or SQLite error from any ledger call) turns the node
unhealthy until restart: a ledger that failed once is not trusted to record the next
charge. No periodic full self-check: it is O(ledger size).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from privacy.ledger.errors import LedgerFault
from privacy.ledger.writer import Ledger

log = logging.getLogger("npcs.node.engine")


class LedgerHealth:
    """One ledger's health, shared by every thread serving from it. Unhealthy until the
    first `run_self_check` passes."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._healthy = False
        self._fault = "the ledger has not been checked yet"
        self._lock = threading.Lock()
        self._listeners: list[Callable[[bool], None]] = []

    def run_self_check(self) -> bool:
        """Run the ledger's full self-check; while it fails no query is answered."""
        try:
            report = self._ledger.self_check()
        except LedgerFault as exc:
            healthy, fault = False, str(exc)
        else:
            healthy = report.ok
            fault = "" if report.ok else "; ".join(report.problems[:3])
        if not healthy:
            log.error("ledger self-check failed", extra={"event": "ledger_fault"})
        self._set(healthy, fault)
        return healthy

    @property
    def healthy(self) -> bool:
        return self._healthy

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(healthy)` whenever health is decided (e.g. to publish it on the
        gRPC health service). Called on the thread that decided it."""
        with self._lock:
            self._listeners.append(listener)

    @contextmanager
    def watching(self, what: str) -> Iterator[None]:
        """Turn unhealthy (until restart) on any ledger fault inside the block.

        A raw SQLite error becomes a LedgerFault, so callers see one kind of fault.
        """
        try:
            yield
        except LedgerFault as exc:
            self._failed(what, exc)
            raise
        except sqlite3.Error as exc:
            fault = LedgerFault(f"ledger database error: {exc}")
            self._failed(what, fault)
            raise fault from exc

    def require_healthy(self) -> None:
        """Raise LedgerFault, saying what the operator must do, unless healthy."""
        if not self._healthy:
            raise LedgerFault(
                f"this node's ledger failed and the node answers no query: "
                f"{self._fault}. The node operator must run `npcs-node ledger verify` "
                "and restart the node."
            )

    def _set(self, healthy: bool, fault: str) -> None:
        with self._lock:
            self._healthy, self._fault = healthy, fault
            listeners = tuple(self._listeners)
        for listener in listeners:
            listener(healthy)

    def _failed(self, what: str, exc: LedgerFault) -> None:
        if self._healthy:
            log.error(
                "ledger fault while serving: the node answers no query until restarted",
                extra={"event": "ledger_fault", "during": what},
            )
        self._set(False, f"the ledger failed while serving ({what}): {exc}")
