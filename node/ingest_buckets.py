"""A large export read in buckets of persons, so ingest never holds the whole table.

Every ingest check is a function of one row (parsing, domains, bounds) or of one person's
rows (truncation to the contribution bounds, `recurrence_12m`, `workforce_years`). So the
rows can be validated in groups that never split a person: the bucket of a row is a hash
of its canonical privacy-unit id (`IDENTIFIER_RULE`, so `KZ` and ` kz` share a bucket),
modulo the number of buckets. One pass over the export in batches (whole Parquet row
groups, polars' batched CSV reader) appends each batch's rows to its buckets' scratch
files, each row keeping its 1-based row number in the whole file (the reject report's
`row`); then each bucket is read, validated and written on by itself and its files
deleted. A bucket's rows are in file order, as its files are written in file order.
Peak memory is about one bucket plus one batch. (polars' partitioned `sink_parquet`
buffered about the whole table at 10M rows, so it is not used.)

Scratch files are Arrow IPC, uncompressed, written by pyarrow in a background thread
(a quarter of the CPU of polars' `write_ipc`) and read back memory-mapped: about the
speed of a copy, where Parquet with zstd cost a third of ingest's time. They
hold raw case records: they live in a private (0700) scratch folder inside the node
folder, are created 0600, and the folder is removed when ingest ends (or, after a
kill, by the next ingest or refresh: node/scratch_dirs.py).
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from kernel.files import PRIVATE_FILE_MODE
from node.background import WriteBehind, read_ahead
from node.cell_text import canonical_identifiers, trimmed_text
from node.ingest import IngestError, export_batches
from node.row_validation import ROW_NUMBER
from node.scratch_dirs import new_scratch_dir
from privacy.schema import Dataset

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

BUCKET_ROWS = 1_000_000
"""Rows per bucket (about): an export up to this size is validated in one piece."""
BATCH_ROWS = 500_000
"""Rows read from the export at a time (Parquet: whole row groups) while it is split."""
_BUCKET = "__bucket"
_HASH_SEED = 20_240


@contextmanager
def person_buckets(
    source: Path, lazy: pl.LazyFrame, spec: Dataset, rows: int, scratch_parent: Path
) -> Iterator[Iterator[pl.DataFrame]]:
    """The export's rows with their row numbers, one bucket of persons at a time."""
    import polars as pl

    buckets = -(-rows // BUCKET_ROWS)
    if buckets <= 1:
        yield iter([_collect(lazy.with_row_index(ROW_NUMBER, offset=1))])
        return
    scratch = new_scratch_dir(scratch_parent)
    spills = WriteBehind()
    try:
        files: list[list[Path]] = [[] for _ in range(buckets)]
        first_row = 1
        for batch in read_ahead(export_batches(source, BATCH_ROWS)):
            numbered = batch.with_row_index(ROW_NUMBER, offset=first_row)
            first_row += batch.height
            unit = canonical_identifiers(trimmed_text(numbered.get_column(spec.privacy_unit)))
            bucket_of_row = (unit.hash(_HASH_SEED) % buckets).alias(_BUCKET)
            split = numbered.with_columns(bucket_of_row).partition_by(
                _BUCKET, as_dict=True, include_key=False
            )
            parts = {
                _new_file(scratch, files[key]): part.to_arrow(compat_level=pl.CompatLevel.newest())
                for (key,), part in split.items()
            }
            spills.submit(functools.partial(_spill, parts))
            del numbered, unit, bucket_of_row, split, parts
        spills.wait()
        yield _read_and_delete(files)
    finally:
        spills.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _new_file(scratch: Path, paths: list[Path]) -> Path:
    """A new scratch file name, listed in `paths`."""
    path = scratch / f"{secrets.token_hex(8)}.arrow"
    paths.append(path)
    return path


def _spill(parts: dict[Path, pa.Table]) -> None:
    """Write each part to its new private scratch file. Runs in a background thread, so
    pyarrow only: polars 1.36 can deadlock when two threads use one frame."""
    import pyarrow as pa
    import pyarrow.ipc

    for path, part in parts.items():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, part.schema) as writer:
            writer.write_table(part)


def _collect(lazy: pl.LazyFrame) -> pl.DataFrame:
    import polars as pl

    try:
        return lazy.collect()
    except (pl.exceptions.PolarsError, OSError) as error:
        raise IngestError(f"could not read the export: {error}") from None


def _read_and_delete(buckets: list[list[Path]]) -> Iterator[pl.DataFrame]:
    """Each bucket's rows in file row order; its files are deleted once read."""
    import polars as pl

    for paths in buckets:
        if not paths:
            continue
        frame = pl.concat([pl.read_ipc(path, memory_map=True) for path in paths], rechunk=False)
        for path in paths:
            path.unlink()
        yield frame
        del frame  # the files stay mapped until the last reference goes
