"""The charges: each one authorised and coherent, and their sums within the policy.

Per entry: the query hash is the hash of the recorded query, the recorded release names
this query, node and cost, and the analyst's signed request verifies and names this
node, query id and query hash. Per dataset: the sum of charges within the policy total
the node publishes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from pydantic import ValidationError

from coordinator.audit.findings import Findings
from coordinator.audit.report import DatasetSpending
from kernel.messages import PolicyView
from kernel.signing import RequestEnvelope, signed_request_from_bytes, verify_signature
from privacy.budget import format_rho, rho_to_units_floor
from privacy.ledger.entry import LedgerEntry
from privacy.ledger.genesis import GenesisFormatError, is_genesis, read_reset
from privacy.release import Release


def check_charges(entries: Iterable[LedgerEntry], node: str, findings: Findings) -> int:
    """Per-entry coherence; returns how many signed requests verified."""
    verified = 0
    for entry in entries:
        where = f"entry {entry.seq} (query_id {entry.query_id})"
        if is_genesis(entry):
            _report_reset(entry, where, findings)
            continue
        if hashlib.sha256(entry.canonical_query).hexdigest() != entry.query_hash:
            findings.fail(f"{where}: query_hash is not the hash of the recorded query")
        _check_recorded_release(entry, node, where, findings)
        if entry.signed_request is None:
            findings.warn(f"{where}: charged without a signed request from the analyst")
            continue
        envelope = _signed_envelope(entry, where, findings)
        if envelope is None:
            continue
        mismatches = [
            name
            for name, ok in (
                ("audience", envelope.audience == node),
                ("query_id", envelope.query_id == entry.query_id),
                ("query_hash", envelope.query_hash == entry.query_hash),
            )
            if not ok
        ]
        if mismatches:
            findings.fail(
                f"{where}: the analyst's signed request names a different "
                f"{', '.join(mismatches)}: the charge is not the one the analyst signed"
            )
            continue
        if entry.cost_units > envelope.cost_rho_units:
            findings.warn(
                f"{where}: charged rho {format_rho(entry.cost_units)}, more than the "
                f"rho {format_rho(envelope.cost_rho_units)} the analyst signed for"
            )
        verified += 1
    return verified


def _report_reset(entry: LedgerEntry, where: str, findings: Findings) -> None:
    """A genesis entry (`npcs-node ledger reset`): a warning naming the old ledger."""
    if entry.seq != 0:
        findings.fail(f"{where}: a ledger-reset genesis entry that is not the first entry")
        return
    try:
        reset = read_reset(entry)
    except GenesisFormatError as exc:
        findings.fail(f"{where}: {exc}")
        return
    previous = reset.previous.checkpoint
    findings.warn(
        f"{where}: this ledger was started anew by `npcs-node ledger reset` at "
        f"{entry.time[:19]}; it replaces a ledger whose last known checkpoint had size "
        f"{previous.size} (root {previous.root.hex()[:16]}...). Charges recorded there are "
        f"not in this ledger: ask the operator for the archived copy "
        f"({reset.archived_as or 'none: the old file was missing'}) and check it"
    )


def _signed_envelope(entry: LedgerEntry, where: str, findings: Findings) -> RequestEnvelope | None:
    assert entry.signed_request is not None
    # Whatever fails (parsing, signature, envelope format), the failure is the finding.
    try:
        return verify_signature(signed_request_from_bytes(entry.signed_request))
    except Exception as exc:
        findings.fail(f"{where}: the analyst's signed request does not verify ({exc})")
        return None


def _check_recorded_release(entry: LedgerEntry, node: str, where: str, findings: Findings) -> None:
    if entry.status != "released":
        return  # a charged but failed release: nothing was released, the charge stands
    try:
        release = Release.from_bytes(entry.answer)
    except ValidationError:
        findings.fail(f"{where}: the recorded answer is not a valid release")
        return
    if release.query_id != entry.query_id or release.node != node:
        findings.fail(f"{where}: the recorded release belongs to another query or node")
    if release.cost_units != entry.cost_units:
        findings.fail(
            f"{where}: the release says it cost {format_rho(release.cost_units)} rho but the "
            f"ledger charged {format_rho(entry.cost_units)}"
        )


def check_spending(
    entries: Sequence[LedgerEntry], policy: PolicyView, findings: Findings
) -> tuple[DatasetSpending, ...]:
    """Spent rho per dataset (the sum of its charges) against the published policy."""
    spent: dict[str, int] = {}
    charges: dict[str, int] = {}
    for entry in entries:
        spent[entry.dataset] = spent.get(entry.dataset, 0) + entry.cost_units
        charges[entry.dataset] = charges.get(entry.dataset, 0) + 1
    try:
        max_per_query = rho_to_units_floor(policy.max_rho_per_query)
        totals = {
            name: rho_to_units_floor(rho) for name, rho in policy.total_rho_per_dataset.items()
        }
    except ValueError as exc:
        findings.fail(f"the node publishes a budget policy that cannot be read: {exc}")
        return ()
    for entry in entries:
        if entry.cost_units > max_per_query:
            findings.warn(
                f"entry {entry.seq} (query_id {entry.query_id}) cost rho "
                f"{format_rho(entry.cost_units)}, above today's per-query maximum "
                f"{policy.max_rho_per_query} (was the policy changed?)"
            )
    rows = []
    for dataset in sorted(set(spent) | set(policy.total_rho_per_dataset)):
        total = policy.total_rho_per_dataset.get(dataset)
        used = spent.get(dataset, 0)
        if total is None and used:
            findings.fail(f"dataset {dataset!r} spent rho {format_rho(used)} but has no budget")
        elif total is not None and used > totals[dataset]:
            findings.fail(
                f"dataset {dataset!r} spent rho {format_rho(used)} (the sum of its "
                f"{charges.get(dataset, 0)} charges), more than its policy total {total}"
            )
        rows.append(
            DatasetSpending(
                dataset=dataset,
                spent_units=used,
                spent_rho=format_rho(used),
                total_rho=total,
                charges=charges.get(dataset, 0),
            )
        )
    return tuple(rows)
