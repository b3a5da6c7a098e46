"""`npcs-node synth DIR`: realistic synthetic data, loaded through the real ingest path."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kernel.files import PRIVATE_FILE_MODE
from kernel.tomlfile import TomlFileError, edit_toml, write_toml
from node.permissions import make_private_dir

if TYPE_CHECKING:
    from tomlkit.toml_document import TOMLDocument

    from node.ingest_result import IngestResult
    from node.layout import NodePaths

_YEARS = re.compile(r"^(\d{4})(?:-(\d{4}))?$")


def _parse_years(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    match = _YEARS.match(value.strip())
    if not match:
        raise click.BadParameter(f"{value!r} is not a year range; write e.g. 2019-2024")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if last < first or first < 1990 or last > 2099:
        raise click.BadParameter(f"{value!r}: need 1990 <= first year <= last year <= 2099")
    return first, last


class _DatasetChoice(click.Choice[str]):
    """The schema's dataset names, looked up when the option is used or shown.

    `npcs-node --help` imports this module for its help line; importing the schema
    (and pydantic) here at start-up would make every help screen slower.
    """

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from node.derived import ingested_datasets
        from privacy.schema import PARTNERSHIP_SCHEMA

        return ingested_datasets(PARTNERSHIP_SCHEMA.dataset_names)

    @choices.setter
    def choices(self, _ignored: tuple[str, ...]) -> None:
        """click's constructor assigns the choices; they always come from the schema."""


@click.command("synth")
@click.argument("node_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--children",
    type=click.IntRange(min=1),
    default=None,
    help="Child population of the jurisdiction (default: node.toml's latest child_population).",
)
@click.option(
    "--years",
    default="2019-2024",
    show_default=True,
    callback=_parse_years,
    help="Year range FIRST-LAST of the generated events.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Generator seed.")
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    type=_DatasetChoice(),
    help="Generate only this dataset (repeatable; default: all four).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write each dataset to FOLDER/DATASET.csv instead of loading it (e.g. to fill a "
    "test database that `npcs-node refresh` then reads).",
)
def command(
    node_dir: Path,
    *,
    children: int | None,
    years: tuple[int, int],
    seed: int,
    datasets: tuple[str, ...],
    output_format: str,
    export_dir: Path | None,
) -> None:
    """Generate seeded synthetic data for a jurisdiction and ingest it into DIR.

    Creates a minimal node folder (node.toml with partnership "demo") if DIR has none,
    and records the public county list and child population in node.toml, and the
    populations by race/ethnicity and sex in populations.json, when absent.
    The data goes through the same validation and snapshot path as real exports.
    """
    from node.layout import NodePaths

    paths = NodePaths(node_dir)
    children = children or _configured_children(paths)
    ensure_node_folder(paths)
    ensure_public_data(paths, children, years)
    if export_dir is not None:
        exported = export_csv(
            paths, export_dir, children=children, years=years, seed=seed, datasets=datasets or None
        )
        if output_format == "json":
            click.echo(json.dumps(exported, indent=2))
            return
        for dataset, written in exported.items():
            click.echo(f"{dataset}: {written['rows']} rows -> {written['file']}")
        return
    results = synthesise(paths, children, years, seed, datasets or None)
    summary = {
        dataset: {
            "snapshot_id": result.snapshot.snapshot_id if result.snapshot else None,
            "rows": result.accepted,
            "rejected": result.rejected,
        }
        for dataset, result in results.items()
    }
    summary.update(
        {
            derived.dataset: {
                "snapshot_id": derived.snapshot_id,
                "rows": derived.rows,
                "rejected": 0,
            }
            for result in results.values()
            for derived in result.derived
        }
    )
    if output_format == "json":
        click.echo(json.dumps(summary, indent=2))
        return
    for dataset, facts in summary.items():
        click.echo(f"{dataset}: {facts['rows']} rows -> snapshot {facts['snapshot_id']}")


