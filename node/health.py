"""Whether the node may answer at all, decided by its ledger.

At start-up (`start`) the O(log n) start-up check decides whether the node answers at
all; the full re-verification then runs in a background thread, from the ledger's
verified-through mark to its end, and turns the node unhealthy for good if it fails
(see privacy.ledger.resumable). A ledger fault seen while serving turns the node
unhealthy:
- an integrity fault (a LedgerFault, or any SQLite error but "locked") until restart: a
  ledger that failed once is not trusted to record the next charge;
- a transient fault (LedgerBusy: another process held the write lock past the retry
  deadline) only until a background re-check passes: the write lock can be taken again
  and the self-check passes. A re-check that finds an integrity fault stays fatal.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from privacy.ledger.errors import LedgerBusy, LedgerFault
from privacy.ledger.sqlschema import is_busy
from privacy.ledger.verifier import SelfCheckReport
from privacy.ledger.writer import Ledger

log = logging.getLogger("npcs.node.engine")

RECHECK_FIRST_PAUSE = 0.05
RECHECK_MAX_PAUSE = 5.0
"""Pauses between re-check attempts while the ledger stays busy (seconds)."""


class LedgerHealth:
    """One ledger's health, shared by every thread serving from it. Unhealthy until the
    first check (`start` or `run_self_check`) passes."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._healthy = False
        self._fault = "the ledger has not been checked yet"
        self._lock = threading.Lock()
        self._listeners: list[Callable[[bool], None]] = []
        self._rechecking = False
        self._fatal = False
        self._stopping = threading.Event()
        self._verifier: threading.Thread | None = None

    def start(self) -> bool:
        """Run the start-up check now and, if it passes, the full re-verification in the
        background; False (NOT_SERVING) when the start-up check fails."""
        if not self._decide(self._ledger.startup_check, "ledger start-up check failed"):
            return False
        self._verifier = threading.Thread(
            target=self._verify_in_background, name="ledger-verify", daemon=True
        )
        self._verifier.start()
        return True

    def stop(self) -> None:
        """Stop the background re-verification (at its next chunk) and wait for it."""
        self._stopping.set()
        if self._verifier is not None:
            self._verifier.join()

    def _verify_in_background(self) -> None:
        try:
            report = self._ledger.continue_verification(self._stopping.is_set)
        except LedgerBusy:
            self._start_recheck()
            return
        except (LedgerFault, sqlite3.Error) as exc:
            if self._stopping.is_set():
                return  # the ledger was closed under the pass
            report = SelfCheckReport(ok=False, problems=[str(exc)])
        if report.ok:
            log.info("ledger re-verified", extra={"event": "ledger_verified", "size": report.size})
            return
        self._fatal = True
        log.error("ledger re-verification failed", extra={"event": "ledger_fault"})
        self._set(False, "; ".join(report.problems[:3]))

    def run_self_check(self) -> bool:
        """Run the ledger's full self-check now; while it fails no query is answered."""
        return self._decide(self._ledger.self_check, "ledger self-check failed")

    def _decide(self, check: Callable[[], SelfCheckReport], failure: str) -> bool:
        try:
            report = check()
        except LedgerFault as exc:
            healthy, fault = False, str(exc)
        else:
            healthy = report.ok
            fault = "" if report.ok else "; ".join(report.problems[:3])
        if not healthy:
            log.error(failure, extra={"event": "ledger_fault"})
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
        except LedgerBusy as exc:
            self._failed(what, exc)
            self._start_recheck()
            raise
        except LedgerFault as exc:
            self._failed(what, exc)
            raise
        except sqlite3.Error as exc:
            if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
                busy = LedgerBusy(f"ledger database busy: {exc}")
                self._failed(what, busy)
                self._start_recheck()
                raise busy from exc
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

    def _start_recheck(self) -> None:
        with self._lock:
            if self._rechecking:
                return
            self._rechecking = True
        threading.Thread(
            target=self._recheck_until_decided, name="ledger-recheck", daemon=True
        ).start()

    def _recheck_until_decided(self) -> None:
        """Take the write lock (waiting up to the busy deadline), release it, then run the
        self-check; repeat while the database stays busy. Ends healthy, or unhealthy for
        good on an integrity fault."""
        pause = RECHECK_FIRST_PAUSE
        try:
            while True:
                try:
                    self._ledger.probe_writable()
                except LedgerBusy:
                    threading.Event().wait(pause)
                    pause = min(pause * 2, RECHECK_MAX_PAUSE)
                    continue
                except LedgerFault as exc:
                    self._set(False, f"the ledger failed its re-check: {exc}")
                    return
                if not self._fatal and self.run_self_check():
                    log.info("ledger re-check passed", extra={"event": "ledger_recovered"})
                return
        finally:
            with self._lock:
                self._rechecking = False

    def _set(self, healthy: bool, fault: str) -> None:
        with self._lock:
            self._healthy, self._fault = healthy, fault
            listeners = tuple(self._listeners)
        for listener in listeners:
            listener(healthy)

    def _failed(self, what: str, exc: LedgerFault) -> None:
        if not isinstance(exc, LedgerBusy):
            self._fatal = True
        if self._healthy:
            transient = isinstance(exc, LedgerBusy)
            log.error(
                "ledger busy while serving: not serving until a re-check passes"
                if transient
                else "ledger fault while serving: the node answers no query until restarted",
                extra={"event": "ledger_busy" if transient else "ledger_fault", "during": what},
            )
        self._set(False, f"the ledger failed while serving ({what}): {exc}")
