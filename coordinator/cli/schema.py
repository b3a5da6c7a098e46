"""`npcs schema [DATASET]`: datasets, columns, domains, bounds and node populations."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from privacy.population import PopulationTable
    from privacy.schema import Schema


@click.command("schema")
@click.argument("dataset", required=False)
@click.option(
    "--nodes-info",
    "live",
    is_flag=True,
    help="Also ask the nodes (Describe): their own domains (county codes) and child "
    "populations by year. Needs the partnership file; costs no privacy budget.",
)
@click.option("--nodes", help="Comma-separated node names for --nodes-info (default: all).")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per node.")
@click.option("--config", envvar="NPCS_CONFIG", type=click.Path(path_type=Path))
def command(  # noqa: PLR0917 - click passes every option as an argument
    dataset: str | None,
    live: bool,
    nodes: str | None,
    output_format: str,
    timeout: float,
    config: Path | None,
) -> None:
    """Show what can be asked: DATASET's (or every dataset's) columns, their public
    values or bounds, and with --nodes-info each node's domains and child populations.

    \b
    Examples:
      npcs schema
      npcs schema incidents --nodes-info
    """
    from coordinator.schema_view import UnknownDatasetError, schema_view, select_datasets

    try:
        datasets = select_datasets(dataset)
    except UnknownDatasetError as exc:
        raise click.UsageError(str(exc.args[0])) from exc
    described = _describe(config, nodes, timeout) if live else Described()
    view = schema_view(
        datasets,
        node_schemas=described.schemas,
        populations=described.populations,
        group_populations=described.group_populations,
        problems=described.problems,
    )
    if output_format == "json":
        click.echo(json.dumps(view, indent=2, sort_keys=True))
    else:
        click.echo(_tables(view), nl=False)


@dataclass
class Described:
    """What the nodes' Describe answers add to the schema view."""

    schemas: dict[str, Schema] = field(default_factory=dict)
    populations: dict[str, dict[str, int]] = field(default_factory=dict)
    group_populations: dict[str, PopulationTable] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def _describe(config: Path | None, nodes: str | None, timeout: float) -> Described:
    from coordinator.fanout import describe_node, fan_out
    from coordinator.session import open_session

    session = open_session(config, timeout=timeout)
    entries = session.select_nodes(nodes)
    described = fan_out(
        entries, lambda entry: describe_node(entry, session.credentials, session.settings)
    )
    result = Described()
    for name, (description, problem) in described.items():
        if description is None:
            result.problems[name] = f"{problem.code}: {problem.reason}" if problem else "no answer"
            continue
        result.schemas[name] = description.schema
        result.populations[name] = dict(description.child_population)
        if description.group_populations is not None:
            result.group_populations[name] = description.group_populations
    return result


def _tables(view: dict[str, object]) -> str:
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(file=buffer, width=120, color_system=None, highlight=False)
    datasets = view["datasets"]
    assert isinstance(datasets, list)
    for dataset in datasets:
        table = Table(
            title=f"{dataset['name']}: {dataset['description']}",
            caption=f"privacy unit: {dataset['privacy_unit']}, at most "
            f"{dataset['max_rows_per_unit']} rows per unit",
        )
        for heading in ("column", "kind", "values or bounds", "description"):
            table.add_column(heading)
        for column in dataset["columns"]:
            table.add_row(column["name"], column["kind"], _values(column), column["description"])
        console.print(table)
        for node, domains in dataset["node_domains"].items():
            for column_name, values in domains.items():
                console.print(f"  {node} {column_name}: {', '.join(values)}")
    populations = view["child_population"]
    assert isinstance(populations, dict)
    if populations:
        console.print(_population_table(populations))
    by_group = view["group_population"]
    assert isinstance(by_group, dict)
    for node, table in by_group.items():
        console.print(f"{node}: child population by group (source: {table['source']})")
        console.print(_group_population_table(table))
    problems = view["node_problems"]
    assert isinstance(problems, dict)
    for node, problem in problems.items():
        console.print(f"node {node} did not answer: {problem}")
    return buffer.getvalue()


def _values(column: dict[str, object]) -> str:
    if column["domain"] is not None:
        values = column["domain"]
        assert isinstance(values, list)
        return ", ".join(str(v) for v in values)
    if column["domain_declared_by_node"]:
        return "declared by each node (--nodes-info)"
    if column["lower"] is not None and column["upper"] is not None:
        return f"{column['lower']:g} .. {column['upper']:g}"
    return (
        "dates (group by year, fiscal_year, quarter or month)" if column["kind"] == "date" else ""
    )


def _population_table(populations: dict[str, dict[str, int]]) -> object:
    from rich.table import Table

    years = sorted({year for by_year in populations.values() for year in by_year})
    table = Table(title="Child population published by each node (public estimates)")
    table.add_column("node")
    for year in years:
        table.add_column(year, justify="right")
    for node, by_year in populations.items():
        table.add_row(node, *(f"{by_year[y]:,}" if y in by_year else "-" for y in years))
    return table


def _group_population_table(table: dict[str, object]) -> object:
    from rich.table import Table

    rows = table["rows"]
    assert isinstance(rows, list)
    years = sorted({row["year"] for row in rows})
    cells = {(row["column"], row["value"], row["year"]): row["population"] for row in rows}
    groups = sorted({(row["column"], row["value"]) for row in rows})
    rendered = Table()
    rendered.add_column("group")
    for year in years:
        rendered.add_column(year, justify="right")
    for column, value in groups:
        rendered.add_row(
            f"{column}={value}",
            *(
                f"{cells[column, value, y]:,}" if (column, value, y) in cells else "-"
                for y in years
            ),
        )
    return rendered
