"""Reading a jurisdiction's export: CSV or Parquet in, file-level checks, the reject report.

Problems with the file as a whole (unreadable, wrong columns, unknown dataset, no public
values declared) are `IngestError`s a user can fix; problems with single rows are left
to `node.row_validation` and end up in a reject report under the node's `rejects/`.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kernel.files import PRIVATE_FILE_MODE, atomic_write_bytes
from node.permissions import make_private_dir
from node.row_validation import DERIVED_COLUMNS, REJECT_REPORT_COLUMNS
from privacy.schema import ColumnKind, Dataset

if TYPE_CHECKING:
    import polars as pl


class IngestError(ValueError):
    """A file-level problem a user can fix: unreadable file, wrong columns, unknown dataset."""


def scan_export(source: Path) -> pl.LazyFrame:
    """The file's rows, lazily: CSV as text only (every cell is parsed later), Parquet typed."""
    import polars as pl

    if not source.is_file():
        raise IngestError(f"{source} does not exist or is not a file.")
    suffix = source.suffix.lower()
    try:
        if suffix == ".csv":
            lazy = pl.scan_csv(source, infer_schema=False)
        elif suffix in (".parquet", ".pq"):
            lazy = pl.scan_parquet(source)
        else:
            raise IngestError(f"{source}: unsupported file type {suffix!r}; use .csv or .parquet.")
        lazy.collect_schema()  # reads the header or footer: a broken file fails here
    except (pl.exceptions.PolarsError, OSError) as error:
        raise IngestError(f"could not read {source} as {suffix[1:]}: {error}") from None
    return lazy


def count_rows(lazy: pl.LazyFrame, source_name: str) -> int:
    """How many data rows the export has (Parquet: from its footer; CSV: one read)."""
    import polars as pl

    try:
        return int(lazy.select(pl.len()).collect(engine="streaming").item())
    except (pl.exceptions.PolarsError, OSError) as error:
        raise IngestError(f"could not read {source_name}: {error}") from None


def export_batches(source: Path, rows_per_batch: int) -> Iterator[pl.DataFrame]:
    """The file's rows in batches, read as `scan_export` reads them (CSV as text), never
    more than a batch or two in memory at once. A Parquet batch is whole row groups, about
    `rows_per_batch` rows (a larger row group is one batch: Parquet decodes whole groups)."""
    import polars as pl

    try:
        if source.suffix.lower() == ".csv":
            reader = pl.read_csv_batched(source, infer_schema_length=0, batch_size=rows_per_batch)
            while batches := reader.next_batches(1):
                yield from batches
            return
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(source).metadata
        group_rows = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        for start, length in _spans(group_rows, rows_per_batch):
            yield pl.scan_parquet(source).slice(start, length).collect()
    except (pl.exceptions.PolarsError, OSError, ValueError) as error:
        raise IngestError(f"could not read {source}: {error}") from None


def _spans(group_rows: list[int], rows_per_batch: int) -> Iterator[tuple[int, int]]:
    """(first row, rows) of consecutive row groups of about `rows_per_batch` rows."""
    start = length = 0
    for rows in group_rows:
        if length and length + rows > rows_per_batch:
            yield start, length
            start, length = start + length, 0
        length += rows
    if length:
        yield start, length


def check_export_columns(spec: Dataset, columns: list[str], source_name: str) -> None:
    """Every schema column is there (derived ones may be omitted) and nothing else is."""
    derived = DERIVED_COLUMNS.get(spec.name, frozenset())
    expected = set(spec.column_names)
    missing = [name for name in spec.column_names if name not in columns and name not in derived]
    unknown = [name for name in columns if name not in expected]
    problems = []
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown columns: {', '.join(unknown)}")
    if problems:
        raise IngestError(
            f"{source_name} does not match the {spec.name} schema ({'; '.join(problems)}). "
            "Rename or drop columns to match `npcs-node` schema names; the current snapshot "
            "is unchanged."
        )


def check_domains_declared(spec: Dataset) -> None:
    """Every categorical column has its public values (the node's counties, for one)."""
    undeclared = [c.name for c in spec.columns if c.kind is ColumnKind.CATEGORICAL and not c.domain]
    if undeclared:
        raise IngestError(
            f"{spec.name}: no public values declared for {', '.join(undeclared)}; list them in "
            'node.toml (e.g. counties = ["c001", ...]) before ingesting.'
        )


def write_reject_report(
    rejects_dir: Path, dataset: str, source_stem: str, rejects: pl.DataFrame
) -> Path | None:
    """The reject list as a CSV under `rejects_dir` (None when nothing was rejected)."""
    if rejects.height == 0:
        return None
    make_private_dir(rejects_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    unique = secrets.token_hex(2)
    path = rejects_dir / f"{dataset}-{stamp}-{unique}-{source_stem}.csv"
    row, column, _reason = REJECT_REPORT_COLUMNS
    buffer = io.BytesIO()
    rejects.sort(row, column).write_csv(buffer)
    # Raw rejected values: for the node's operator only.
    atomic_write_bytes(path, buffer.getvalue(), mode=PRIVATE_FILE_MODE)
    return path
