"""Ask several nodes at once; each node's failure is its own, the others still answer.

One thread per node (calls are I/O bound and nodes are few: tens, not thousands), each
with its own deadline per call. A query to one node is two calls, one after the other:
a Preview (the exact cost, which the analyst then signs) that also carries the node's
description (ledger key, public populations), then the signed Query.
Each call sends the size of the node's checkpoint the analyst remembers; a node whose
answer comes without a verified consistency proof from it (its ledger shrank or forked)
is refused (`coordinator.checkpoints.check_continuity`): problem code LEDGER_UNTRUSTED,
and its answer is withheld.
A Query that fails in a way a retry may fix (unreachable, deadline) is retried with the
same query_id: if the node had recorded it, it answers from its ledger, byte-identical
and without a new charge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from coordinator.checkpoints import (
    LedgerDiscontinuity,
    RememberedCheckpoint,
    check_continuity,
)
from coordinator.client import (
    ClientCredentials,
    NodeChannel,
    NodeClient,
    ReceiptCheck,
    check_receipt,
    pinned_ledger_key,
)
from coordinator.errors import LEDGER_UNTRUSTED, NodeCallError, NodeProblem
from coordinator.partnership import NodeEntry
from kernel.messages import NodeDescription, PreviewResult, QueryAnswer
from privacy.query import QuerySpec

if TYPE_CHECKING:
    from coordinator.connections import NodeConnections

T = TypeVar("T")

DEFAULT_RETRIES = 2
RETRY_BACKOFF_SECONDS = 0.2


@dataclass(frozen=True)
class FanoutSettings:
    timeout: float = 30.0
    """Deadline of each call to a node, in seconds."""
    retries: int = DEFAULT_RETRIES
    """Extra attempts of a Query that failed retryably (same query_id: never re-charged)."""
    interceptors: Sequence[grpc.UnaryUnaryClientInterceptor[Any, Any]] = ()


@dataclass(frozen=True)
class NodeQueryResult:
    """What one node did with one query."""

    entry: NodeEntry
    answer: QueryAnswer | None = None
    receipt: ReceiptCheck | None = None
    description: NodeDescription | None = None
    cost_units: int | None = None
    problem: NodeProblem | None = None
    attempts: int = 0
    ledger_key_problem: str | None = None
    untrusted: LedgerDiscontinuity | None = None
    """Why the node's answer was withheld: its ledger went back on the remembered one."""


@dataclass(frozen=True)
class NodePreviewResult:
    entry: NodeEntry
    preview: PreviewResult | None = None
    problem: NodeProblem | None = None


def fan_out(
    entries: Sequence[NodeEntry],
    work: Callable[[NodeEntry], T],
    on_done: Callable[[NodeEntry, T], None] | None = None,
    *,
    connections: NodeConnections | None = None,
) -> dict[str, T]:
    """Run `work` for every node concurrently; results keyed by node name, in entry order.

    `work` must not raise for node failures (it returns them); anything it does raise is
    a bug and propagates. With `connections`, on the session's threads (started once);
    else on threads started for this call.
    """
    results: dict[str, T] = {}
    if not entries:
        return results
    if connections is not None:
        _collect(connections.workers(len(entries)), entries, work, on_done, results)
    else:
        with ThreadPoolExecutor(max_workers=len(entries), thread_name_prefix="npcs-node") as pool:
            _collect(pool, entries, work, on_done, results)
    return {entry.name: results[entry.name] for entry in entries}


def _collect(
    pool: Executor,
    entries: Sequence[NodeEntry],
    work: Callable[[NodeEntry], T],
    on_done: Callable[[NodeEntry, T], None] | None,
    results: dict[str, T],
) -> None:
    futures = {pool.submit(work, entry): entry for entry in entries}
    for future in as_completed(futures):
        entry = futures[future]
        results[entry.name] = future.result()
        if on_done is not None:
            on_done(entry, results[entry.name])


def query_node(
    entry: NodeEntry,
    credentials: ClientCredentials,
    spec: QuerySpec,
    settings: FanoutSettings,
    remembered: RememberedCheckpoint | None = None,
    *,
    connections: NodeConnections | None = None,
) -> NodeQueryResult:
    """Preview with the node's description, then a signed Query (retried with the same
    query_id); over the session's open channel to the node when `connections` is given.

    A node whose description cannot show its ledger extends `remembered` is not asked the
    Query (nothing is charged); one whose answer cannot show it has its answer withheld.
    A kept channel to a node that could not be reached is dropped: gRPC would hold it
    in its reconnect backoff, and the session's next query opens a new one.
    """
    opened = None if connections is None else connections.channel(entry)
    result = _ask(entry, credentials, spec, settings, remembered, opened=opened)
    if connections is not None and result.problem is not None and result.problem.retryable:
        connections.drop(entry)
    return result


