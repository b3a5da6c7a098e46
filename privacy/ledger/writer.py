"""The writable ledger of one node: `Ledger.charge_and_release` is the only way to spend.

Run the release (unrevealed), then check the budget, record the charge with its answer
and a new signed checkpoint, and commit, in one short `BEGIN IMMEDIATE` transaction;
return only after the commit. Writers of one file (threads or processes) queue on a
side-file lock first. Readers that must not wait for writers use `snapshot_reader`.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from privacy import tlog
from privacy.epsilon import epsilon_for_rho_units
from privacy.ledger.charging import new_entry, now, require_same_body, run_release
from privacy.ledger.entry import (
    ENTRY_COLUMNS,
    ChargeOutcome,
    ChargeRequest,
    LedgerEntry,
    Receipt,
    spent_total_keys,
)
from privacy.ledger.errors import LedgerError, LedgerFault, ReleaseFailed
from privacy.ledger.high_water import HighWaterStore, raise_high_water, with_high_water
from privacy.ledger.high_water_trail import HighWaterTrail
from privacy.ledger.reader import LedgerReader
from privacy.ledger.resumable import run_pass, startup_check
from privacy.ledger.sqlschema import (
    INSERT_ENTRY,
    SCHEMA_VERSION,
    SELECT_ENTRY,
    connect,
    create_schema,
    entry_from_row,
    require_same_identity,
)
from privacy.ledger.verified_mark import VerifiedMark, store_mark
from privacy.ledger.verifier import SelfCheckReport
from privacy.ledger.write_transactions import WriteTransactions
from privacy.policy import BudgetPolicy
from privacy.signed_note import ed25519_key_hash
from privacy.tlog import Checkpoint, SignedCheckpoint


class Ledger(WriteTransactions):
    """The writable ledger of one node: `charge_and_release` is the only way to spend."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        path: Path,
        *,
        origin: str,
        signing_key: Ed25519PrivateKey,
        policy: BudgetPolicy,
        delta: str,
        high_water: HighWaterStore | None = None,
        trail_high_water: bool = True,
    ) -> None:
        super().__init__(connection, path)
        self._high_water = high_water
        self._trail = (
            HighWaterTrail(high_water, signing_key)
            if high_water is not None and trail_high_water
            else None
        )
        self._origin = origin
        self._key = signing_key
        self._public_key = signing_key.public_key()
        self.policy = policy
        self.delta = delta
        self._snapshot_reader: LedgerReader | None = None

    @property
    def snapshot_reader(self) -> LedgerReader:
        """A reader on its own connection: each read sees the last committed WAL snapshot
        and never waits for this ledger's writer (auditors' calls, Describe)."""
        with self._lock:
            if self._snapshot_reader is None:
                self._snapshot_reader = LedgerReader(connect(self._path), self._path)
            return self._snapshot_reader

    def close(self) -> None:
        if self._trail is not None:
            self._trail.close()
        with self._lock:
            if self._snapshot_reader is not None:
                self._snapshot_reader.close()
                self._snapshot_reader = None
            self._conn.close()
            self._close_writer_lock()

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        origin: str,
        signing_key: Ed25519PrivateKey,
        policy: BudgetPolicy,
        delta: str = "1e-9",
        high_water: HighWaterStore | None = None,
        trail_high_water: bool = True,
    ) -> Ledger:
        """Open (creating if needed) the ledger at `path`; refuse one made with another
        origin or key. Run `self_check()` before serving; `high_water`: see its module,
        raised a few ms behind each commit (`trail_high_water`, privacy.ledger.
        high_water_trail) or, with `trail_high_water=False`, before each charge returns."""
        Checkpoint(origin, 0, tlog.EMPTY_ROOT)  # validates the origin
        float(delta)
        path.parent.mkdir(parents=True, exist_ok=True)
        ledger = cls(
            connect(path),
            path,
            origin=origin,
            signing_key=signing_key,
            policy=policy,
            delta=delta,
            high_water=high_water,
            trail_high_water=trail_high_water,
        )
        try:
            ledger._initialise()
        except BaseException:
            ledger.close()
            raise
        return ledger

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public_key

    @property
    def origin(self) -> str:
        return self._origin

    def _initialise(self) -> None:
        fingerprint = tlog.key_fingerprint(self._public_key)
        with self._write_transaction():
            create_schema(self._conn)
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                self._create_meta(fingerprint)
            else:
                require_same_identity(meta, self._path, self._origin, fingerprint)

    def _create_meta(self, fingerprint: str) -> None:
        public_raw = base64.b64encode(tlog.raw_public_key(self._public_key)).decode()
        for key, value in (
            ("schema_version", SCHEMA_VERSION),
            ("origin", self._origin),
            ("key_fingerprint", fingerprint),
            ("public_key", public_raw),
        ):
            self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        self._store_checkpoint(Checkpoint(self._origin, 0, tlog.EMPTY_ROOT).sign(self._key))

    # -- charging

    def charge_and_release(
        self, charge: ChargeRequest, release: Callable[[], bytes], *, replay_only: bool = False
    ) -> ChargeOutcome:
        """Run `release` first, keeping its answer unrevealed; then, in one short
        `BEGIN IMMEDIATE` transaction, check the query_id and the budget, record the charge
        with its answer and commit; return only after the commit.

        A query_id seen before returns the stored answer (byte-identical, no new charge),
        or raises QueryIdConflict if the body differs. A refusal (BudgetExceeded) charges
        nothing and discards the unrevealed answer (see docs/privacy-model.md). If
        `release` raises, the charge is recorded anyway (the mechanism may have run) and
        ReleaseFailed is raised.

        `replay_only`: the request was admitted as a retry of a recorded query_id (its
        freshness and nonce were not checked), so it may only fetch the stored answer; if
        the entry is gone, that is a LedgerFault and nothing is charged.

        The release runs outside every lock, so readers and other writers never wait for
        OpenDP; only the transaction is serialised.
        """
        charge.validate()
        if self._trail is not None:
            self._trail.require_healthy()  # no release while the marker cannot be raised
        epsilon = epsilon_for_rho_units(charge.cost_units, self.delta)
        replay_only = replay_only or self._precheck(charge)
        answer, failure = (b"", None) if replay_only else run_release(release)
        with self._lock, self._writer_turn():
            self._begin_immediate()
            try:
                existing = self._entry_in_transaction(charge.query_id)
                if existing is not None:
                    outcome = self._replay(charge, existing)
                    self._rollback()
                    return outcome
                if replay_only:
                    raise LedgerFault(
                        f"query {charge.query_id!r} was recorded in the ledger but its entry "
                        "is gone: the ledger lost entries"
                    )
                self._check_policy(charge)
                entry = new_entry(
                    charge,
                    seq=self._size_in_transaction(),
                    delta=self.delta,
                    answer=answer,
                    epsilon=epsilon,
                    failure=failure,
                )
                receipt = self._append(entry)
                self._commit()
                if self._trail is not None:
                    self._trail.offer(receipt.checkpoint)
                else:
                    raise_high_water(self._high_water, receipt.checkpoint, self._key)
            except LedgerError:
                self._rollback()
                raise
            except sqlite3.Error as exc:
                self._rollback()
                raise LedgerFault(f"ledger database error at {self._path}: {exc}") from exc
            except BaseException:
                self._rollback()
                raise
        if failure is not None:
            raise ReleaseFailed(
                f"query {charge.query_id!r} was charged but its release failed "
                f"({type(failure).__name__}); retry with a new query_id"
            ) from failure
        return ChargeOutcome(answer=answer, receipt=receipt)

    def _precheck(self, charge: ChargeRequest) -> bool:
        """Before any release: True if the query_id is recorded (only a replay is owed);
        raise early what the transaction would refuse anyway (a query_id used for another
        query, a budget already too small). Entries are never removed, so a recorded
        query_id stays recorded; spending only grows, so an early refusal is final."""
        existing = self.entry_by_query_id(charge.query_id)
        if existing is not None:
            require_same_body(charge, existing)
            return True
        self.policy.check(
            dataset=charge.dataset,
            analyst=charge.analyst,
            cost_units=charge.cost_units,
            dataset_spent=lambda name: self._total("dataset", name),
            analyst_spent=self._total("analyst", charge.analyst),
        )
        return False

    def _entry_in_transaction(self, query_id: str) -> LedgerEntry | None:
        rows = self._conn.execute(SELECT_ENTRY + " WHERE query_id = ?", (query_id,)).fetchall()
        return entry_from_row(rows[0]) if rows else None

    def _replay(self, charge: ChargeRequest, existing: LedgerEntry) -> ChargeOutcome:
        require_same_body(charge, existing)
        if existing.status != "released":
            raise ReleaseFailed(
                f"query {charge.query_id!r} was charged but its release failed; "
                "retry with a new query_id"
            )
        size = self._size_in_transaction()
        receipt = Receipt(
            entry_index=existing.seq,
            tree_size=size,
            inclusion_proof=tuple(tlog.inclusion_proof(existing.seq, size, self._complete_subtree)),
            checkpoint=self._checkpoint_in_transaction(size),
            replayed=True,
            leaf_data=existing.canonical_bytes(),
        )
        return ChargeOutcome(answer=existing.answer, receipt=receipt)

    def _check_policy(self, charge: ChargeRequest) -> None:
        self.policy.check(
            dataset=charge.dataset,
            analyst=charge.analyst,
            cost_units=charge.cost_units,
            dataset_spent=lambda name: self._total_in_transaction("dataset", name),
            analyst_spent=self._total_in_transaction("analyst", charge.analyst),
        )

    def _total_in_transaction(self, scope: str, name: str) -> int:
        rows = self._conn.execute(
            "SELECT units FROM spent_totals WHERE scope = ? AND name = ?", (scope, name)
        ).fetchall()
        return int(rows[0][0]) if rows else 0

    def _size_in_transaction(self) -> int:
        (value,) = self._conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM entries").fetchone()
        return int(value)

    def _checkpoint_in_transaction(self, size: int) -> SignedCheckpoint:
        row = self._conn.execute(
            "SELECT size, root, signature FROM checkpoints WHERE size = ?", (size,)
        ).fetchone()
        if row is None:
            raise LedgerFault(f"the ledger has no signed checkpoint for its size {size}")
        key_hash = ed25519_key_hash(self._origin, tlog.raw_public_key(self._public_key))
        checkpoint = Checkpoint(self._origin, size, bytes(row[1]))
        return SignedCheckpoint(checkpoint, bytes(row[2]), key_hash)

    def _append(self, entry: LedgerEntry) -> Receipt:
        """Insert the row, its Merkle nodes, the totals and a new signed checkpoint."""
        leaf_data = entry.canonical_bytes()
        leaf = tlog.leaf_hash(leaf_data)
        values = [getattr(entry, name) for name in ENTRY_COLUMNS]
        self._conn.execute(INSERT_ENTRY, (*values, leaf))
        self._store_leaf_nodes(entry.seq, leaf)
        for scope, name in spent_total_keys(entry):
            self._conn.execute(
                "INSERT INTO spent_totals (scope, name, units) VALUES (?, ?, ?) "
                "ON CONFLICT (scope, name) DO UPDATE SET units = units + excluded.units",
                (scope, name, entry.cost_units),
            )
        size = entry.seq + 1
        signed = Checkpoint(self._origin, size, self._root(size)).sign(self._key)
        self._store_checkpoint(signed)
        return Receipt(
            entry_index=entry.seq,
            tree_size=size,
            inclusion_proof=tuple(tlog.inclusion_proof(entry.seq, size, self._complete_subtree)),
            checkpoint=signed,
            replayed=False,
            leaf_data=leaf_data,
        )

    def _store_leaf_nodes(self, index: int, leaf: bytes) -> None:
        level, idx, current = 0, index, leaf
        nodes = [(0, index, leaf)]
        while idx & 1:
            current = tlog.node_hash(
                self._complete_subtree((idx - 1) << level, idx << level), current
            )
            level += 1
            idx >>= 1
            nodes.append((level, idx, current))
        self._conn.executemany("INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)

    def _store_checkpoint(self, signed: SignedCheckpoint) -> None:
        self._conn.execute(
            "INSERT INTO checkpoints (size, time, root, signature) VALUES (?, ?, ?, ?)",
            (signed.checkpoint.size, now(), signed.checkpoint.root, signed.signature),
        )

    def probe_writable(self) -> None:
        """Take and release the write lock (LedgerBusy if another process keeps it)."""
        with self._lock, self._writer_turn():
            self._begin_immediate()
            self._rollback()

    # -- budget views

    def remaining_units(self, dataset: str, analyst: str | None = None) -> int:
        """What is left for `dataset`'s unit kind, as of the last commit (advisory: charging
        re-checks in its transaction); read on the snapshot reader, never waiting."""
        reads = self.snapshot_reader
        analyst_spent = reads.spent_units(analyst=analyst) if analyst is not None else 0
        return self.policy.remaining(dataset, reads.spent_units, analyst, analyst_spent)

    def startup_check(self) -> SelfCheckReport:
        """Before the first answer, in O(log n) (see privacy.ledger.resumable), plus the
        high-water mark. The full re-verification is `continue_verification`."""
        with self._lock:
            report = self._retry_busy(lambda: startup_check(self._conn, self._public_key))
        if self._trail is not None:
            self._trail.flush()
        return with_high_water(report, self._high_water, self, self._public_key)

    def continue_verification(
        self, should_stop: Callable[[], bool] | None = None
    ) -> SelfCheckReport:
        """Re-verify every entry after the verified-through mark (each entry, tree node,
        checkpoint root and signature; the totals at the end), moving the mark on."""
        return run_pass(self._path, self._public_key, self._record_mark, should_stop)

    def _record_mark(self, mark: VerifiedMark) -> None:
        signature = mark.signed_by(self._key)
        with self._write_transaction():
            store_mark(self._conn, mark, signature)

    def self_check(self) -> SelfCheckReport:
        """The start-up check, then the re-verification from the mark to the end: a node
        must not serve if it fails."""
        report = self.startup_check()
        return self.continue_verification() if report.ok else report

    def require_sound(self) -> None:
        report = self.self_check()
        if not report.ok:
            raise LedgerFault(
                f"the ledger at {self._path} failed its self-check: {report.problems[0]}"
            )
