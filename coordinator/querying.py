"""Running one partnership query end to end: fan out, verify, pool, store.

`run_query` asks the nodes concurrently (progress on stderr), checks every receipt,
builds the report, keeps every answer in the results store and remembers each node's
newest verified checkpoint. `run_preview` is the `--dry-run`: Preview only, no charge.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar
from uuid import uuid4

from coordinator.fanout import (
    NodePreviewResult,
    NodeQueryResult,
    fan_out,
    preview_node,
    query_node,
)
from coordinator.partnership import NodeEntry
from coordinator.report import (
    ExpectedRow,
    NodeStatus,
    PreviewReport,
    Report,
    build_report,
    pooled_expected,
)
from coordinator.results import RememberedCheckpoint, StoredAnswer
from coordinator.session import Session
from npcs import wire
from privacy.budget import format_rho
from privacy.query import QuerySpec
from privacy.release import Release

T = TypeVar("T")


def run_query(session: Session, entries: Sequence[NodeEntry], spec: QuerySpec) -> Report:
    results = _with_progress(
        entries,
        lambda entry: query_node(entry, session.credentials, spec, session.settings),
        _query_line,
        f"asking {len(entries)} node(s)",
    )
    releases: dict[str, Release] = {}
    populations: dict[str, dict[str, int]] = {}
    stored: list[StoredAnswer] = []
    for name, result in results.items():
        if result.description is not None:
            populations[name] = dict(result.description.child_population)
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
    )
    session.store.save(report, stored)
    _remember_checkpoints(session, results.values(), now)
    return report


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


def receipt_json(answer: wire.QueryAnswer) -> dict[str, object]:
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


def _remember_checkpoints(
    session: Session, results: Iterable[NodeQueryResult], now: datetime
) -> None:
    import click

    seen_at = now.isoformat(timespec="seconds")
    checkpoints = [
        RememberedCheckpoint(
            node=result.entry.name,
            origin=result.answer.checkpoint.signed.checkpoint.origin,
            size=result.answer.checkpoint.size,
            root=result.answer.checkpoint.root,
            signature=result.answer.checkpoint.signed.signature,
            key_fingerprint=result.entry.ledger_key_fingerprint,
            seen_at=seen_at,
        )
        for result in results
        if result.answer is not None and result.receipt is not None and result.receipt.verified
    ]
    for warning in session.store.remember_checkpoints(session.partnership.name, checkpoints):
        click.echo(f"WARNING: {warning}", err=True)


def run_preview(session: Session, entries: Sequence[NodeEntry], spec: QuerySpec) -> PreviewReport:
    results = _with_progress(
        entries,
        lambda entry: preview_node(entry, session.credentials, spec, session.settings),
        _preview_line,
        f"previewing at {len(entries)} node(s)",
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


def _query_line(entry: NodeEntry, result: NodeQueryResult) -> str:
    if result.problem is not None:
        return f"{entry.name}: no answer ({result.problem.code})"
    verified = (
        "receipt verified"
        if result.receipt and result.receipt.verified
        else ("RECEIPT DID NOT VERIFY")
    )
    return f"{entry.name}: answered, {verified}"


def _preview_line(entry: NodeEntry, result: NodePreviewResult) -> str:
    if result.problem is not None:
        return f"{entry.name}: no preview ({result.problem.code})"
    return f"{entry.name}: previewed"


def _with_progress(
    entries: Sequence[NodeEntry],
    work: Callable[[NodeEntry], T],
    describe: Callable[[NodeEntry, T], str],
    title: str,
) -> dict[str, T]:
    """fan_out with a rich progress bar on stderr (plain lines when not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(title, total=len(entries))

        def done(entry: NodeEntry, result: T) -> None:
            progress.advance(task)
            if console.is_terminal:
                progress.console.print(describe(entry, result))

        return fan_out(entries, work, done)
