"""`npcs-node population import|show`: the public child populations by group a node publishes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from node.layout import NodePaths

NODE_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group(name="population")
def command() -> None:
    """Import or show the public child populations by year and group (for rates by group)."""


@command.command(name="import")
@click.argument("node_dir", type=NODE_DIR)
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--source",
    required=True,
    help="Where the numbers come from, e.g. 'US Census Bureau, Vintage 2023 estimates'.",
)
def import_command(node_dir: Path, csv_file: Path, source: str) -> None:
    """Validate CSV_FILE (year,column,value,population) and publish it in Describe.

    \b
    One row per year, column and value, for example:
      year,column,value,population
      2023,race_ethnicity,black,61200
      2023,sex,female,201000
    The new table replaces the old one; a running node publishes it at once.
    """
    from node.populations import save_populations
    from privacy.population import PopulationFileError, parse_population_csv

    try:
        table = parse_population_csv(csv_file.read_text(encoding="utf-8-sig"), source)
    except PopulationFileError as exc:
        raise click.ClickException(f"{csv_file}: {exc}") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{csv_file}: not UTF-8 text; save it as CSV (UTF-8)") from None
    save_populations(NodePaths(node_dir), table)
    click.echo(
        f"published {len(table.rows)} populations ({', '.join(table.columns())}; "
        f"years {', '.join(table.years())}) from {table.source!r}"
    )


@command.command(name="show")
@click.argument("node_dir", type=NODE_DIR)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def show_command(node_dir: Path, output_format: str) -> None:
    """The populations this node publishes, with their source."""
    from node.populations import load_populations

    table = load_populations(NodePaths(node_dir))
    if table is None:
        raise click.ClickException(
            f"{node_dir} publishes no populations by group; "
            "import them with `npcs-node population import DIR FILE --source TEXT`"
        )
    if output_format == "json":
        click.echo(json.dumps(json.loads(table.to_json()), indent=2))
        return
    click.echo(f"source: {table.source}")
    for row in table.rows:
        click.echo(f"{row.year}  {row.column}={row.value}  {row.population:,}")
