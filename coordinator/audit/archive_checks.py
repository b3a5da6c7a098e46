"""`npcs audit --accept-reset NODE --archived-ledger FILE`: the archived ledger closes the gap.

When the node answered queries after the auditor's last audit, the new ledger's genesis
entry names a later checkpoint than the remembered one. The archived ledger that
`npcs-node ledger reset` kept bridges the two: it must verify in full with the node's
pinned ledger key (`LedgerReader.verify`: entries, stored tree, every signature, totals),
hold the named checkpoint exactly, and extend the remembered one (its recomputed prefix
root). Its charges are audited like the live ledger's, and its spending is reported as
spent before the reset.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from coordinator.audit.charge_checks import check_charges, check_spending
from coordinator.audit.findings import Findings
from coordinator.audit.ledger_checks import REFUSED
from coordinator.audit.report import DatasetSpending, UnitKindSpending
from coordinator.audit.unit_kind_checks import check_unit_kind_spending
from coordinator.checkpoints import RememberedCheckpoint
from coordinator.ledger_resets import accepted_line, described
from kernel.messages import NodeDescription, PublishedCheckpoint
from privacy import tlog
from privacy.budget import format_rho, rho_to_units_floor
from privacy.ledger.entry import LedgerEntry
from privacy.ledger.errors import LedgerFault
from privacy.ledger.genesis import LedgerReset
from privacy.ledger.reader import LedgerReader
from privacy.tlog import SignedCheckpoint

MAX_SHOWN_PROBLEMS = 3


class ArchiveRefused(Exception):  # noqa: N818 - the refusal's reason, for the report
    """The archived ledger does not bridge the remembered and the named checkpoint."""


@dataclass(frozen=True)
class ArchivedHistory:
    """What the archived ledger established: its size and root, and what it spent."""

    size: int
    root: bytes
    spending: tuple[DatasetSpending, ...]
    unit_kind_spending: tuple[UnitKindSpending, ...]
    signed_requests_verified: int


def accept_with_archive(
    path: Path,
    *,
    reset: LedgerReset,
    remembered: RememberedCheckpoint,
    checkpoint: PublishedCheckpoint,
    key: Ed25519PublicKey,
    node: str,
    description: NodeDescription,
    findings: Findings,
) -> tuple[str, ArchivedHistory] | None:
    """The acceptance record and the archive's history, or None (a problem saying which
    check failed) when the archive does not bridge the remembered and named checkpoints.
    Problems of the archive's charges fail the node (so nothing is replaced)."""
    try:
        history, charges = check_archived_ledger(
            path,
            named=reset.previous,
            remembered=remembered,
            key=key,
            node=node,
            description=description,
        )
    except ArchiveRefused as exc:
        findings.fail(REFUSED.format(exc))
        return None
    findings.problems += charges.problems
    findings.warnings += charges.warnings
    bridge = (
        f"the archived ledger {path} ({history.size} entries, root {history.root.hex()}, "
        f"holding the checkpoint of {reset.previous.checkpoint.size} entries this ledger's "
        f"genesis entry names; {history.signed_requests_verified} signed requests verified)"
    )
    record = accepted_line(remembered, checkpoint.size, checkpoint.root, archive=bridge)
    return record, history


def check_archived_ledger(
    path: Path,
    *,
    named: SignedCheckpoint,
    remembered: RememberedCheckpoint,
    key: Ed25519PublicKey,
    node: str,
    description: NodeDescription,
) -> tuple[ArchivedHistory, Findings]:
    """The archived ledger's history and the findings of its charges (their problems
    and warnings prefixed "archived ledger: "); ArchiveRefused says which check failed."""
    if not named.verify(key):
        raise ArchiveRefused(
            "the genesis entry names a checkpoint whose signature does not verify with "
            "the node's pinned ledger key: it was forged or altered"
        )
    entries, size, root = _verified_entries(path, named, key)
    tree = tlog.InMemoryTree([entry.leaf_hash() for entry in entries])
    _require_extends(tree, named, remembered, path)
    charges = Findings()
    verified = check_charges(entries, node, charges)
    spending = check_spending(entries, description.policy, charges)
    # The node's own spent figures are of its live ledger, not of the archive.
    unit_kinds = check_unit_kind_spending(
        entries, replace(description, unit_kind_budgets=()), charges
    )
    findings = Findings(
        problems=[f"archived ledger: {problem}" for problem in charges.problems],
        warnings=[f"archived ledger: {warning}" for warning in charges.warnings],
    )
    return ArchivedHistory(size, root, spending, unit_kinds, verified), findings


