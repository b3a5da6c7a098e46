"""What node and clients tell each other, as domain values (no protobuf).

The node's engine returns these, the node's servicer and the coordinator's client
convert them to and from protobuf (`npcs.serde_*`), and the coordinator works with
them. `RequestFieldError` is the engine's way to refuse a request field; the servicer
answers it with INVALID_ARGUMENT naming the field, as it does for a message that
cannot be parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kernel.signing import SignedRequest
from privacy.budget import format_rho
from privacy.ledger.entry import LedgerEntry, Receipt
from privacy.population import PopulationTable
from privacy.query import QuerySpec
from privacy.release import Release
from privacy.schema import Schema
from privacy.tlog import SignedCheckpoint


class FieldError(ValueError):
    """A value that is wrong, named by its dotted path in the message it came in
    (such as ``query.filters[1].date_range.end``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RequestFieldError(FieldError):
    """A request field the node refuses (answered with INVALID_ARGUMENT naming it)."""


@dataclass(frozen=True)
class QueryCall:
    """A parsed QueryRequest: the query and the analyst's signature over it."""

    spec: QuerySpec
    signed: SignedRequest


@dataclass(frozen=True)
class PublishedCheckpoint:
    """A signed checkpoint as a node publishes it, with the fingerprint of the key said
    to sign it (check the signature before trusting either)."""

    signed: SignedCheckpoint
    key_fingerprint: str

    @property
    def size(self) -> int:
        return self.signed.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.signed.checkpoint.root


@dataclass(frozen=True)
class ConsistencyFromRemembered:
    """A node's RFC 6962 proof that the checkpoint it sent with it extends the tree of
    `old_size` entries the client remembers (`coordinator.checkpoints` checks it)."""

    old_size: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class QueryAnswer:
    """A node's answer as the client received it: release bytes and the ledger receipt.

    `release_bytes` are the canonical Release bytes exactly as the node's ledger stored
    them; keep them (not a re-serialisation) to compare with the ledger later.
    """

    release_bytes: bytes
    entry_index: int
    tree_size: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: PublishedCheckpoint
    replayed: bool
    leaf_data: bytes
    consistency: ConsistencyFromRemembered | None = None
    """From the size the client remembered to `checkpoint` (None: none asked or given)."""

    def release(self) -> Release:
        """The parsed release (parsed once: the bytes never change)."""
        return self._release

    @cached_property
    def _release(self) -> Release:
        return Release.from_bytes(self.release_bytes)

    def receipt(self) -> Receipt:
        """The ledger receipt: `.verify(ledger_public_key, answer.release_bytes)` checks it."""
        return Receipt(
            entry_index=self.entry_index,
            tree_size=self.tree_size,
            inclusion_proof=self.inclusion_proof,
            checkpoint=self.checkpoint.signed,
            replayed=self.replayed,
            leaf_data=self.leaf_data,
        )

    def verify(self, ledger_public_key: Ed25519PublicKey) -> bool:
        """The checkpoint is signed by the node's ledger key, the recorded entry holds
        exactly these release bytes, and it is included in the checkpoint's tree."""
        return self.receipt().verify(ledger_public_key, self.release_bytes)

    def verified_entry(
        self, ledger_public_key: Ed25519PublicKey, *, signature_checked: bool = False
    ) -> LedgerEntry | None:
        """The recorded ledger entry if the receipt verifies (`verify`), else None;
        `signature_checked`: see `Receipt.verified_entry`."""
        return self.receipt().verified_entry(
            ledger_public_key, self.release_bytes, signature_checked=signature_checked
        )


@dataclass(frozen=True)
class ExpectedValue:
    """One released value's expected noise: its distribution, scale and 95% half-width."""

    name: str
    distribution: str
    scale: float
    ci_half_width: float


@dataclass(frozen=True)
class PreviewResult:
    """What a query would cost and how accurate it would be; nothing is charged."""

    cost_units: int
    expected: tuple[ExpectedValue, ...]
    remaining_units: int

    @property
    def cost_rho(self) -> str:
        return format_rho(self.cost_units)


@dataclass(frozen=True)
class PolicyView:
    """The node's budget policy as published to the partnership."""

    datasets: tuple[str, ...]
    total_rho_per_dataset: Mapping[str, str]
    """For clients from before per-person budgets: each dataset's unit kind's total (a
    total shared with the other datasets of that kind, not a budget of its own)."""
    max_rho_per_query: str
    analyst_cap_rho: str | None
    delta: str
    total_rho_per_unit_kind: Mapping[str, str] = field(default_factory=dict)
    """One budget per kind of person (child, staff); empty from a node that predates it."""


@dataclass(frozen=True)
class UnitKindBudget:
    """One privacy-unit kind's budget at a node, as `Describe` publishes it."""

    unit_kind: str
    datasets: tuple[str, ...]
    total_rho: str
    """"" when the node has no budget for this kind."""
    spent_units: int
    remaining_units: int
    """For the caller (within an analyst's cap); node-wide for other roles."""
    spent_epsilon: str
    total_epsilon: str
    """Epsilon at the partnership's delta of the spent and the total rho (OpenDP's map)."""


@dataclass(frozen=True)
class NodeDescription:
    """Everything `Describe` tells a caller about a node."""

    node_name: str
    partnership: str
    schema: Schema
    policy: PolicyView
    remaining_units: Mapping[str, int]
    """The caller's remaining budget per dataset, micro-rho (empty for non-analysts)."""
    child_population: Mapping[str, int]
    ledger_public_key_pem: str
    latest_checkpoint: PublishedCheckpoint | None
    opendp_version: str
    group_populations: PopulationTable | None = None
    """Public child population by year and group, with its source (privacy.population)."""
    consistency: ConsistencyFromRemembered | None = None
    """From the size the client remembered to `latest_checkpoint` (None: none given)."""
    unit_kind_budgets: tuple[UnitKindBudget, ...] = ()
    """Per privacy-unit kind; empty from a node that predates per-person budgets."""


@dataclass(frozen=True)
class BudgetShortfall:
    """Why a query was refused for budget: which budget, and how far short."""

    dataset: str
    scope: str
    requested_units: int
    remaining_units: int

    def describe(self) -> str:
        if self.scope == "unit_kind":
            return (
                f"the budget of the people in {self.dataset!r} (one per person, shared with "
                f"the other datasets about them) has {format_rho(self.remaining_units)} rho "
                f"left, the query needs {format_rho(self.requested_units)}: ask for less "
                "(a smaller rho or a looser accuracy)"
            )
        return (
            f"the {self.scope} budget for {self.dataset!r} has {format_rho(self.remaining_units)} "
            f"rho left, the query needs {format_rho(self.requested_units)}: ask for less "
            "(a smaller rho or a looser accuracy)"
        )
