"""`npcs results list/show/export`: re-use released numbers at no privacy cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from coordinator.cli.chart_options import y_scale_option
from coordinator.cli.errors import user_errors
from coordinator.cli.interval_options import (
    check_post_processing,
    interval_option,
    small_area_option,
)

if TYPE_CHECKING:
    from coordinator.charts import YScale
    from coordinator.intervals import IntervalKind
    from coordinator.results import ResultsStore


@click.group("results")
def command() -> None:
    """Results kept locally: list, show again, chart again or export. Never charged."""


@command.command("list")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def list_command(limit: int, output_format: str) -> None:
    """The most recent results, newest first."""
    from dataclasses import asdict

    from coordinator.results import ResultsStore

    summaries = ResultsStore.open_default().list_results(limit)
    if output_format == "json":
        click.echo(json.dumps([asdict(s) for s in summaries], indent=2))
        return
    if not summaries:
        click.echo("no results yet: run `npcs query ...`")
        return
    for s in summaries:
        flags = "" if s.unverified_receipts == 0 else f"  {s.unverified_receipts} UNVERIFIED"
        click.echo(
            f"{s.result_id[:8]}  {s.created_at}  {s.statistic:<9} {s.dataset:<14} "
            f"{s.nodes_answered}/{s.nodes_asked} nodes{flags}  {s.purpose[:40]}"
        )


@command.command("show")
@click.argument("result_id")
@click.option(
    "--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table"
)
@click.option("--rate", is_flag=True, help="Show counts per 100,000 children as well.")
@interval_option
@small_area_option
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Chart file.")
@y_scale_option
@user_errors()
def show_command(  # noqa: PLR0917 - click passes every option as an argument
    result_id: str,
    output_format: str,
    rate: bool,
    interval: IntervalKind,
    small_area: bool,
    plot: Path | None,
    y_scale: YScale,
) -> None:
    """Show a stored result (an id prefix from `npcs results list` is enough)."""
    from coordinator.cli.render import show_report

    store, full_id = open_store(result_id)
    report = store.report(full_id)
    check_post_processing(report.statistic, interval, small_area)
    show_report(
        report,
        output_format,
        rates=rate,
        plot=plot,
        y_scale=y_scale,
        interval=interval,
        small_area=small_area,
    )


@command.command("export")
@click.argument("result_id")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@user_errors()
def export_command(result_id: str, out: Path | None) -> None:
    """Everything kept for a result as JSON: the report, each node's release and receipt."""
    store, full_id = open_store(result_id)
    report = store.report(full_id)
    body = {
        "format": "npcs.export.v1",
        "report": report.model_dump(mode="json"),
        "answers": [
            {
                "node": answer.node,
                "release": json.loads(answer.release_bytes),
                "release_bytes_b64": _b64(answer.release_bytes),
                "receipt": answer.receipt,
                "receipt_verified": answer.receipt_verified,
                "receipt_problem": answer.receipt_problem,
            }
            for answer in store.answers(full_id)
        ],
    }
    text = json.dumps(body, indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"exported result {full_id} to {out}", err=True)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def open_store(result_id: str) -> tuple[ResultsStore, str]:
    from coordinator.results import ResultsStore as Store

    store = Store.open_default()
    return store, store.resolve_id(result_id)


def _add_measure_commands() -> None:
    from coordinator.cli.measures import disparity_command, share_command

    command.add_command(share_command)
    command.add_command(disparity_command)


_add_measure_commands()