def synthesise(
    paths: NodePaths,
    children: int,
    years: tuple[int, int],
    seed: int,
    datasets: tuple[str, ...] | None = None,
) -> dict[str, IngestResult]:
    """Generate each dataset to a temporary Parquet file and ingest it (progress on stderr)."""
    from rich.console import Console
    from rich.progress import Progress

    from node.settings import load_settings
    from node.store import DataStore, node_schema
    from node.synth import DATASETS, Jurisdiction
    from node.synth_output import write_parquet

    settings = load_settings(paths.root)
    store = DataStore(paths, node_schema(settings))
    jurisdiction = Jurisdiction(
        children=children,
        first_year=years[0],
        last_year=years[1],
        counties=tuple(settings.counties),
    )
    results: dict[str, IngestResult] = {}
    chosen = datasets or DATASETS
    with (
        tempfile.TemporaryDirectory(prefix="npcs-synth-") as scratch,
        Progress(console=Console(stderr=True), transient=True) as progress,
    ):
        task = progress.add_task("synthesising", total=len(chosen) * 2)
        for dataset in chosen:
            progress.update(task, description=f"generating {dataset}")
            source = Path(scratch) / f"synth-{dataset}-seed{seed}.parquet"
            write_parquet(dataset, jurisdiction, seed, source)
            progress.update(task, advance=1, description=f"ingesting {dataset}")
            result = store.ingest(dataset, source)
            if result.snapshot is None:
                raise click.ClickException(f"synthetic {dataset} was not stored: {result.problem}")
            results[dataset] = result
            progress.update(task, advance=1)
    return results


def export_csv(
    paths: NodePaths,
    folder: Path,
    *,
    children: int,
    years: tuple[int, int],
    seed: int,
    datasets: tuple[str, ...] | None = None,
) -> dict[str, dict[str, object]]:
    """Generate each dataset to FOLDER/DATASET.csv (schema column names); load nothing."""
    from node.settings import load_settings
    from node.synth import DATASETS, Jurisdiction
    from node.synth_output import write_csv

    settings = load_settings(paths.root)
    jurisdiction = Jurisdiction(
        children=children,
        first_year=years[0],
        last_year=years[1],
        counties=tuple(settings.counties),
    )
    folder.mkdir(parents=True, exist_ok=True)
    exported: dict[str, dict[str, object]] = {}
    for dataset in datasets or DATASETS:
        target = folder / f"{dataset}.csv"
        rows = write_csv(dataset, jurisdiction, seed, target)
        exported[dataset] = {"rows": rows, "file": str(target)}
    return exported


def ensure_node_folder(paths: NodePaths) -> None:
    """A minimal node.toml (name from the folder, partnership "demo") when there is none."""
    if paths.settings_file.exists():
        return
    make_private_dir(paths.root)
    name = re.sub(r"[^a-z0-9-]+", "-", paths.root.resolve().name.lower()).strip("-") or "node"
    write_toml(
        paths.settings_file,
        {"name": name, "partnership": "demo"},
        header="Created by `npcs-node synth`; `npcs-node init` adds keys and certificates.",
        new_mode=PRIVATE_FILE_MODE,
    )


def ensure_public_data(paths: NodePaths, children: int, years: tuple[int, int]) -> None:
    """Add the public county list and child population to node.toml if it lacks them.

    Fills the empty `counties = []` and `[child_population]` that `npcs-node init`
    writes, or adds the keys when they are absent; every other line, and every comment
    the operator wrote, is kept as it is.
    """
    from node.synth import child_population_by_year, default_counties

    def fill_public_data(document: TOMLDocument) -> None:
        if not document.get("counties"):
            document["counties"] = list(default_counties(children))
        if not document.get("child_population"):
            document["child_population"] = child_population_by_year(children, *years)

    try:
        edit_toml(paths.settings_file, fill_public_data)
    except TomlFileError as error:
        raise click.ClickException(str(error)) from None
    if not paths.populations_file.exists():
        from node.populations import save_populations
        from node.synth import group_populations

        save_populations(paths, group_populations(children, *years))


def _configured_children(paths: NodePaths) -> int:
    from node.settings import load_settings

    exists = paths.settings_file.exists()
    population = load_settings(paths.root).child_population if exists else {}
    if not population:
        raise click.ClickException(
            "how many children live in this jurisdiction? Pass --children N "
            "(or set child_population in node.toml)."
        )
    return population[max(population)]
