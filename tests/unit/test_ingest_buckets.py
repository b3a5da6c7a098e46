"""An export validated in buckets of persons (node/ingest_buckets.py) gives exactly what
validating it whole gives: the same valid rows, rejects (with their file row numbers),
truncation, derived columns and datasets, and manifest facts."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

import node.ingest_buckets as buckets_module
from node.ingest_result import IngestResult
from node.layout import NodePaths
from node.scratch_dirs import SCRATCH_PREFIX
from node.store import DataStore
from node.synth import Jurisdiction, generate
from privacy.schema import PARTNERSHIP_SCHEMA, ColumnKind

COUNTIES = ("c001", "c002")
SCHEMA = PARTNERSHIP_SCHEMA.with_local_domains({"county": COUNTIES})
SMALL_BUCKETS = 400


def messy_reports() -> pl.DataFrame:
    """Synthetic reports with what ingest must catch: bad cells, one child spelled four
    ways and reported past the contribution bounds, and no recurrence_12m (derived)."""
    place = Jurisdiction(children=20_000, first_year=2019, last_year=2024, counties=COUNTIES)
    reports = generate("reports", place, seed=5).with_columns(pl.col("report_date").cast(pl.String))
    first = reports.head(1)
    spellings = ["CHILD-X", " child-x", "Child-X ", "child-x"]
    # The same report day over and over: past the per-period and the total bound.
    one_child = pl.concat(
        [first.with_columns(child_id=pl.lit(spelling)) for spelling in spellings * 12]
    )
    broken = reports.slice(10, 5).with_columns(
        county=pl.lit("nowhere"), report_date=pl.lit("2020-02-30")
    )
    rows = pl.concat([reports.slice(0, 3000), one_child, broken, reports.slice(3000)])
    return rows.with_columns(pl.col(c).cast(pl.String) for c in rows.columns)


def ingest(tmp_path: Path, name: str, source: Path, dataset: str) -> IngestResult:
    store = DataStore(NodePaths(tmp_path / name), SCHEMA)
    result = store.ingest(dataset, source)
    assert result.snapshot is not None, result.problem
    return result


def rows_of(path: Path) -> pl.DataFrame:
    frame = pl.read_parquet(path)
    return frame.sort(frame.columns)


def rejects_of(result: IngestResult) -> list[dict[str, str]]:
    assert result.reject_report is not None
    with result.reject_report.open(encoding="utf-8") as handle:
        return sorted(csv.DictReader(handle), key=lambda row: (int(row["row"]), row["column"]))


@pytest.mark.parametrize("file_type", ["csv", "parquet", "typed-parquet"])
def test_reports_in_buckets_equal_reports_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_type: str
) -> None:
    """CSV, Parquet of text, and typed Parquet in many small row groups (read a few
    row groups per batch)."""
    frame = messy_reports()
    source = tmp_path / f"reports.{file_type.removeprefix('typed-')}"
    if file_type == "csv":
        frame.write_csv(source)
    elif file_type == "parquet":
        frame.write_parquet(source)
    else:
        reports = SCHEMA.dataset("reports")
        flags = [
            c.name for c in reports.columns if c.kind is ColumnKind.BOOLEAN and c.name in frame
        ]
        typed = frame.with_columns(
            *(pl.col(name) == "true" for name in flags),
            pl.col("child_age_months").cast(pl.Int64, strict=False),
            pl.col("report_date").str.to_date(strict=False),
        )
        typed.write_parquet(source, row_group_size=SMALL_BUCKETS // 3)
        assert pq.ParquetFile(source).metadata.num_row_groups > 20

    whole = ingest(tmp_path, "whole", source, "reports")
    monkeypatch.setattr(buckets_module, "BUCKET_ROWS", SMALL_BUCKETS)
    monkeypatch.setattr(buckets_module, "BATCH_ROWS", SMALL_BUCKETS)
    bucketed = ingest(tmp_path, "bucketed", source, "reports")

    assert frame.height > 10 * SMALL_BUCKETS  # many buckets
    assert whole.rejected >= 5 + 40  # the broken rows and the one child's excess rows
    assert whole.truncated >= 40
    facts = ("accepted", "rejected", "truncated")
    assert [getattr(bucketed, f) for f in facts] == [getattr(whole, f) for f in facts]
    assert whole.snapshot is not None
    assert bucketed.snapshot is not None
    assert rows_of(bucketed.snapshot.path).equals(rows_of(whole.snapshot.path))
    assert bucketed.snapshot.date_ranges == whole.snapshot.date_ranges
    assert whole.snapshot.verified_bounds is not None  # every person within the bounds
    assert bucketed.snapshot.verified_bounds == whole.snapshot.verified_bounds
    assert bucketed.snapshot.rows == whole.snapshot.rows == whole.accepted
    assert rejects_of(bucketed) == rejects_of(whole)
    stored = pl.read_parquet(bucketed.snapshot.path)
    assert stored.filter(pl.col("child_id") == "child-x").height > 0  # one child, kept once
    assert stat.S_IMODE(bucketed.snapshot.path.stat().st_mode) == 0o600
    assert not list((tmp_path / "bucketed").rglob(f"{SCRATCH_PREFIX}*"))
    assert not list((tmp_path / "bucketed").rglob("*.tmp"))


def test_workforce_years_derived_in_buckets_equal_derived_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = Jurisdiction(children=400_000, first_year=2019, last_year=2024, counties=COUNTIES)
    source = tmp_path / "workforce.parquet"
    generate("workforce", place, seed=2).write_parquet(source)

    whole = ingest(tmp_path, "whole", source, "workforce")
    monkeypatch.setattr(buckets_module, "BUCKET_ROWS", SMALL_BUCKETS)
    bucketed = ingest(tmp_path, "bucketed", source, "workforce")

    assert pl.scan_parquet(source).select(pl.len()).collect().item() > 5 * SMALL_BUCKETS
    [whole_years] = whole.derived
    [bucketed_years] = bucketed.derived
    assert whole_years.rows > 0
    assert rows_of(bucketed_years.path).equals(rows_of(whole_years.path))
    assert whole.snapshot is not None
    assert bucketed.snapshot is not None
    assert rows_of(bucketed.snapshot.path).equals(rows_of(whole.snapshot.path))
