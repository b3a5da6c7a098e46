"""Running one partnership query end to end: fan out, verify, pool, store.

`run_query` asks the nodes concurrently, checks every receipt, builds the report, keeps
every answer in the results store and remembers each node's newest verified checkpoint;
a node whose ledger went back on the remembered one becomes a warning in the result.
`run_preview` is the `--dry-run`: Preview only, no charge. Both report each node as it
finishes to an optional `on_done(entry, result)` callback (the CLI's progress display).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import uuid4

from coordinator.checkpoints import RememberedCheckpoint
from coordinator.fanout import (
    NodePreviewResult,
    NodeQueryResult,
    fan_out,
    preview_node,
    query_node,
)
from coordinator.partnership import NodeEntry
from coordinator.report import NodeStatus, Report, build_report
from coordinator.results import StoredAnswer
from coordinator.session import Session
from kernel.messages import QueryAnswer
from privacy.budget import format_rho
from privacy.population import PopulationTable
from privacy.query import QuerySpec
from privacy.release import Release

if TYPE_CHECKING:
    from coordinator.preview import PreviewReport


@dataclass(frozen=True)
class QueryRun:
    report: Report
    warnings: tuple[str, ...] = ()
    """For the analyst: nodes whose ledger went back on the checkpoint remembered."""


def run_query(
    session: Session,
    entries: Sequence[NodeEntry],
    spec: QuerySpec,
    *,
    on_done: Callable[[NodeEntry, NodeQueryResult], None] | None = None,
) -> QueryRun:
    remembered = session.store.checkpoints.remembered(session.partnership.name)
    results = fan_out(
        entries,
        lambda entry: query_node(
            entry,
            session.credentials,
            spec,
            session.settings,
            remembered.get(entry.name),
            connections=session.connections,
        ),
        on_done,
        connections=session.connections,
    )
    releases: dict[str, Release] = {}
    populations: dict[str, dict[str, int]] = {}
    group_populations: dict[str, PopulationTable] = {}
    stored: list[StoredAnswer] = []
    for name, result in results.items():
        if result.description is not None:
            populations[name] = dict(result.description.child_population)
            if result.description.group_populations is not None:
                group_populations[name] = result.description.group_populations
        if result.answer is not None and result.receipt is not None:
            releases[name] = result.answer.release()
            stored.append(
                StoredAnswer(
                    node=name,
                    release_bytes=result.answer.release_bytes,
                    receipt=receipt_json(result.answer),
                    receipt_verified=result.receipt.verified,
                    receipt_problem=result.receipt.problem,
                )
            )
    now = datetime.now(UTC)
    report = build_report(
        spec=spec,
        result_id=str(uuid4()),
        created_at=now.isoformat(timespec="seconds"),
        partnership=session.partnership.name,
        statuses=[node_status(result) for result in results.values()],
        releases=releases,
        populations=populations,
        group_populations=group_populations,
    )
    regressions = session.store.save(report, stored, _verified_checkpoints(results.values(), now))
    return QueryRun(report, tuple(regression.warning() for regression in regressions))


def node_status(result: NodeQueryResult) -> NodeStatus:
    if result.answer is None or result.receipt is None:
        problem = result.problem
        return NodeStatus(
            node=result.entry.name,
            answered=False,
            code=problem.code if problem else "UNKNOWN",
            reason=problem.reason if problem else "no answer",
        )
    cost = result.cost_units
    return NodeStatus(
        node=result.entry.name,
        answered=True,
        cost_units=cost,
        cost_rho=None if cost is None else format_rho(cost),
        receipt="verified" if result.receipt.verified else "unverified",
        receipt_problem=result.receipt.problem,
        entry_index=result.answer.entry_index,
        checkpoint_size=result.answer.checkpoint.size,
        replayed=result.answer.replayed,
    )


def receipt_json(answer: QueryAnswer) -> dict[str, object]:
    """The receipt as stored: enough to re-verify it later with the node's ledger key."""
    checkpoint = answer.checkpoint
    return {
        "entry_index": answer.entry_index,
        "tree_size": answer.tree_size,
        "inclusion_proof": [node.hex() for node in answer.inclusion_proof],
        "leaf_data": base64.b64encode(answer.leaf_data).decode(),
        "replayed": answer.replayed,
        "checkpoint": {
            "origin": checkpoint.signed.checkpoint.origin,
            "size": checkpoint.size,
            "root": checkpoint.root.hex(),
            "signature": base64.b64encode(checkpoint.signed.signature).decode(),
            "key_fingerprint": checkpoint.key_fingerprint,
        },
    }


def _verified_checkpoints(
    results: Iterable[NodeQueryResult], now: datetime
) -> list[RememberedCheckpoint]:
    """Every verified checkpoint, to remember with the result (a checkpoint that went back
    on the remembered one is not kept: it becomes a warning)."""
    seen_at = now.isoformat(timespec="seconds")
    return [
        RememberedCheckpoint.seen(
            result.entry.name,
            result.answer.checkpoint,
            key_fingerprint=result.entry.ledger_key_fingerprint,
            seen_at=seen_at,
        )
        for result in results
        if result.answer is not None and result.receipt is not None and result.receipt.verified
    ]


def run_preview(
    session: Session,
    entries: Sequence[NodeEntry],
    spec: QuerySpec,
    *,
    on_done: Callable[[NodeEntry, NodePreviewResult], None] | None = None,
) -> PreviewReport:
    from coordinator.preview import ExpectedRow, PreviewReport, pooled_expected  # --dry-run

    results = fan_out(
        entries,
        lambda entry: preview_node(entry, session.credentials, spec, session.settings),
        on_done,
    )
    statuses: list[NodeStatus] = []
    expected: list[ExpectedRow] = []
    remaining: dict[str, int] = {}
    for name, result in results.items():
        if result.preview is None:
            problem = result.problem
            statuses.append(
                NodeStatus(
                    node=name,
                    answered=False,
                    code=problem.code if problem else "UNKNOWN",
                    reason=problem.reason if problem else "no answer",
                )
            )
            continue
        preview = result.preview
        statuses.append(
            NodeStatus(
                node=name,
                answered=True,
                cost_units=preview.cost_units,
                cost_rho=preview.cost_rho,
            )
        )
        remaining[name] = preview.remaining_units
        expected += [
            ExpectedRow(
                source=name,
                name=value.name,
                distribution=value.distribution,
                scale=value.scale,
                ci_half_width=value.ci_half_width,
            )
            for value in preview.expected
        ]
    return PreviewReport(
        query_id=str(spec.query_id),
        partnership=session.partnership.name,
        dataset=spec.dataset,
        statistic=spec.statistic.value,
        query=spec.model_dump(mode="json"),
        nodes=tuple(statuses),
        remaining_units=remaining,
        expected=tuple(expected + (pooled_expected(expected) if len(remaining) > 1 else [])),
    )
