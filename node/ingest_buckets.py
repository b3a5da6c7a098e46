"""A large export read in buckets of persons, so ingest never holds the whole table.

Every ingest check is a function of one row (parsing, domains, bounds) or of one person's
rows (truncation to the contribution bounds, `recurrence_12m`, `workforce_years`). So the
rows can be validated in groups that never split a person: the bucket of a row is a hash
of its canonical privacy-unit id (`IDENTIFIER_RULE`, so `KZ` and ` kz` share a bucket),
modulo the number of buckets. One pass over the export in batches (pyarrow's Parquet
batches, polars' batched CSV reader) appends each batch's rows to one Parquet file per
bucket, each row keeping its 1-based row number in the whole file (the reject report's
`row`); then each bucket is read, validated and written on by itself and its file
deleted. Peak memory is about one bucket. (polars' partitioned `sink_parquet` buffered
about the whole table at 10M rows, so it is not used.)

The bucket files hold raw case records: they live in a private (0700) scratch folder
inside the node folder, are created 0600, and the folder is removed when ingest ends.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from node.ingest import IngestError, export_batches
from node.permissions import make_private_dir
from node.row_validation import ROW_NUMBER, canonical_identifier
from node.snapshot_file import SnapshotFile
from privacy.schema import Dataset

if TYPE_CHECKING:
    import polars as pl

BUCKET_ROWS = 1_000_000
"""Rows per bucket (about): an export up to this size is validated in one piece."""
BATCH_ROWS = 200_000
"""Rows read from the export at a time while it is split into buckets."""
SCRATCH_PREFIX = ".ingest-scratch-"
_BUCKET = "__bucket"
_HASH_SEED = 20_240


@contextmanager
def person_buckets(
    source: Path, lazy: pl.LazyFrame, spec: Dataset, rows: int, scratch_parent: Path
) -> Iterator[Iterator[pl.DataFrame]]:
    """The export's rows with their row numbers, one bucket of persons at a time."""

    buckets = -(-rows // BUCKET_ROWS)
    if buckets <= 1:
        yield iter([_collect(lazy.with_row_index(ROW_NUMBER, offset=1))])
        return
    scratch = scratch_parent / f"{SCRATCH_PREFIX}{secrets.token_hex(4)}"
    make_private_dir(scratch)
    files: dict[int, SnapshotFile] = {}
    try:
        unit = spec.privacy_unit
        bucket = canonical_identifier(unit, lazy.collect_schema()[unit]).hash(_HASH_SEED) % buckets
        first_row = 1
        for batch in export_batches(source, BATCH_ROWS):
            numbered = batch.with_row_index(ROW_NUMBER, offset=first_row)
            first_row += batch.height
            split = numbered.with_columns(bucket.alias(_BUCKET)).partition_by(
                _BUCKET, as_dict=True, include_key=False
            )
            for (key,), part in split.items():
                if key not in files:
                    files[key] = SnapshotFile(scratch)
                files[key].write(part)
        for file in files.values():
            file.finish()
        yield _read_and_delete([files[key].path for key in sorted(files)])
    finally:
        for file in files.values():
            file.discard()
        shutil.rmtree(scratch, ignore_errors=True)


def _collect(lazy: pl.LazyFrame) -> pl.DataFrame:
    import polars as pl

    try:
        return lazy.collect()
    except (pl.exceptions.PolarsError, OSError) as error:
        raise IngestError(f"could not read the export: {error}") from None


def _read_and_delete(files: list[Path]) -> Iterator[pl.DataFrame]:
    """Each bucket's rows in file row order; its file is deleted once read."""
    import polars as pl

    for path in files:
        frame = pl.read_parquet(path).sort(ROW_NUMBER)
        path.unlink()
        yield frame
