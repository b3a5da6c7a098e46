"""Auditing nodes: every check against each node, concurrently; remember who passed.

A node's failures (refused calls, unreadable answers, broken ledgers) become findings in
its report, never exceptions; the checkpoints of nodes that pass are remembered in one
transaction, so the next audit proves each of those ledgers only grew.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from coordinator.audit.archive_checks import accept_with_archive, lifetime_warnings
from coordinator.audit.charge_checks import check_charges, check_spending
from coordinator.audit.findings import Findings, StopAudit
from coordinator.audit.ledger_checks import (
    check_accepted_reset,
    check_remembered,
    fetch_entries,
    genesis_reset,
    rewrite_message,
    signed_checkpoint,
)
from coordinator.audit.report import (
    AuditReport,
    DatasetSpending,
    NodeAudit,
    NodeVerdict,
    UnitKindSpending,
)
from coordinator.audit.unit_kind_checks import check_unit_kind_spending
from coordinator.checkpoints import CheckpointStore, RememberedCheckpoint
from coordinator.client import ClientCredentials, NodeClient, pinned_ledger_key
from coordinator.errors import NodeCallError
from coordinator.fanout import fan_out
from coordinator.partnership import NodeEntry, Partnership
from kernel.messages import NodeDescription, PublishedCheckpoint
from npcs.errors import WireError
from privacy import tlog
from privacy.ledger.entry import LedgerEntry

DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass
class _Facts:
    """What was established about a node so far (for the report)."""

    entries: int | None = None
    checkpoint: PublishedCheckpoint | None = None
    signed_requests_verified: int = 0
    spending: tuple[DatasetSpending, ...] = ()
    spending_known: bool = False
    unit_kind_spending: tuple[UnitKindSpending, ...] = ()
    unreachable: str | None = None
    """Why the node could not be contacted (then nothing about it is known)."""
    accepted_reset: str | None = None
    """The record of a ledger reset accepted with `--accept-reset`."""
    spent_before_reset: tuple[DatasetSpending, ...] = ()
    """With `--archived-ledger`: what the archived ledger spent."""
    unit_kind_spent_before_reset: tuple[UnitKindSpending, ...] = ()


UNREACHABLE_CODES = frozenset({"UNREACHABLE", "TLS", "DEADLINE_EXCEEDED", "UNAVAILABLE"})
"""Failures to contact a node: no evidence about its ledger either way."""


@dataclass(frozen=True)
class NodeOutcome:
    audit: NodeAudit
    verified_checkpoint: PublishedCheckpoint | None
    """The node's checkpoint, when the audit passed (to remember)."""

    @property
    def replaces_memory(self) -> bool:
        """A ledger reset accepted: the remembered checkpoint gives way to this one."""
        return self.verified_checkpoint is not None and self.audit.accepted_reset is not None


def audit_node(
    entry: NodeEntry,
    credentials: ClientCredentials,
    remembered: RememberedCheckpoint | None,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    accept_reset: bool = False,
    archived_ledger: Path | None = None,
) -> NodeOutcome:
    """Run every check against one node; never raises for what the node does wrong.

    With `accept_reset`, the node's ledger is audited as new, and must start with a
    genesis entry naming exactly the `remembered` checkpoint (which it then replaces),
    or, with the `archived_ledger`, a checkpoint of it that extends the remembered one.
    """
    findings = Findings()
    facts = _Facts()
    with NodeClient(entry, credentials, timeout=timeout) as client:
        try:
            if accept_reset and remembered is not None:
                replacing = _Replacing(remembered, archived_ledger)
                _run_checks(client, entry, None, findings, facts, replacing=replacing)
            else:
                _run_checks(client, entry, remembered, findings, facts)
        except NodeCallError as failure:
            reason = f"{failure.problem.code}: {failure.problem.reason}"
            if failure.problem.code in UNREACHABLE_CODES:
                facts.unreachable = reason
            else:
                findings.fail(reason)
        except StopAudit:
            pass
        except WireError as exc:
            findings.fail(
                f"the node's answer cannot be read ({exc}): it is broken or not an npcs "
                "node; ask its operator"
            )
    checkpoint = facts.checkpoint
    audit = NodeAudit(
        node=entry.name,
        address=entry.address,
        result=_verdict(findings, facts),
        problems=tuple(findings.problems) or ((facts.unreachable,) if facts.unreachable else ()),
        warnings=tuple(findings.warnings),
        entries=facts.entries,
        checkpoint_size=checkpoint.size if checkpoint else None,
        checkpoint_root=checkpoint.root.hex() if checkpoint else None,
        previous_size=remembered.size if remembered else None,
        previous_seen_at=remembered.seen_at if remembered else None,
        signed_requests_verified=facts.signed_requests_verified,
        spending=facts.spending,
        spending_known=facts.spending_known,
        unit_kind_spending=facts.unit_kind_spending,
        ledger_key_fingerprint=entry.ledger_key_fingerprint,
        accepted_reset=facts.accepted_reset if not findings.problems else None,
        spent_before_reset=facts.spent_before_reset,
        unit_kind_spent_before_reset=facts.unit_kind_spent_before_reset,
    )
    passed = audit.result == "OK"
    return NodeOutcome(audit, checkpoint if passed else None)


