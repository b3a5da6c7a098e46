"""`npcs query`: ask every node (or some) one DP question; show per-node and pooled answers.

Exit codes (docs/analyst-guide.md): 0 every node answered with a verified receipt;
3 some nodes did not answer (their reasons are shown, the others' answers too);
4 every node answered but a ledger receipt did not verify; 5 some node's ledger went
back on the checkpoint remembered from it (shrank, forked, or no proof that it only
grew): its answer is withheld; 1 usage or set-up errors.
"""

from __future__ import annotations

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
from coordinator.cli.measures import MEASURES, measure_grouping, show_measure
from kernel.command_gc import loading_modules

if TYPE_CHECKING:
    from coordinator.charts import YScale
    from coordinator.fanout import NodePreviewResult, NodeQueryResult
    from coordinator.intervals import IntervalKind
    from coordinator.partnership import NodeEntry

EXIT_PARTIAL = 3
EXIT_UNVERIFIED = 4
EXIT_LEDGER_UNTRUSTED = 5
STATISTICS = ("count", "sum", "mean", "quantiles", "histogram", *MEASURES)


@click.command("query")
@click.argument("statistic", type=click.Choice(STATISTICS))
@click.argument("dataset")
@click.argument("column", required=False)
@click.option("--by", help="Group by columns and time buckets, e.g. sex,incident_date:year.")
@click.option("--from", "date_from", help="First day (YYYY, YYYY-MM or YYYY-MM-DD).")
@click.option("--to", "date_to", help="Last day (YYYY, YYYY-MM or YYYY-MM-DD).")
@click.option("--date-column", help="Date column for --from/--to (default: the time bucket's).")
@click.option(
    "--fiscal-year-start",
    type=click.IntRange(1, 12),
    default=10,
    show_default=True,
    help="Month a fiscal year starts, for :fiscal_year buckets.",
)
@click.option("--where", help="Filters, e.g. 'sex=female,male;child_age_months=0..11'.")
@click.option("--rho", help="Privacy loss to spend at each node (zCDP rho), e.g. 0.05.")
@click.option("--accuracy", type=float, help="Target 95% half-width of each value instead.")
@click.option("--purpose", required=True, help="Why you ask (recorded in every ledger).")
@click.option("--nodes", help="Comma-separated node names (default: all).")
@click.option("--quantiles", help="Probabilities for the quantiles statistic, e.g. 0.5,0.9.")
@click.option(
    "--value-intervals",
    is_flag=True,
    help="Quantiles: also release each cell's count (charged; see --dry-run) to turn rank "
    "errors into value intervals; ask several probabilities, e.g. 0.1,0.25,0.5,0.75,0.9.",
)
@click.option(
    "--items",
    help="Several flags to count, or bounded items to average, in one query (one charge): "
    "names or globs, e.g. 'io_*' or mal_neglect,mal_physical_abuse.",
)
@click.option(
    "--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table"
)
@click.option("--rate", is_flag=True, help="Show counts per 100,000 children as well.")
@interval_option
@small_area_option
@click.option(
    "--of",
    "of",
    help="share: COLUMN[=VALUE] whose share to show; disparity: the "
    "group column (default race_ethnicity).",
)
@click.option("--reference", help="disparity: reference group (default white, else the largest).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Chart file.")
@y_scale_option
@click.option("--dry-run", is_flag=True, help="Preview cost and accuracy; charge nothing.")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per call.")
@click.option("--retries", type=click.IntRange(0, 10), default=2, show_default=True)
@click.option("--config", envvar="NPCS_CONFIG", type=click.Path(path_type=Path))
@user_errors()
def command(  # noqa: PLR0917 - click passes every option as an argument
    statistic: str,
    dataset: str,
    column: str | None,
    by: str | None,
    date_from: str | None,
    date_to: str | None,
    date_column: str | None,
    fiscal_year_start: int,
    where: str | None,
    rho: str | None,
    accuracy: float | None,
    purpose: str,
    nodes: str | None,
    quantiles: str | None,
    value_intervals: bool,
    items: str | None,
    output_format: str,
    rate: bool,
    interval: IntervalKind,
    small_area: bool,
    of: str | None,
    reference: str | None,
    plot: Path | None,
    y_scale: YScale,
    dry_run: bool,
    timeout: float,
    retries: int,
    config: Path | None,
) -> None:
    """Ask STATISTIC of DATASET [COLUMN] at every node, with pooled partnership totals.

    `share` and `disparity` ask a count and show it as shares (of --of's values) or as
    rate ratios and disproportionality indices by race/ethnicity (docs/analyst-guide.md).

    \b
    Examples:
      npcs query count incidents --by incident_date:year --from 2019 --to 2023 \\
          --rho 0.05 --purpose "annual fatality trend" --plot trend.png
      npcs query mean incidents child_age_months --where incident_type=fatality \\
          --from 2022 --to 2022 --accuracy 2 --purpose "age profile" --dry-run
      npcs query share incidents --of sleep_related --by incident_type --from 2019 \\
          --to 2024 --rho 0.5 --purpose "sleep-related share of fatalities"
      npcs query count incidents --items 'io_*' --by incident_date:year \\
          --from 2019 --to 2023 --rho 0.5 --purpose "improvement opportunities"
      npcs query count incidents --where incident_type=fatality --from 2023 --to 2023 \\
          --rho 0.05 --purpose "fatality rates" --small-area --interval dp+poisson
    """
    with loading_modules():
        from coordinator.cli.progress import node_progress
        from coordinator.cli.query_args import QueryArgumentError, build_query
        from coordinator.cli.render import render_preview, show_report
        from coordinator.querying import run_preview, run_query
        from coordinator.session import open_session

    measure = statistic if statistic in MEASURES else None
    if measure is not None:
        statistic, by = "count", measure_grouping(measure, by, of, plot)
    try:
        spec = build_query(
            statistic=statistic,
            dataset=dataset,
            column=column,
            by=by,
            where=where,
            date_from=date_from,
            date_to=date_to,
            date_column=date_column,
            fiscal_year_start=fiscal_year_start,
            rho=rho,
            accuracy=accuracy,
            quantiles=quantiles,
            value_intervals=value_intervals,
            items=items,
            purpose=purpose,
        )
    except QueryArgumentError as exc:
        raise click.UsageError(str(exc)) from exc
    check_post_processing(measure or statistic, interval, small_area)
    if plot is not None and not dry_run:
        _require_charts_before_spending()
    session = open_session(config, timeout=timeout, retries=retries)
    entries = session.select_nodes(nodes)
    if dry_run:
        title = f"previewing at {len(entries)} node(s)"
        with node_progress(title, len(entries), preview_line) as on_done:
            preview = run_preview(session, entries, spec, on_done=on_done)
        click.echo(render_preview(preview, output_format), nl=False)
        if not preview.all_answered:
            raise SystemExit(EXIT_PARTIAL)
        return
    with (
        session,
        node_progress(f"asking {len(entries)} node(s)", len(entries), query_line) as on_done,
    ):
        run = run_query(session, entries, spec, on_done=on_done)
    for warning in run.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    report = run.report
    if measure is not None:
        show_measure(
            report, measure, of=of, reference=reference, output_format=output_format, plot=plot
        )
    else:
        show_report(
            report,
            output_format,
            rates=rate,
            plot=plot,
            y_scale=y_scale,
            interval=interval,
            small_area=small_area,
        )
    if report.untrusted_nodes:
        click.echo(
            f"REFUSED: {', '.join(report.untrusted_nodes)}: the ledger went back on the "
            "checkpoint you remember (see above); no answer of theirs is used",
            err=True,
        )
        raise SystemExit(EXIT_LEDGER_UNTRUSTED)
    if not report.all_answered:
        raise SystemExit(EXIT_PARTIAL)
    if report.unverified_nodes:
        raise SystemExit(EXIT_UNVERIFIED)


def query_line(entry: NodeEntry, result: NodeQueryResult) -> str:
    """A node's line in the progress display, once it answered or failed."""
    if result.problem is not None:
        return f"{entry.name}: no answer ({result.problem.code})"
    verified = (
        "receipt verified"
        if result.receipt and result.receipt.verified
        else ("RECEIPT DID NOT VERIFY")
    )
    return f"{entry.name}: answered, {verified}"


def preview_line(entry: NodeEntry, result: NodePreviewResult) -> str:
    if result.problem is not None:
        return f"{entry.name}: no preview ({result.problem.code})"
    return f"{entry.name}: previewed"


def _require_charts_before_spending() -> None:
    """Refuse `--plot` without matplotlib before any node is asked, so nothing is spent."""
    from kernel.extras import MissingExtraError, require_extra

    try:
        require_extra("charts", needed_by="`npcs query --plot`")
    except MissingExtraError as exc:
        raise click.ClickException(
            f"{exc}; nothing was asked of any node (or drop --plot and draw the saved "
            "result later with `npcs results show --plot`)"
        ) from exc
