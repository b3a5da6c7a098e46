"""Shares and disparities from a count: `npcs query share|disparity` and `npcs results ...`.

`npcs query share DATASET --of COLUMN` and `npcs query disparity DATASET` ask one count
(grouped by --by plus the --of column, race_ethnicity by default for disparity) and show
it as shares or disparities; `npcs results share|disparity ID` read a stored count the
same way. Reading a stored count is post-processing, so it costs no privacy budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from coordinator.cli.errors import user_errors

if TYPE_CHECKING:
    from coordinator.report import Report

FORMAT_OPTION = click.option(
    "--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table"
)


@click.command("share")
@click.argument("result_id")
@click.option(
    "--of",
    "of_column",
    required=True,
    help="The column whose value's share to show, COLUMN or COLUMN=VALUE "
    "(a flag's share is of 'true'; a category without VALUE shows every value).",
)
@FORMAT_OPTION
@user_errors()
def share_command(result_id: str, of_column: str, output_format: str) -> None:
    """Shares from a count result grouped by the --of column, per node and pooled.

    \b
    Examples:
      npcs query count incidents --by incident_type,sleep_related --from 2019 --to 2024 \\
          --rho 0.5 --purpose "sleep-related share of fatalities"
      npcs results share 3f2a --of sleep_related
      npcs results share 3f2a --of primary_cause --format csv
    """
    from coordinator.cli.measure_render import render_shares
    from coordinator.cli.results import open_store
    from coordinator.shares import compute_shares

    column, _, part = of_column.partition("=")
    store, full_id = open_store(result_id)
    result = compute_shares(store.report(full_id), column.strip(), part.strip() or None)
    click.echo(render_shares(result, output_format), nl=False)


@click.command("disparity")
@click.argument("result_id")
@click.option(
    "--column",
    default="race_ethnicity",
    show_default=True,
    help="The grouped column with published populations (race_ethnicity or sex).",
)
@click.option(
    "--reference",
    help="Reference group for rate ratios (default: white when present, else the group "
    "with the largest child population).",
)
@FORMAT_OPTION
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Forest chart file.")
@user_errors()
def disparity_command(
    result_id: str, column: str, reference: str | None, output_format: str, plot: Path | None
) -> None:
    """Rate ratios and disproportionality indices from a count result by group.

    \b
    Examples:
      npcs query count reports --by race_ethnicity --where disposition=substantiated \\
          --from 2024 --to 2024 --rho 0.5 --purpose "victim disparity"
      npcs results disparity 3f2a --plot forest.png
    """
    from coordinator.charts import ChartError
    from coordinator.charts_forest import write_forest_chart
    from coordinator.cli.measure_render import render_disparity
    from coordinator.cli.results import open_store
    from coordinator.disparity import compute_disparity

    store, full_id = open_store(result_id)
    result = compute_disparity(store.report(full_id), column, reference)
    click.echo(render_disparity(result, output_format), nl=False)
    if plot is not None:
        try:
            write_forest_chart(result, plot)
        except ChartError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"forest chart written to {plot}", err=True)


MEASURES = ("share", "disparity")
"""`npcs query share|disparity ...`: a count query read as shares or disparities."""


def measure_grouping(measure: str, by: str | None, of: str | None, plot: Path | None) -> str:
    """The count query's --by for a measure: the --by columns plus the --of column.

    Refuses, before anything is asked, what the measure cannot show (a chart of shares).
    """
    column = (of or "").partition("=")[0].strip()
    if measure == "share" and plot is not None:
        raise click.UsageError(
            "`npcs query share` draws no chart: drop --plot (the forest chart is for disparity)"
        )
    if measure == "share" and not column:
        raise click.UsageError(
            "`npcs query share` needs --of COLUMN[=VALUE], e.g. --of sleep_related"
        )
    if measure == "disparity":
        column = column or "race_ethnicity"
    grouped = [part.strip() for part in (by or "").split(",") if part.strip()]
    if column not in [part.split(":", 1)[0] for part in grouped]:
        grouped.append(column)
    return ",".join(grouped)


def show_measure(
    report: Report,
    measure: str,
    *,
    of: str | None,
    reference: str | None,
    output_format: str,
    plot: Path | None,
) -> None:
    """Print the count result as shares or disparities (and draw the forest chart)."""
    from coordinator.charts import ChartError
    from coordinator.charts_forest import write_forest_chart
    from coordinator.cli.measure_render import render_disparity, render_shares
    from coordinator.disparity import compute_disparity
    from coordinator.shares import compute_shares

    column, _, part = (of or "").partition("=")
    if measure == "share":
        shares = compute_shares(report, column.strip(), part.strip() or None)
        click.echo(render_shares(shares, output_format), nl=False)
        return
    result = compute_disparity(report, column.strip() or "race_ethnicity", reference)
    click.echo(render_disparity(result, output_format), nl=False)
    if plot is not None:
        try:
            write_forest_chart(result, plot)
        except ChartError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"forest chart written to {plot}", err=True)
