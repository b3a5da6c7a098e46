"""The node's query engine: validate -> check the signed request -> plan -> charge -> release.

Everything a servicer needs, without protobuf or gRPC: the servicer parses the request,
calls one method here, and maps the exceptions to status codes.

Order matters for privacy and for auditability:
1. validation reads only the request, the public schema and the node's policy;
2. the analyst's signed request must authorise this query at this node, and at least
   the cost the node will charge;
3. the plan's cost comes from OpenDP's privacy map;
4. `Ledger.charge_and_release` checks the budget, runs the release and records the
   charge in one transaction; the answer is returned only after the commit.

Health (`node.health`): the start-up check decides whether the node answers at all; a
failed background re-verification, or any ledger fault seen while serving, turns the
engine unhealthy until restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from importlib.metadata import version
from typing import ClassVar

from kernel.identity import Identity, Peer
from kernel.keyfiles import public_key_pem
from kernel.messages import (
    ExpectedValue,
    NodeDescription,
    PreviewResult,
    PublishedCheckpoint,
    RequestFieldError,
)
from kernel.signing import (
    ReplayGuard,
    RequestRejectedError,
    SignedRequest,
    admit_signed_request,
    signed_request_to_bytes,
)
from node.bounds_record import route_for
from node.health import LedgerHealth
from node.layout import NodePaths
from node.node_ledger import budget_policy
from node.plan_cache import PlanCache, PlanKey
from node.populations import load_populations
from node.settings import NodeSettings
from node.snapshot_checks import SnapshotIntegrityError
from node.store import DataStore, Snapshot
from node.unit_budgets import published_policy, published_unit_kind_budgets
from npcs.transport import MAX_LEDGER_PAGE_BYTES, MAX_RELEASE_BYTES
from privacy import tlog
from privacy.budget import format_rho
from privacy.ledger.entry import ChargeOutcome, ChargeRequest, LedgerEntry
from privacy.ledger.writer import Ledger
from privacy.plan import QueryPlan, plan_query
from privacy.query import QuerySpec
from privacy.schema import Schema
from privacy.validate import QueryLimits, ValidatedQuery, validate_query

log = logging.getLogger("npcs.node.engine")


class DatasetUnavailableError(LookupError):
    """The dataset exists in the schema but this node does not answer on it (NOT_FOUND)."""


class CostNotAuthorised(RequestRejectedError):  # noqa: N818  (like kernel.signing rejections)
    """The query costs more than the analyst's signed request authorises."""

    grpc_status: ClassVar[str] = "PERMISSION_DENIED"


class LedgerRangeError(LookupError):
    """A ledger range or tree size beyond the ledger (NOT_FOUND) or reversed."""


@dataclass(frozen=True)
class LedgerSlice:
    entries: tuple[LedgerEntry, ...]
    checkpoint: tlog.SignedCheckpoint