def _verified_entries(
    path: Path, named: SignedCheckpoint, key: Ed25519PublicKey
) -> tuple[list[LedgerEntry], int, bytes]:
    """Every entry of the archive, once it verified in full and holds `named` exactly."""
    try:
        with LedgerReader.open_existing(path) as reader:
            report = reader.verify(key, all_signatures=True)
            if not report.ok:
                shown = "; ".join(report.problems[:MAX_SHOWN_PROBLEMS])
                raise ArchiveRefused(
                    f"the archived ledger {path} does not verify with the node's pinned "
                    f"ledger key ({shown}): it was altered, or it is not this node's "
                    "ledger; ask the operator for an untouched copy"
                )
            stored = reader.checkpoint_at(named.checkpoint.size)
            entries = reader.entries()
    except (LedgerFault, sqlite3.DatabaseError) as exc:
        raise ArchiveRefused(
            f"{path} cannot be read as a ledger ({exc}): ask the operator for a copy of "
            "the file in the node's ledger/archive/ folder that the reset named"
        ) from exc
    if stored is None or stored.checkpoint != named.checkpoint:
        name = named.checkpoint
        raise ArchiveRefused(
            f"the archived ledger {path} ({report.size} entries) does not hold the "
            f"checkpoint the genesis entry names ({name.size} entries, origin "
            f"{name.origin!r}, root {name.root.hex()}): it is not the ledger this reset "
            "archived; ask the operator for the file the reset named"
        )
    return entries, report.size, report.root


def _require_extends(
    tree: tlog.InMemoryTree,
    named: SignedCheckpoint,
    remembered: RememberedCheckpoint,
    path: Path,
) -> None:
    """The remembered checkpoint is a prefix of the named one: same origin, no larger,
    and the archive's first entries hash to the remembered root."""
    if remembered.origin != named.checkpoint.origin:
        raise ArchiveRefused(
            f"the archived ledger's origin is {named.checkpoint.origin!r}, the remembered "
            f"{described(remembered)} is of origin {remembered.origin!r}: it is another "
            "ledger"
        )
    if remembered.size > named.checkpoint.size:
        raise ArchiveRefused(
            f"the archived ledger {path} stops at {named.checkpoint.size} entries, before "
            f"the remembered {described(remembered)}: entries were lost before the reset; "
            "do not accept it, and tell the partnership"
        )
    if tree.root(remembered.size) != remembered.root:
        raise ArchiveRefused(
            f"the first {remembered.size} entries of the archived ledger {path} differ "
            f"from the remembered {described(remembered)}: the ledger was rewritten "
            "before the reset; do not accept it, and tell the partnership"
        )


def lifetime_warnings(
    before: Sequence[DatasetSpending | UnitKindSpending],
    after: Sequence[DatasetSpending | UnitKindSpending],
) -> list[str]:
    """Datasets or privacy-unit kinds whose spending before and after the reset together
    exceed their policy total: the reset started those budgets again."""
    spent_after = {_budget_name(row): row.spent_units for row in after}
    warnings = []
    for row in before:
        name = _budget_name(row)
        lifetime = row.spent_units + spent_after.get(name, 0)
        if row.total_rho is not None and lifetime > rho_to_units_floor(row.total_rho):
            warnings.append(
                f"{name} spent rho {format_rho(lifetime)} before and after the reset "
                f"together, more than its policy total {row.total_rho}: the reset started "
                "its budget again"
            )
    return warnings


def _budget_name(row: DatasetSpending | UnitKindSpending) -> str:
    if isinstance(row, DatasetSpending):
        return f"dataset {row.dataset!r}"
    return f"privacy-unit kind {row.unit_kind!r}"
