"""The worker-year view: one row per worker per year, derived at ingest of `workforce`."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from node.ingest import IngestError
from node.layout import NodePaths
from node.store import DataStore
from node.synth import Jurisdiction, default_counties, generate
from node.worker_years import derive_worker_years
from privacy.schema import PARTNERSHIP_SCHEMA
from privacy.snapshot_types import snapshot_dtype

SCHEMA = PARTNERSHIP_SCHEMA.with_local_domains({"county": ("c001",)})
WORKFORCE = SCHEMA.dataset("workforce")
WORKER_YEARS = SCHEMA.dataset("workforce_years")


def months(worker: str, first: date, count: int, **last: object) -> list[dict[str, object]]:
    """`count` consecutive monthly rows of one worker; `last` overrides the final month."""
    rows: list[dict[str, object]] = []
    for index in range(count):
        year, month = divmod(first.month - 1 + index, 12)
        rows.append(
            {
                "worker_id": worker,
                "month": date(first.year + year, month + 1, 1),
                "role": "caseworker",
                "unit": "intake",
                "tenure_months": 10 + index,
                "active_cases": 12,
                "new_assignments": 2,
                "separated": False,
                "separation_type": "none",
            }
        )
    rows[-1].update(last)
    return rows


def frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    schema = {column.name: snapshot_dtype(column) for column in WORKFORCE.columns}
    return pl.DataFrame(rows, schema=schema)


def by_year(result: pl.DataFrame, worker: str) -> dict[int, dict[str, object]]:
    rows = result.filter(pl.col("worker_id") == worker).iter_rows(named=True)
    return {row["year_start"].year: row for row in rows}


def test_each_worker_has_one_row_per_calendar_year_with_its_last_month() -> None:
    rows = months("w1", date(2020, 10, 1), 5, role="supervisor", unit="ongoing")
    result = by_year(derive_worker_years(frame(rows)), "w1")
    assert sorted(result) == [2020, 2021]
    assert result[2020]["months_active"] == 3
    assert (result[2020]["role"], result[2020]["tenure_band"]) == ("caseworker", "1_2y")
    assert result[2021]["months_active"] == 2
    assert (result[2021]["role"], result[2021]["unit"]) == ("supervisor", "ongoing")
    assert not result[2020]["separated"]
    assert result[2021]["separation_type"] == "none"


def test_a_separation_marks_its_year_with_its_type() -> None:
    rows = months("w1", date(2021, 1, 1), 7, separated=True, separation_type="retirement")
    rows += months("w2", date(2021, 1, 1), 12)
    result = derive_worker_years(frame(rows))
    assert by_year(result, "w1")[2021]["separated"] is True
    assert by_year(result, "w1")[2021]["separation_type"] == "retirement"
    assert by_year(result, "w2")[2021]["separated"] is False
    assert result.columns == list(WORKER_YEARS.column_names)


def test_a_worker_keeps_at_most_the_total_bound_of_years() -> None:
    rows = [row for year in range(2010, 2024) for row in months("w1", date(year, 6, 1), 1)]
    result = derive_worker_years(frame(rows))
    assert result.height == WORKER_YEARS.max_rows_per_unit
    assert min(by_year(result, "w1")) == 2010  # the earliest years are kept


def test_synthetic_turnover_is_what_the_monthly_rows_say() -> None:
    place = Jurisdiction(
        children=900_000, first_year=2019, last_year=2024, counties=default_counties(900_000)
    )
    workforce = generate("workforce", place, seed=5)
    result = derive_worker_years(workforce)
    assert result.group_by("worker_id", "year_start").len()["len"].max() == 1
    monthly = workforce.filter(pl.col("separated")).height
    assert result.filter(pl.col("separated")).height == monthly  # one separation per worker
    per_year = result.group_by("year_start").agg(pl.col("separated").mean())
    assert per_year["separated"].is_between(0.15, 0.35).all()  # DESIGN: turnover 20-40%


def test_ingesting_workforce_stores_the_worker_year_view(tmp_path: Path) -> None:
    store = DataStore(NodePaths(tmp_path / "node"), SCHEMA)
    rows = months("w1", date(2021, 11, 1), 3) + months("w2", date(2021, 1, 1), 2)
    source = tmp_path / "workforce.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = store.ingest("workforce", source)
    (derived,) = result.derived
    assert derived.dataset == "workforce_years"
    assert store.current("workforce_years") == derived
    assert derived.rows == 3  # w1 in 2021 and 2022, w2 in 2021
    assert pl.read_parquet(derived.path).columns == list(WORKER_YEARS.column_names)


def test_the_worker_year_view_cannot_be_ingested_directly(tmp_path: Path) -> None:
    store = DataStore(NodePaths(tmp_path / "node"), SCHEMA)
    with pytest.raises(IngestError, match="ingest workforce instead"):
        store.ingest("workforce_years", tmp_path / "anything.csv")