@dataclass(frozen=True)
class _Replacing:
    """`--accept-reset`: the remembered checkpoint to replace, and the archived ledger
    the operator handed over (`--archived-ledger`), if any."""

    remembered: RememberedCheckpoint
    archived_ledger: Path | None


def _verdict(findings: Findings, facts: _Facts) -> NodeVerdict:
    if findings.problems:
        return "FAILED"
    return "UNREACHABLE" if facts.unreachable else "OK"


def _run_checks(
    client: NodeClient,
    entry: NodeEntry,
    remembered: RememberedCheckpoint | None,
    findings: Findings,
    facts: _Facts,
    *,
    replacing: _Replacing | None = None,
) -> None:
    description = client.describe(unit_kind_epsilon=True)
    if not client.serving():
        findings.fail(
            "the node reports NOT_SERVING: its ledger failed the node's own start-up "
            "self-check (for example spent totals that disagree with the charges), so it "
            "answers no query; ask its operator to run `npcs-node ledger verify`"
        )
    if description.node_name != entry.name:
        findings.fail(
            f"the node at {entry.address} calls itself {description.node_name!r}, not "
            f"{entry.name!r}: check the address in partnership.toml"
        )
    try:
        key = pinned_ledger_key(description, entry)
    except ValueError as exc:
        raise findings.stop(str(exc)) from exc
    published, consistency = client.get_checkpoint(remembered.size if remembered else 0)
    checkpoint = signed_checkpoint(published, key, entry, findings)
    facts.checkpoint = checkpoint
    entries = fetch_entries(client, checkpoint.size, findings)
    facts.entries = len(entries)
    tree = tlog.InMemoryTree([item.leaf_hash() for item in entries])
    if tree.root() != checkpoint.root:
        findings.fail(rewrite_message(client, tree, checkpoint, entries))
    if remembered is not None:
        check_remembered(tree, checkpoint, consistency, remembered, key, findings)
    if replacing is not None:
        _check_reset(
            replacing,
            entries=entries,
            checkpoint=checkpoint,
            key=key,
            node=entry.name,
            description=description,
            findings=findings,
            facts=facts,
        )
    facts.signed_requests_verified = check_charges(entries, entry.name, findings)
    facts.spending = check_spending(entries, description.policy, findings)
    facts.unit_kind_spending = check_unit_kind_spending(entries, description, findings)
    facts.spending_known = True
    findings.warnings += lifetime_warnings(facts.spent_before_reset, facts.spending)
    findings.warnings += lifetime_warnings(
        facts.unit_kind_spent_before_reset, facts.unit_kind_spending
    )


def _check_reset(
    replacing: _Replacing,
    *,
    entries: Sequence[LedgerEntry],
    checkpoint: PublishedCheckpoint,
    key: Ed25519PublicKey,
    node: str,
    description: NodeDescription,
    findings: Findings,
    facts: _Facts,
) -> None:
    """`--accept-reset`: the genesis entry names the remembered checkpoint, or the
    archived ledger (`--archived-ledger`) bridges the two; the record goes in `facts`."""
    reset = genesis_reset(entries, findings)
    if reset is None:
        return
    if replacing.archived_ledger is None:
        facts.accepted_reset = check_accepted_reset(
            reset, checkpoint, replacing.remembered, key, findings
        )
        return
    accepted = accept_with_archive(
        replacing.archived_ledger,
        reset=reset,
        remembered=replacing.remembered,
        checkpoint=checkpoint,
        key=key,
        node=node,
        description=description,
        findings=findings,
    )
    if accepted is not None:
        facts.accepted_reset, history = accepted
        facts.spent_before_reset = history.spending
        facts.unit_kind_spent_before_reset = history.unit_kind_spending


def audit_partnership(
    partnership: Partnership,
    credentials: ClientCredentials,
    *,
    auditor: str,
    memory: CheckpointStore,
    nodes: Sequence[NodeEntry] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    accept_resets: Collection[str] = (),
    archived_ledgers: Mapping[str, Path] | None = None,
) -> AuditReport:
    """Audit nodes concurrently; remember the checkpoints of those that pass (replacing
    the remembered one of an `accept_resets` node whose reset checked out, with its
    archived ledger from `archived_ledgers` when given)."""
    selected = tuple(nodes) if nodes is not None else partnership.nodes
    remembered = memory.remembered(partnership.name)
    outcomes = fan_out(
        selected,
        lambda entry: audit_node(
            entry,
            credentials,
            remembered.get(entry.name),
            timeout=timeout,
            accept_reset=entry.name in accept_resets,
            archived_ledger=(archived_ledgers or {}).get(entry.name),
        ),
    )
    now = datetime.now(UTC).isoformat(timespec="seconds")
    memory.remember(
        partnership.name,
        [
            RememberedCheckpoint.seen(
                name,
                outcome.verified_checkpoint,
                key_fingerprint=partnership.node(name).ledger_key_fingerprint,
                seen_at=now,
            )
            for name, outcome in outcomes.items()
            if outcome.verified_checkpoint is not None
        ],
        replacing=[name for name, outcome in outcomes.items() if outcome.replaces_memory],
    )
    return AuditReport(
        partnership=partnership.name,
        auditor=auditor,
        created_at=now,
        nodes=tuple(outcome.audit for outcome in outcomes.values()),
    )