def _ask(
    entry: NodeEntry,
    credentials: ClientCredentials,
    spec: QuerySpec,
    settings: FanoutSettings,
    remembered: RememberedCheckpoint | None,
    *,
    opened: NodeChannel | None,
) -> NodeQueryResult:
    """`query_node`'s calls and checks (over `opened` when given, else a new channel)."""
    remembered_size = remembered.size if remembered is not None else 0
    verified_checkpoint = None
    with NodeClient(
        entry,
        credentials,
        timeout=settings.timeout,
        interceptors=settings.interceptors,
        opened=opened,
    ) as client:
        try:
            description, preview = client.describe_and_preview(spec, remembered_size)
        except NodeCallError as failure:
            return NodeQueryResult(entry=entry, problem=failure.problem, attempts=1)
        ledger_key, key_problem = _ledger_key(description, entry)
        if ledger_key is not None:
            shown, proof = description.latest_checkpoint, description.consistency
            untrusted = check_continuity(entry.name, remembered, shown, proof, ledger_key)
            if untrusted is not None:
                return _withheld(entry, untrusted, description=description)
            verified_checkpoint = shown  # its signature checked out
        attempts = 0
        while True:
            attempts += 1
            try:
                answer = client.query(spec, preview.cost_units, remembered_size)
            except NodeCallError as failure:
                if failure.problem.retryable and attempts <= settings.retries:
                    time.sleep(RETRY_BACKOFF_SECONDS * attempts)
                    continue
                return NodeQueryResult(
                    entry=entry,
                    description=description,
                    problem=failure.problem,
                    attempts=attempts,
                )
            break
    receipt = check_receipt(
        answer,
        entry=entry,
        ledger_key=ledger_key,
        query_id=str(spec.query_id),
        verified_checkpoint=verified_checkpoint,
    )
    if key_problem and not receipt.verified:
        receipt = ReceiptCheck(False, key_problem)
    if ledger_key is not None:
        untrusted = check_continuity(
            entry.name,
            remembered,
            answer.checkpoint,
            answer.consistency,
            ledger_key,
            signature_verified=receipt.verified,  # the receipt's check covers its checkpoint
        )
        if untrusted is not None:
            return _withheld(
                entry,
                untrusted,
                description=description,
                cost_units=answer.release().cost_units,
                attempts=attempts,
            )
    return NodeQueryResult(
        entry=entry,
        answer=answer,
        receipt=receipt,
        description=description,
        cost_units=answer.release().cost_units,
        attempts=attempts,
        ledger_key_problem=key_problem,
    )


def _withheld(
    entry: NodeEntry,
    untrusted: LedgerDiscontinuity,
    *,
    description: NodeDescription,
    cost_units: int | None = None,
    attempts: int = 0,
) -> NodeQueryResult:
    """The result of a node whose ledger went back: no answer, the reason why."""
    what = (
        "its answer is withheld (the node has charged it)"
        if cost_units is not None
        else "it was not asked the query (nothing was charged)"
    )
    return NodeQueryResult(
        entry=entry,
        description=description,
        cost_units=cost_units,
        problem=NodeProblem(LEDGER_UNTRUSTED, f"{untrusted.message()}; {what}"),
        attempts=attempts,
        untrusted=untrusted,
    )


def _ledger_key(
    description: NodeDescription, entry: NodeEntry
) -> tuple[Ed25519PublicKey | None, str | None]:
    try:
        return pinned_ledger_key(description, entry), None
    except ValueError as exc:
        return None, str(exc)


def preview_node(
    entry: NodeEntry,
    credentials: ClientCredentials,
    spec: QuerySpec,
    settings: FanoutSettings,
) -> NodePreviewResult:
    with NodeClient(
        entry, credentials, timeout=settings.timeout, interceptors=settings.interceptors
    ) as client:
        try:
            return NodePreviewResult(entry=entry, preview=client.preview(spec))
        except NodeCallError as failure:
            return NodePreviewResult(entry=entry, problem=failure.problem)


def describe_node(
    entry: NodeEntry,
    credentials: ClientCredentials,
    settings: FanoutSettings,
    remembered: RememberedCheckpoint | None = None,
    *,
    unit_kind_epsilon: bool = False,
) -> tuple[NodeDescription | None, NodeProblem | None]:
    """The node's description, with its proof of growth from `remembered` (unchecked:
    the caller checks it with the node's pinned ledger key); `unit_kind_epsilon`: with
    each unit kind's budget in epsilon too."""
    with NodeClient(
        entry, credentials, timeout=settings.timeout, interceptors=settings.interceptors
    ) as client:
        try:
            remembered_size = remembered.size if remembered is not None else 0
            described = client.describe(remembered_size, unit_kind_epsilon=unit_kind_epsilon)
            return described, None
        except NodeCallError as failure:
            return None, failure.problem
