"""Raising the high-water mark a few milliseconds behind the commits, off the charge's path.

The marker's one `fdatasync` cost +0.5 ms per charge on top of the ledger's own commit,
which put a charge's p50 above DESIGN's 1 ms. What the marker is for does not need it on
the path: it lets a node refuse to start on a ledger shorter than, or forked from, what
it once signed (an older copy restored, the file truncated or deleted). So a charge now
commits, hands its newest signed checkpoint to this trail and returns; one background
thread per ledger writes the newest checkpoint it was handed, coalescing a burst of
charges into one write.

What changes, exactly:

* The marker may lag the committed ledger by the charges of the last few milliseconds
  (one write, usually under 1 ms). It never runs ahead of it: only committed
  checkpoints are handed over. A ledger that is at least its marker still starts, so a
  crash (kill -9, power cut) within the lag never stops a node; it only means that, for
  those last entries, a rollback is caught by the clients' consistency proofs
  (they remember the size they saw) rather than by the node at start-up.
* `close` (a node stopping), `flush` and the start-up and self-checks wait for the
  trail, so a stopped node's marker is exactly its ledger's last checkpoint.
* Writers in several processes: each raise takes the store's exclusive lock, re-reads
  the stored mark and writes only a larger one, so marks only ever grow.
* A failed write (a full disk, a broken file) is kept; the next charge is refused with
  LedgerFault before anything is released or charged, and the trail retries with every
  newer checkpoint.
"""

from __future__ import annotations

import logging
import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from privacy.ledger.errors import LedgerFault
from privacy.ledger.high_water import HighWaterStore, raise_high_water
from privacy.tlog import SignedCheckpoint

log = logging.getLogger(__name__)


class HighWaterTrail:
    """One background writer of a ledger's high-water mark (see the module docstring)."""

    def __init__(self, store: HighWaterStore, key: Ed25519PrivateKey) -> None:
        self.store = store
        self._key = key
        self._changed = threading.Condition()
        self._pending: SignedCheckpoint | None = None
        self._writing = False
        self._failure: LedgerFault | None = None
        self._failed: SignedCheckpoint | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def offer(self, signed: SignedCheckpoint) -> None:
        """Hand over a committed checkpoint; it is written soon, unless a larger one is."""
        with self._changed:
            if self._closed:
                raise LedgerFault("the ledger's high-water trail is closed")
            pending = self._pending
            if pending is None or signed.checkpoint.size > pending.checkpoint.size:
                self._pending = signed
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ledger-high-water", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def require_healthy(self) -> None:
        """After a failed write, write its checkpoint again now; raise LedgerFault if that
        fails too (so a charge is refused while the marker cannot be raised)."""
        with self._changed:
            failed = self._failed if self._failure is not None else None
        if failed is not None:
            self.offer(failed)
            self.flush()

    def flush(self) -> None:
        """Wait until every checkpoint handed over is written (or failed: LedgerFault)."""
        with self._changed:
            self._changed.wait_for(lambda: self._pending is None and not self._writing)
            if self._failure is not None:
                raise self._failure

    def close(self) -> None:
        """Flush, then stop the thread; a failure is logged, not raised (closing)."""
        try:
            self.flush()
        except LedgerFault as exc:
            log.error("high-water mark not raised at close: %s", exc)
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending is not None or self._closed)
                signed = self._pending
                if signed is None:  # closed with nothing left to write
                    return
                self._pending, self._writing = None, True
            failure = self._write(signed)
            with self._changed:
                self._writing = False
                self._failure = failure
                self._failed = signed if failure is not None else None
                self._changed.notify_all()

    def _write(self, signed: SignedCheckpoint) -> LedgerFault | None:
        try:
            with self.store.exclusive():
                raise_high_water(self.store, signed, self._key)
        except LedgerFault as exc:
            log.error("could not raise the high-water mark: %s", exc)
            return exc
        except OSError as exc:  # the lock itself
            log.error("could not lock the high-water marker: %s", exc)
            return LedgerFault(f"could not lock the ledger's high-water marker: {exc}")
        return None
