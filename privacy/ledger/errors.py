"""What the ledger raises on purpose: a reused query_id, a charged release that failed,
and faults that make the ledger unusable."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of everything the ledger raises on purpose."""


class QueryIdConflict(LedgerError):  # noqa: N818 - name fixed by the node service contract
    """A query_id already charged for a different query body (a user error)."""


class ReleaseFailed(LedgerError):  # noqa: N818 - name fixed by the node service contract
    """The release raised after the budget was charged: the charge stands (counts as spent)."""


class LedgerFault(LedgerError):  # noqa: N818 - name fixed by the node service contract
    """The ledger is unusable: integrity or self-check failure, or the database failed."""


class LedgerBusy(LedgerFault):
    """Transient: another process held the database's write lock past the retry deadline.
    Nothing is wrong with the ledger; the node re-checks and serves again once it is free."""