class QueryEngine:
    """One node's answers, charged to its ledger. Thread-safe: the ledger serialises charges."""

    def __init__(
        self,
        settings: NodeSettings,
        paths: NodePaths,
        schema: Schema,
        store: DataStore,
        ledger: Ledger,
        *,
        replay_guard: ReplayGuard | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._settings = settings
        self._paths = paths
        self._schema = (
            schema.with_local_domains({"county": tuple(settings.counties)})
            if settings.counties
            else schema
        )
        self._store = store
        self._ledger = ledger
        self._replay_guard = replay_guard or ReplayGuard()
        self._clock = clock
        self._health = LedgerHealth(ledger)
        self.plans = PlanCache()  # Preview's plan, reused by its Query (node.plan_cache)
        self._health.start()

    # -- health (see node.health)

    def stop_background_checks(self) -> None:
        """Stop the ledger's background re-verification (before the ledger closes)."""
        self._health.stop()

    def run_self_check(self) -> bool:
        """Run the ledger's full self-check; while it fails no query is answered."""
        return self._health.run_self_check()

    @property
    def healthy(self) -> bool:
        return self._health.healthy

    def add_health_listener(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(healthy)` whenever the engine's health is decided (e.g. to
        publish it on the gRPC health service). Called on the thread that decided it."""
        self._health.add_listener(listener)

    @property
    def schema(self) -> Schema:
        return self._schema

    @property
    def settings(self) -> NodeSettings:
        return self._settings

    @cached_property
    def opendp_version(self) -> str:
        return version("opendp")

    @cached_property
    def ledger_key_fingerprint(self) -> str:
        return tlog.key_fingerprint(self._ledger.public_key)

    @cached_property
    def ledger_public_key_pem(self) -> str:
        return public_key_pem(self._ledger.public_key).decode()

    def describe(self, caller: Identity, *, unit_kind_epsilon: bool = False) -> NodeDescription:
        analyst = caller.name if caller.role == "analyst" else None
        with self._health.watching("describe"):
            remaining = (
                {
                    dataset: self._ledger.remaining_units(dataset, analyst)
                    for dataset in self._settings.allowed_datasets
                }
                if analyst is not None
                else {}
            )
            unit_kind_budgets = published_unit_kind_budgets(
                self._ledger, analyst, with_epsilon=unit_kind_epsilon
            )
            checkpoint = self._ledger.snapshot_reader.latest_checkpoint()
        return NodeDescription(
            node_name=self._settings.name,
            partnership=self._settings.partnership,
            schema=self._schema,
            policy=published_policy(self._settings, self._ledger.policy, analyst),
            unit_kind_budgets=unit_kind_budgets,
            remaining_units=remaining,
            child_population=dict(self._settings.child_population),
            ledger_public_key_pem=self.ledger_public_key_pem,
            latest_checkpoint=PublishedCheckpoint(checkpoint, self.ledger_key_fingerprint),
            opendp_version=self.opendp_version,
            group_populations=load_populations(self._paths),
        )

    def preview(self, spec: QuerySpec, caller: Identity) -> PreviewResult:
        """Cost and expected accuracy of a query: no release, no charge, no signature."""
        self._health.require_healthy()
        plan, _ = self._plan(self._validate(spec))
        with self._health.watching("preview"):
            remaining = self._ledger.remaining_units(spec.dataset, caller.name)
        return PreviewResult(
            cost_units=plan.cost_units,
            expected=tuple(
                ExpectedValue(
                    name=value.name,
                    distribution=value.distribution.value,
                    scale=value.scale,
                    ci_half_width=value.half_width,
                )
                for value in plan.expected
            ),
            remaining_units=remaining,
        )

    def answer(self, spec: QuerySpec, caller: Peer, signed: SignedRequest) -> ChargeOutcome:
        """Release one DP answer, charged to the ledger before it is returned.

        Raises QueryValidationError, DatasetUnavailableError, RequestRejectedError (signature,
        replay, freshness, cost), BudgetExceeded, QueryIdConflict, LedgerFault.
        """
        self._health.require_healthy()
        canonical = spec.canonical_bytes()
        validated = self._validate(spec)
        with self._health.watching("query"):
            admitted = admit_signed_request(
                signed,
                caller=caller,
                node_name=self._settings.name,
                query_id=str(spec.query_id),
                canonical_query=canonical,
                replay_guard=self._replay_guard,
                is_recorded=lambda query_id: self._ledger.entry_by_query_id(query_id) is not None,
                now=self._clock() if self._clock else None,
            )
        plan, snapshot = self._plan(validated)
        if plan.cost_units > admitted.envelope.cost_rho_units:
            raise CostNotAuthorised(
                f"query {spec.query_id} costs rho {format_rho(plan.cost_units)} but the signed "
                f"request authorises at most rho {format_rho(admitted.envelope.cost_rho_units)}: "
                "preview the query and sign its cost"
            )
        charge = ChargeRequest(
            query_id=str(spec.query_id),
            analyst=caller.identity.name,
            dataset=spec.dataset,
            statistic=spec.statistic.value,
            canonical_query=canonical,
            query_hash=spec.query_hash(),
            purpose=spec.purpose,
            cost_units=plan.cost_units,
            mechanism_summary=plan.mechanism_summary(),
            opendp_version=self.opendp_version,
            snapshot_id=snapshot.snapshot_id,
            signed_request=signed_request_to_bytes(signed),
        )
        node_name, snapshot_id = self._settings.name, snapshot.snapshot_id
        # Suppression only flags small noisy counts (post-processing): same cost, same value.
        suppress_below = self._settings.suppress_counts_below
        with self._health.watching("query"):
            outcome = self._ledger.charge_and_release(
                charge,
                lambda: plan.release(
                    node=node_name, snapshot_id=snapshot_id, suppress_below=suppress_below
                ).to_bytes(),
                replay_only=admitted.is_recorded_retry,
            )
        log.info(
            "query answered",
            extra={
                "event": "query_answered",
                "query_id": str(spec.query_id),
                "analyst": caller.identity.name,
                "dataset": spec.dataset,
                "cost_units": plan.cost_units,
                "entry_index": outcome.receipt.entry_index,
                "replayed": outcome.receipt.replayed,
            },
        )
        return outcome

    def _check_servable(self, spec: QuerySpec) -> None:
        if (
            spec.dataset in self._schema.dataset_names
            and spec.dataset not in self._settings.allowed_datasets
        ):
            raise DatasetUnavailableError(
                f"node {self._settings.name!r} does not answer queries on {spec.dataset!r}; "
                f"it serves: {', '.join(self._settings.allowed_datasets) or 'nothing'}"
            )

    def _validate(self, spec: QuerySpec) -> ValidatedQuery:
        """Public checks only (request, schema, policy): nothing here reads data."""
        self._check_servable(spec)
        return validate_query(spec, self._schema, self._limits)

    def _plan(self, validated: ValidatedQuery) -> tuple[QueryPlan, Snapshot]:
        spec = validated.spec
        try:
            snapshot = self._store.verified_current(spec.dataset)
        except SnapshotIntegrityError as exc:
            log.error(
                "snapshot integrity", extra={"event": "snapshot_integrity", "dataset": spec.dataset}
            )
            raise DatasetUnavailableError(
                f"node {self._settings.name!r} will not answer on {spec.dataset!r}: its data "
                "snapshot failed an integrity check; the node's operator must restore it"
            ) from exc
        if snapshot is None:
            raise DatasetUnavailableError(
                f"node {self._settings.name!r} has no {spec.dataset!r} data loaded yet"
            )
        route = route_for(self._settings.query_route, snapshot.verified_bounds, validated.dataset)
        build = partial(plan_query, validated, self._schema, snapshot.path, route)
        return self.plans.plan(PlanKey(spec.query_hash(), snapshot.snapshot_id), build), snapshot

    @cached_property
    def _limits(self) -> QueryLimits:
        policy = budget_policy(self._settings.budget)
        return QueryLimits(
            max_rho_units_per_query=policy.max_units_per_query,
            max_release_bytes=MAX_RELEASE_BYTES,
        )

    # -- auditing (on the ledger's snapshot reader: never waits for a charge)

    def latest_checkpoint(self) -> tlog.SignedCheckpoint:
        with self._health.watching("checkpoint"):
            return self._ledger.snapshot_reader.latest_checkpoint()

    def ledger_slice(self, start: int, end: int) -> LedgerSlice:
        """Entries [start, end) (end 0: up to the latest checkpoint) and that checkpoint.

        A page: at most MAX_ENTRIES_PER_CALL entries and MAX_LEDGER_PAGE_BYTES on the wire
        (always at least one entry); the auditor asks again from the last index received.
        """
        reads = self._ledger.snapshot_reader
        with self._health.watching("ledger read"):
            checkpoint = reads.latest_checkpoint()
        size = checkpoint.checkpoint.size
        stop = size if end == 0 else end
        if start > stop:
            raise RequestFieldError("start", f"start {start} is after end {stop}")
        if stop > size:
            raise LedgerRangeError(f"the ledger has {size} entries; end {stop} is beyond it")
        stop = min(stop, start + MAX_ENTRIES_PER_CALL)
        page: list[LedgerEntry] = []
        page_bytes = 0
        with self._health.watching("ledger read"):
            for batch_start in range(start, stop, LEDGER_READ_BATCH):
                for entry in reads.entries(batch_start, min(stop, batch_start + LEDGER_READ_BATCH)):
                    entry_bytes = entry_wire_bytes_bound(entry)
                    if page and page_bytes + entry_bytes > MAX_LEDGER_PAGE_BYTES:
                        return LedgerSlice(tuple(page), checkpoint)
                    page.append(entry)
                    page_bytes += entry_bytes
        return LedgerSlice(tuple(page), checkpoint)

    def consistency_proof(
        self, old_size: int, new_size: int
    ) -> tuple[tuple[bytes, ...], tlog.SignedCheckpoint]:
        """RFC 9162 proof that the tree of new_size extends the one of old_size, with the
        node's signed checkpoint at new_size. A missing checkpoint row at new_size is the
        caller's NOT_FOUND (ask up to the latest size), not a node fault: the tree itself
        and the latest checkpoint, which the self-check verifies, are what proofs rest on."""
        reads = self._ledger.snapshot_reader
        with self._health.watching("consistency proof"):
            size = reads.latest_checkpoint().checkpoint.size
        if not 0 < old_size <= new_size:
            raise RequestFieldError(
                "old_size",
                f"no consistency proof from size {old_size} to {new_size}: "
                "need 0 < old_size <= new_size",
            )
        if new_size > size:
            raise LedgerRangeError(
                f"the ledger has {size} entries; new_size {new_size} is beyond it"
            )
        with self._health.watching("consistency proof"):
            checkpoint = reads.checkpoint_at(new_size)
        if checkpoint is None:
            log.warning(
                "no stored checkpoint at a requested size",
                extra={"event": "checkpoint_missing", "size": new_size},
            )
            raise LedgerRangeError(
                f"this node has no signed checkpoint at size {new_size}; ask for a proof up "
                f"to its latest checkpoint (size {size})"
            )
        with self._health.watching("consistency proof"):
            return reads.consistency_proof(old_size, new_size), checkpoint


MAX_ENTRIES_PER_CALL = 1000
"""Most entries in one GetLedger page (pages are also bounded by bytes)."""
LEDGER_READ_BATCH = 32
"""Entries read from SQLite at a time while filling a page (bounds the memory per call)."""


def entry_wire_bytes_bound(entry: LedgerEntry) -> int:
    """At least the bytes of the entry in a GetLedger response: its structured fields
    (no longer than the leaf data, which holds them all, bytes in base64), the leaf data
    itself, the leaf hash, and protobuf tags and lengths."""
    return 2 * len(entry.canonical_bytes()) + 256
