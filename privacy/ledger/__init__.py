"""The node's privacy-budget ledger: charge before release, tamper-evident, crash-safe.

One SQLite file on local disk (WAL, synchronous=FULL). Every answer the node releases
is one row, inserted in the same `BEGIN IMMEDIATE` transaction that checked the budget
and ran the release, and only returned after that transaction committed. The rows are
the leaves of an RFC 6962 Merkle tree whose complete subtrees are stored in SQLite (an
append touches O(log n) rows, proofs read stored hashes), and every append signs a new
checkpoint with the node's Ed25519 ledger key.

Several processes may write one ledger file: all authoritative state is in SQLite.
Importing any of these modules is cheap and never loads OpenDP. Import each name from
the module that defines it:

- `entry`: the charge, entry and receipt value types and the entry's canonical JSON;
- `sqlschema`: the tables, the connection's pragmas and the SQLITE_BUSY retry;
- `reader`: `LedgerReader`, entries, totals, checkpoints and Merkle proofs;
- `verifier`: the self-check that recomputes the tree, the roots and the totals;
- `writer`: `Ledger` and `charge_and_release`, the only way to spend;
- `errors`: what the ledger raises on purpose.
"""
