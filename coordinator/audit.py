"""Auditing nodes' privacy-budget ledgers from outside (`npcs audit`).

For each node, as an auditor identity over mTLS, using only what the node serves and
what the auditor remembered from earlier audits:

1. Describe: the node's ledger key must be the one pinned in partnership.toml.
2. GetCheckpoint: the latest checkpoint must carry a valid signature of that key.
3. GetLedger: every entry, in pages; each entry's structured fields must be exactly its
   leaf data, and the recomputed RFC 6962 root over all leaves must equal the signed
   root. If it does not, consistency proofs locate the first entry that differs.
4. The checkpoint remembered from the previous audit must be a prefix of today's ledger
   (same root over the first `size` entries, and the node's consistency proof must
   verify): a smaller ledger was truncated, a different prefix was rewritten or forked.
5. Every charge must be authorised and coherent: the analyst's signed request verifies
   and names this node, the query id and the query hash; the recorded release names the
   same query and cost. Spent budget per dataset (the sum of charges) must lie within
   the policy totals the node publishes.

A node that passes has its checkpoint remembered (in the user's data directory), so the
next audit proves the ledger only grew. A node that fails keeps its last good one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError

from coordinator.client import ClientCredentials, NodeClient, pinned_ledger_key
from coordinator.errors import NodeCallError
from coordinator.fanout import fan_out
from coordinator.partnership import NodeEntry, Partnership
from coordinator.results import default_data_dir
from kernel.signing import RequestEnvelope, verify_signature
from npcs import wire
from npcs.v1 import node_pb2 as pb
from privacy import tlog
from privacy.budget import format_rho
from privacy.ledger import LedgerEntry
from privacy.policy import BudgetPolicy
from privacy.release import Release

REPORT_FORMAT: Literal["npcs.audit.v1"] = "npcs.audit.v1"
STATE_FORMAT = "npcs.audit-checkpoints.v1"
STATE_FILE_NAME = "audit_checkpoints.json"
DEFAULT_TIMEOUT_SECONDS = 30.0

NodeVerdict = Literal["OK", "FAILED"]


# --- the report --------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetSpending(_Frozen):
    dataset: str
    spent_units: int
    spent_rho: str
    total_rho: str | None
    """The policy total the node publishes (None: the policy has no budget for it)."""
    charges: int


class NodeAudit(_Frozen):
    """What the audit of one node found."""

    node: str
    address: str
    result: NodeVerdict
    problems: tuple[str, ...] = ()
    """Each one fails the node."""
    warnings: tuple[str, ...] = ()
    """Worth a look, but not proof of a broken ledger."""
    entries: int | None = None
    checkpoint_size: int | None = None
    checkpoint_root: str | None = None
    """Hex root of the checkpoint the node signed."""
    previous_size: int | None = None
    """Size of the checkpoint remembered from the last audit that passed."""
    previous_seen_at: str | None = None
    signed_requests_verified: int = 0
    spending: tuple[DatasetSpending, ...] = ()
    ledger_key_fingerprint: str = ""


class AuditReport(_Frozen):
    format: Literal["npcs.audit.v1"] = REPORT_FORMAT
    partnership: str
    auditor: str
    created_at: str
    nodes: tuple[NodeAudit, ...]

    @property
    def ok(self) -> bool:
        return all(node.result == "OK" for node in self.nodes)

    @property
    def failed_nodes(self) -> tuple[str, ...]:
        return tuple(node.node for node in self.nodes if node.result != "OK")


# --- remembered checkpoints ----------------------------------------------------------------


@dataclass(frozen=True)
class RememberedCheckpoint:
    origin: str
    size: int
    root: bytes
    signature: bytes
    key_fingerprint: str
    seen_at: str

    @property
    def signed(self) -> tlog.SignedCheckpoint:
        return tlog.SignedCheckpoint(
            tlog.Checkpoint(self.origin, self.size, self.root), self.signature
        )

    def to_json(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "signature": self.signature.hex(),
            "key_fingerprint": self.key_fingerprint,
            "seen_at": self.seen_at,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> RememberedCheckpoint:
        return cls(
            origin=str(raw["origin"]),
            size=int(str(raw["size"])),
            root=bytes.fromhex(str(raw["root"])),
            signature=bytes.fromhex(str(raw["signature"])),
            key_fingerprint=str(raw["key_fingerprint"]),
            seen_at=str(raw["seen_at"]),
        )


class AuditStateError(ValueError):
    """The remembered-checkpoint file is damaged."""


class AuditMemory:
    """The auditor's remembered checkpoints: one JSON file, per partnership and node."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, RememberedCheckpoint]] = self._load()

    @classmethod
    def default_path(cls) -> Path:
        return default_data_dir() / STATE_FILE_NAME

    def _load(self) -> dict[str, dict[str, RememberedCheckpoint]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise AuditStateError(
                f"cannot read remembered checkpoints {self.path}: {exc}; restore it from a "
                "backup (deleting it loses the proof that ledgers only grew)"
            ) from exc
        if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
            raise AuditStateError(f"{self.path} is not an npcs audit checkpoint file")
        try:
            return {
                partnership: {
                    node: RememberedCheckpoint.from_json(checkpoint)
                    for node, checkpoint in nodes.items()
                }
                for partnership, nodes in raw["partnerships"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AuditStateError(f"{self.path} is damaged: {exc}") from exc

    def get(self, partnership: str, node: str) -> RememberedCheckpoint | None:
        return self._data.get(partnership, {}).get(node)

    def remember(self, partnership: str, node: str, checkpoint: RememberedCheckpoint) -> None:
        self._data.setdefault(partnership, {})[node] = checkpoint

    def save(self) -> None:
        """Atomically (temp file + rename), so a crash never loses the old memory."""
        body = {
            "format": STATE_FORMAT,
            "partnerships": {
                partnership: {node: cp.to_json() for node, cp in sorted(nodes.items())}
                for partnership, nodes in sorted(self._data.items())
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)


# --- talking to a node as an auditor ---------------------------------------------------------


class AuditClient(NodeClient):
    """The node client plus the auditor-only calls (same channel, credentials, deadlines)."""

    def __enter__(self) -> AuditClient:
        return self

    def get_ledger(self, start: int, end: int) -> tuple[list[pb.LedgerEntry], wire.WireCheckpoint]:
        response = self._call("GetLedger", pb.GetLedgerRequest(start=start, end=end))
        assert isinstance(response, pb.GetLedgerResponse)
        return list(response.entries), wire.checkpoint_from_proto(response.checkpoint)

    def get_consistency_proof(
        self, old_size: int, new_size: int
    ) -> tuple[list[bytes], wire.WireCheckpoint]:
        response = self._call(
            "GetConsistencyProof",
            pb.GetConsistencyProofRequest(old_size=old_size, new_size=new_size),
        )
        assert isinstance(response, pb.GetConsistencyProofResponse)
        return list(response.proof), wire.checkpoint_from_proto(response.checkpoint)


# --- auditing one node -------------------------------------------------------------------------


class _Stop(Exception):  # noqa: N818  (control flow: nothing further can be checked)
    """A finding that makes the remaining checks meaningless."""


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def stop(self, message: str) -> _Stop:
        self.problems.append(message)
        return _Stop(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@dataclass
class _Facts:
    """What was established about a node so far (for the report)."""

    entries: int | None = None
    checkpoint: wire.WireCheckpoint | None = None
    previous: RememberedCheckpoint | None = None
    signed_requests_verified: int = 0
    spending: tuple[DatasetSpending, ...] = ()


@dataclass(frozen=True)
class NodeOutcome:
    audit: NodeAudit
    verified_checkpoint: wire.WireCheckpoint | None
    """The node's checkpoint, when the audit passed (to remember)."""


def audit_node(
    entry: NodeEntry,
    credentials: ClientCredentials,
    remembered: RememberedCheckpoint | None,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> NodeOutcome:
    """Run every check against one node; never raises for what the node does wrong."""
    findings = _Findings()
    facts = _Facts(previous=remembered)
    with AuditClient(entry, credentials, timeout=timeout) as client:
        try:
            _run_checks(client, entry, remembered, findings, facts)
        except NodeCallError as failure:
            findings.fail(f"{failure.problem.code}: {failure.problem.reason}")
        except (_Stop, wire.WireError):
            pass
    checkpoint = facts.checkpoint
    audit = NodeAudit(
        node=entry.name,
        address=entry.address,
        result="FAILED" if findings.problems else "OK",
        problems=tuple(findings.problems),
        warnings=tuple(findings.warnings),
        entries=facts.entries,
        checkpoint_size=checkpoint.size if checkpoint else None,
        checkpoint_root=checkpoint.root.hex() if checkpoint else None,
        previous_size=remembered.size if remembered else None,
        previous_seen_at=remembered.seen_at if remembered else None,
        signed_requests_verified=facts.signed_requests_verified,
        spending=facts.spending,
        ledger_key_fingerprint=entry.ledger_key_fingerprint,
    )
    return NodeOutcome(audit, None if findings.problems else checkpoint)


def _run_checks(
    client: AuditClient,
    entry: NodeEntry,
    remembered: RememberedCheckpoint | None,
    findings: _Findings,
    facts: _Facts,
) -> None:
    description = client.describe()
    if description.node_name != entry.name:
        findings.fail(
            f"the node at {entry.address} calls itself {description.node_name!r}, not "
            f"{entry.name!r}: check the address in partnership.toml"
        )
    try:
        key = pinned_ledger_key(description, entry)
    except ValueError as exc:
        raise findings.stop(str(exc)) from exc
    checkpoint = _signed_checkpoint(client.get_checkpoint(), key, entry, findings)
    facts.checkpoint = checkpoint
    entries = _fetch_entries(client, checkpoint.size, findings)
    facts.entries = len(entries)
    tree = tlog.InMemoryTree([item.leaf_hash() for item in entries])
    if tree.root() != checkpoint.root:
        findings.fail(_rewrite_message(client, tree, checkpoint, entries))
    if remembered is not None:
        _check_remembered(client, tree, checkpoint, remembered, key, findings)
    facts.signed_requests_verified = _check_charges(entries, entry.name, findings)
    facts.spending = _check_spending(entries, description.policy, findings)


def _signed_checkpoint(
    checkpoint: wire.WireCheckpoint,
    key: Ed25519PublicKey,
    entry: NodeEntry,
    findings: _Findings,
) -> wire.WireCheckpoint:
    if checkpoint.key_fingerprint not in ("", entry.ledger_key_fingerprint):
        findings.fail(
            f"the checkpoint says it was signed by key {checkpoint.key_fingerprint[:16]}..., "
            "not the pinned ledger key"
        )
    if not checkpoint.signed.verify(key):
        raise findings.stop(
            f"the latest checkpoint (size {checkpoint.size}) is not signed by the node's "
            "pinned ledger key: it was forged or altered"
        )
    return checkpoint


def _fetch_entries(client: AuditClient, size: int, findings: _Findings) -> list[LedgerEntry]:
    """Entries [0, size) in pages; each must parse and agree with its own leaf data."""
    entries: list[LedgerEntry] = []
    while len(entries) < size:
        page, _ = client.get_ledger(len(entries), size)
        if not page:
            raise findings.stop(
                f"the node signed a ledger of {size} entries but serves only {len(entries)}"
            )
        for message in page:
            index = len(entries)
            if message.seq != index:
                raise findings.stop(
                    f"entry {index} is missing: the node served entry {message.seq} in its place"
                )
            try:
                entries.append(wire.ledger_entry_from_proto(message))
            except wire.WireError as exc:
                raise findings.stop(f"entry {index}: {exc}") from exc
    return entries


def _rewrite_message(
    client: AuditClient,
    tree: tlog.InMemoryTree,
    checkpoint: wire.WireCheckpoint,
    entries: Sequence[LedgerEntry],
) -> str:
    size = checkpoint.size
    message = (
        f"the {size} ledger entries do not hash to the root the node signed at size {size}: "
        "entries were changed after they were recorded"
    )
    first = _first_changed_entry(client, tree, checkpoint)
    if first is None:
        return message
    changed = entries[first]
    return (
        f"{message}; the first changed entry is {first} (query_id {changed.query_id}, "
        f"dataset {changed.dataset}, analyst {changed.analyst})"
    )


def _first_changed_entry(
    client: AuditClient, tree: tlog.InMemoryTree, checkpoint: wire.WireCheckpoint
) -> int | None:
    """Binary search with the node's consistency proofs for the smallest prefix whose
    recomputed root the signed tree does not extend; its last entry is the first change.

    Best effort: the proofs come from the node's stored tree, so a node that rewrote
    that too makes the named entry only a hint (the failure itself stands regardless).
    """
    size = checkpoint.size
    low, high = 1, size
    while low < high:
        middle = (low + high) // 2
        try:
            proof, _ = client.get_consistency_proof(middle, size)
        except NodeCallError:
            return None
        if tlog.verify_consistency(middle, size, tree.root(middle), checkpoint.root, proof):
            low = middle + 1
        else:
            high = middle
    return low - 1


def _check_remembered(  # noqa: PLR0917 - the checks share all of these
    client: AuditClient,
    tree: tlog.InMemoryTree,
    checkpoint: wire.WireCheckpoint,
    remembered: RememberedCheckpoint,
    key: Ed25519PublicKey,
    findings: _Findings,
) -> None:
    when = f"at the audit of {remembered.seen_at}"
    if not remembered.signed.verify(key):
        findings.warn(
            f"the checkpoint remembered {when} is not signed by the current ledger key "
            "(the key was replaced, or the remembered file was edited)"
        )
    if remembered.origin != checkpoint.signed.checkpoint.origin:
        findings.fail(
            f"the ledger's origin is now {checkpoint.signed.checkpoint.origin!r}, it was "
            f"{remembered.origin!r} {when}: the node started a new ledger"
        )
    if remembered.size > checkpoint.size:
        findings.fail(
            f"the ledger shrank from {remembered.size} entries {when} to {checkpoint.size}: "
            "entries were removed (truncated or forked ledger)"
        )
        return
    if remembered.size == 0:
        return
    if tree.root(remembered.size) != remembered.root:
        findings.fail(
            f"the first {remembered.size} entries differ from the ledger signed {when}: "
            "the ledger was rewritten or forked"
        )
    proof, _ = client.get_consistency_proof(remembered.size, checkpoint.size)
    if not tlog.verify_consistency(
        remembered.size, checkpoint.size, remembered.root, checkpoint.root, proof
    ):
        findings.fail(
            f"the node's consistency proof from size {remembered.size} ({when}) to "
            f"{checkpoint.size} does not verify: its signed history forked"
        )


def _check_charges(entries: Iterable[LedgerEntry], node: str, findings: _Findings) -> int:
    """Per-entry coherence; returns how many signed requests verified."""
    verified = 0
    for entry in entries:
        where = f"entry {entry.seq} (query_id {entry.query_id})"
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


def _signed_envelope(entry: LedgerEntry, where: str, findings: _Findings) -> RequestEnvelope | None:
    assert entry.signed_request is not None
    # Whatever fails (parsing, signature, envelope format), the failure is the finding.
    try:
        return verify_signature(wire.signed_request_from_bytes(entry.signed_request))
    except Exception as exc:
        findings.fail(f"{where}: the analyst's signed request does not verify ({exc})")
        return None


def _check_recorded_release(entry: LedgerEntry, node: str, where: str, findings: _Findings) -> None:
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


def _check_spending(
    entries: Sequence[LedgerEntry], policy: wire.PolicyView, findings: _Findings
) -> tuple[DatasetSpending, ...]:
    spent: dict[str, int] = {}
    charges: dict[str, int] = {}
    for entry in entries:
        spent[entry.dataset] = spent.get(entry.dataset, 0) + entry.cost_units
        charges[entry.dataset] = charges.get(entry.dataset, 0) + 1
    try:
        limits = BudgetPolicy.from_rho(policy.total_rho_per_dataset, policy.max_rho_per_query)
    except ValueError as exc:
        findings.fail(f"the node publishes a budget policy that cannot be read: {exc}")
        return ()
    for entry in entries:
        if entry.cost_units > limits.max_units_per_query:
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
        elif total is not None and used > limits.dataset_total(dataset):
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


# --- the whole partnership ---------------------------------------------------------------------


def audit_partnership(
    partnership: Partnership,
    credentials: ClientCredentials,
    *,
    auditor: str,
    memory: AuditMemory,
    nodes: Sequence[NodeEntry] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> AuditReport:
    """Audit nodes concurrently; remember the checkpoints of those that pass."""
    selected = tuple(nodes) if nodes is not None else partnership.nodes
    outcomes = fan_out(
        selected,
        lambda entry: audit_node(
            entry, credentials, memory.get(partnership.name, entry.name), timeout=timeout
        ),
    )
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for name, outcome in outcomes.items():
        checkpoint = outcome.verified_checkpoint
        if checkpoint is None:
            continue
        memory.remember(
            partnership.name,
            name,
            RememberedCheckpoint(
                origin=checkpoint.signed.checkpoint.origin,
                size=checkpoint.size,
                root=checkpoint.root,
                signature=checkpoint.signed.signature,
                key_fingerprint=partnership.node(name).ledger_key_fingerprint,
                seen_at=now,
            ),
        )
    memory.save()
    return AuditReport(
        partnership=partnership.name,
        auditor=auditor,
        created_at=now,
        nodes=tuple(outcome.audit for outcome in outcomes.values()),
    )


# --- rendering ---------------------------------------------------------------------------------


def _spending_text(node: NodeAudit) -> str:
    parts = [
        f"{row.dataset} {row.spent_rho}/{row.total_rho or '-'}"
        for row in node.spending
        if row.charges or row.spent_units
    ]
    return ", ".join(parts) or "nothing spent"


def _history_text(node: NodeAudit) -> str:
    if node.previous_size is None:
        return "first audit"
    remembered = f"size {node.previous_size} ({node.previous_seen_at})"
    if node.result == "OK":
        return f"extends {remembered}"
    return f"checked against remembered {remembered}"


def summary_lines(report: AuditReport) -> list[str]:
    """Plain text for the terminal: one line per node, then its problems and warnings."""
    lines = [
        f"Ledger audit of partnership {report.partnership} as {report.auditor} "
        f"({report.created_at})"
    ]
    width = max((len(node.node) for node in report.nodes), default=4)
    for node in report.nodes:
        entries = "-" if node.entries is None else str(node.entries)
        lines.append(
            f"  {node.result:<6} {node.node:<{width}}  {entries} entries, "
            f"{_history_text(node)}, {node.signed_requests_verified} signed requests verified, "
            f"spent rho {_spending_text(node)}"
        )
        lines += [f"         problem: {problem}" for problem in node.problems]
        lines += [f"         warning: {warning}" for warning in node.warnings]
    verdict = (
        "every ledger checks out" if report.ok else f"FAILED: {', '.join(report.failed_nodes)}"
    )
    lines.append(f"Result: {verdict}")
    return lines


def report_markdown(report: AuditReport) -> str:
    verdict = "all ledgers OK" if report.ok else f"FAILED ({', '.join(report.failed_nodes)})"
    lines = [
        f"# Ledger audit: partnership `{report.partnership}`",
        "",
        f"- auditor: `{report.auditor}`",
        f"- time: {report.created_at}",
        f"- result: **{verdict}**",
        "",
        "| node | result | entries | signed root | history | signed requests | spent rho / total |",
        "|---|---|---:|---|---|---:|---|",
    ]
    for node in report.nodes:
        root = f"`{node.checkpoint_root[:16]}...`" if node.checkpoint_root else "-"
        lines.append(
            f"| {node.node} | {node.result} | {node.entries if node.entries is not None else '-'} "
            f"| {root} | {_history_text(node)} | {node.signed_requests_verified} "
            f"| {_spending_text(node)} |"
        )
    for node in report.nodes:
        if not node.problems and not node.warnings:
            continue
        lines += ["", f"## {node.node}: {node.result}", ""]
        lines += [f"- problem: {problem}" for problem in node.problems]
        lines += [f"- warning: {warning}" for warning in node.warnings]
    lines += [
        "",
        "Checks per node: pinned ledger key; checkpoint signature; every entry's fields "
        "against its leaf data; the recomputed Merkle root against the signed root; the "
        "checkpoint remembered from the last audit is a prefix (root and consistency "
        "proof); each analyst's signed request; each recorded release; spent rho per "
        "dataset (sum of charges) within the published policy totals.",
    ]
    return "\n".join(lines) + "\n"


def report_json(report: AuditReport) -> str:
    body = report.model_dump(mode="json")
    body["ok"] = report.ok
    return json.dumps(body, indent=2) + "\n"


def write_report(report: AuditReport, path: Path) -> Path:
    """JSON when the file name ends in .json, else markdown."""
    text = report_json(report) if path.suffix.lower() == ".json" else report_markdown(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
