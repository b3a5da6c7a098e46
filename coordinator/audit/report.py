"""The audit report: what the audit of each node found (models, stable JSON)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

REPORT_FORMAT: Literal["npcs.audit.v1"] = "npcs.audit.v1"

NodeVerdict = Literal["OK", "FAILED", "UNREACHABLE"]
"""FAILED: evidence of a broken or tampered ledger (or a node refusing to be audited).
UNREACHABLE: the node could not be contacted, so nothing about it is known."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetSpending(_Frozen):
    dataset: str
    spent_units: int
    spent_rho: str
    total_rho: str | None
    """The policy total the node publishes (None: the policy has no budget for it)."""
    charges: int


class UnitKindSpending(_Frozen):
    """One privacy-unit kind's spending: the sum of the charges on its datasets."""

    unit_kind: str
    datasets: tuple[str, ...]
    spent_units: int
    spent_rho: str
    total_rho: str | None
    """The per-unit-kind total the node publishes (None: no budget for this kind)."""
    charges: int
    spent_epsilon: str | None
    """Epsilon at `delta` of the spent rho, as the node computes it with OpenDP; None when
    the node's own figure for the spent rho differs from the audit's sum."""
    delta: str


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
    spending_known: bool = False
    """False when the audit stopped before summing the charges: spending is unknown."""
    unit_kind_spending: tuple[UnitKindSpending, ...] = ()
    """Per privacy-unit kind (empty for a node that publishes no per-person budgets)."""
    ledger_key_fingerprint: str = ""
    accepted_reset: str | None = None
    """`npcs audit --accept-reset`: which remembered checkpoint the node's new ledger
    replaced (its genesis entry names it), as a record."""
    spent_before_reset: tuple[DatasetSpending, ...] = ()
    """`--accept-reset` with `--archived-ledger`: what the archived ledger spent (per
    dataset, against today's policy totals)."""
    unit_kind_spent_before_reset: tuple[UnitKindSpending, ...] = ()
    """The same per privacy-unit kind."""


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
        return tuple(node.node for node in self.nodes if node.result == "FAILED")

    @property
    def unreachable_nodes(self) -> tuple[str, ...]:
        return tuple(node.node for node in self.nodes if node.result == "UNREACHABLE")
