"""Ingest validates every row, rejects bad ones with a reason and swaps snapshots atomically."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import node.store as store_module
from node.bounds_record import MANIFEST_KEY as BOUNDS_KEY
from node.bounds_record import declared_bounds
from node.ingest import IngestError
from node.layout import NodePaths
from node.recurrence import recurrence_12m
from node.store import DataStore
from privacy.schema import PARTNERSHIP_SCHEMA

COUNTIES = ("c001", "c002")
SCHEMA = PARTNERSHIP_SCHEMA.with_local_domains({"county": COUNTIES})


def workforce_row(worker: str = "w1", month: str = "2021-03-01", **changes: str) -> dict[str, str]:
    row = {
        "worker_id": worker,
        "month": month,
        "role": "caseworker",
        "unit": "intake",
        "tenure_months": "12",
        "active_cases": "14",
        "new_assignments": "3",
        "separated": "false",
        "separation_type": "none",
    }
    row.update(changes)
    return row


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_rejects(path: Path | None) -> list[dict[str, str]]:
    assert path is not None
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def store(tmp_path: Path) -> DataStore:
    return DataStore(NodePaths(tmp_path / "node"), SCHEMA)


def good_workforce(tmp_path: Path, name: str = "good.csv", workers: int = 3) -> Path:
    rows = [workforce_row(f"w{i}", f"2021-{m:02d}-01") for i in range(workers) for m in (1, 2)]
    return write_csv(tmp_path / name, rows)


BAD_CELLS = [
    pytest.param({"tenure_months": "twelve"}, "tenure_months", "wrong type", id="wrong-type"),
    pytest.param({"separated": "maybe"}, "separated", "wrong type", id="bad-boolean"),
    pytest.param({"role": "boss"}, "role", "out of domain", id="out-of-domain"),
    pytest.param({"active_cases": "61"}, "active_cases", "out of bounds", id="above-bounds"),
    pytest.param({"tenure_months": "-1"}, "tenure_months", "out of bounds", id="below-bounds"),
    pytest.param({"month": "2021-02-30"}, "month", "wrong type", id="impossible-date"),
    pytest.param({"month": "03/01/2021"}, "month", "wrong type", id="date-format"),
    pytest.param({"month": "1989-12-01"}, "month", "out of range", id="date-too-early"),
    pytest.param({"worker_id": ""}, "worker_id", "missing privacy unit id", id="no-unit-id"),
    pytest.param({"unit": ""}, "unit", "missing value", id="null-non-nullable"),
    pytest.param({"new_assignments": "2.5"}, "new_assignments", "wrong type", id="fraction"),
]


@pytest.mark.parametrize(("change", "column", "reason"), BAD_CELLS)
def test_a_bad_cell_rejects_its_row_with_the_column_and_reason(
    store: DataStore, tmp_path: Path, change: dict[str, str], column: str, reason: str
) -> None:
    rows = [workforce_row("w1"), workforce_row("w2", **change), workforce_row("w3")]
    result = store.ingest("workforce", write_csv(tmp_path / "in.csv", rows))
    assert (result.accepted, result.rejected) == (2, 1)
    rejects = read_rejects(result.reject_report)
    assert [(r["row"], r["column"]) for r in rejects] == [("2", column)]
    assert rejects[0]["reason"].startswith(reason), rejects[0]["reason"]
    assert result.snapshot is not None
    stored = pl.read_parquet(result.snapshot.path)
    assert stored.get_column("worker_id").to_list() == ["w1", "w3"]


def test_a_unit_over_the_contribution_bound_keeps_its_earliest_rows(
    store: DataStore, tmp_path: Path
) -> None:
    """Truncation, not rejection: the child over the bound keeps its earliest rows."""
    bound = SCHEMA.dataset("incidents").max_rows_per_unit
    frame = _incident_rows(children=["k1"] * (bound + 1) + ["k2"])
    source = tmp_path / "incidents.parquet"
    frame.write_parquet(source)
    result = store.ingest("incidents", source)
    assert (result.accepted, result.rejected, result.truncated) == (bound + 1, 1, 1)
    (reject,) = read_rejects(result.reject_report)
    assert reject["column"] == "child_id"
    assert reject["reason"].startswith("over contribution bound")
    assert f"earliest {bound} are kept" in reject["reason"]


def test_a_worker_over_the_monthly_bound_keeps_one_row_that_month(
    store: DataStore, tmp_path: Path
) -> None:
    rows = [
        workforce_row("w1", "2021-03-01", active_cases="20"),
        workforce_row("w1", "2021-03-01", active_cases="21"),
        workforce_row("w1", "2021-04-01"),
        workforce_row("w2", "2021-03-01"),
    ]
    result = store.ingest("workforce", write_csv(tmp_path / "w.csv", rows))
    assert (result.accepted, result.truncated) == (3, 1)
    (reject,) = read_rejects(result.reject_report)
    assert reject["row"] == "2"  # the later of w1's two March rows in file order
    assert "in one month" in reject["reason"]
    assert result.snapshot is not None
    stored = pl.read_parquet(result.snapshot.path)
    assert stored.get_column("active_cases").to_list() == [20, 14, 14]


def test_nullable_columns_keep_nulls_as_nulls(store: DataStore, tmp_path: Path) -> None:
    frame = _incident_rows(children=["k1", "k2"]).with_columns(
        review_date=pl.lit(None, dtype=pl.Date), ssit_workload=pl.lit(None, dtype=pl.Int64)
    )
    source = tmp_path / "incidents.parquet"
    frame.write_parquet(source)
    result = store.ingest("incidents", source)
    assert result.snapshot is not None
    stored = pl.read_parquet(result.snapshot.path)
    assert stored.get_column("review_date").null_count() == 2
    assert stored.get_column("ssit_workload").null_count() == 2


def test_snapshot_has_exactly_the_schema_columns_with_stable_dtypes(
    store: DataStore, tmp_path: Path
) -> None:
    result = store.ingest("workforce", good_workforce(tmp_path))
    assert result.snapshot is not None
    stored = pl.read_parquet(result.snapshot.path)
    assert tuple(stored.columns) == SCHEMA.dataset("workforce").column_names
    assert stored.schema["worker_id"] == pl.String
    assert stored.schema["month"] == pl.Date
    assert stored.schema["tenure_months"] == pl.Int64
    assert stored.schema["separated"] == pl.Boolean


def test_a_file_with_bad_rows_replaces_the_snapshot_and_reports_the_rejects(
    store: DataStore, tmp_path: Path
) -> None:
    first = store.ingest("workforce", good_workforce(tmp_path, workers=2))
    assert first.snapshot is not None
    rows = [workforce_row("w1"), workforce_row("w2", role="boss", active_cases="99")]
    second = store.ingest("workforce", write_csv(tmp_path / "second.csv", rows))
    assert second.snapshot is not None
    assert store.current("workforce") == second.snapshot
    assert second.snapshot.rows == 1
    assert second.snapshot.rejected == 1
    rejects = read_rejects(second.reject_report)
    assert [(r["row"], r["column"]) for r in rejects] == [("2", "active_cases"), ("2", "role")]
    # The earlier snapshot is immutable and still readable by id.
    assert pl.read_parquet(store.snapshot("workforce", first.snapshot.snapshot_id).path).height == 4


def test_an_all_bad_file_keeps_the_current_snapshot(store: DataStore, tmp_path: Path) -> None:
    first = store.ingest("workforce", good_workforce(tmp_path))
    rows = [workforce_row("w1", role="boss"), workforce_row("w2", month="not a date")]
    result = store.ingest("workforce", write_csv(tmp_path / "bad.csv", rows))
    assert result.snapshot is None
    assert (result.accepted, result.rejected) == (0, 2)
    assert result.problem is not None
    assert "every row" in result.problem
    assert len(read_rejects(result.reject_report)) == 2
    assert store.current("workforce") == first.snapshot


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("worker_id,month\nw1,2021-01-01\n", "missing columns", id="missing"),
        pytest.param(None, "unknown columns", id="unknown"),
        pytest.param("", "could not read", id="empty-file"),
    ],
)
def test_a_file_with_wrong_columns_or_unreadable_is_refused_and_changes_nothing(
    store: DataStore, tmp_path: Path, content: str | None, message: str
) -> None:
    first = store.ingest("workforce", good_workforce(tmp_path))
    source = tmp_path / "wrong.csv"
    if content is None:
        write_csv(source, [workforce_row() | {"salary": "1"}])
    else:
        source.write_text(content, encoding="utf-8")
    with pytest.raises(IngestError, match=message):
        store.ingest("workforce", source)
    assert store.current("workforce") == first.snapshot


def test_header_only_file_and_unknown_dataset_are_refused(store: DataStore, tmp_path: Path) -> None:
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(workforce_row()) + "\n", encoding="utf-8")
    with pytest.raises(IngestError, match="no data rows"):
        store.ingest("workforce", header_only)
    with pytest.raises(IngestError, match="unknown dataset 'cases'"):
        store.ingest("cases", header_only)
    assert store.current("workforce") is None


def test_ingest_refuses_data_with_county_when_the_node_declared_no_counties(
    tmp_path: Path,
) -> None:
    bare = DataStore(NodePaths(tmp_path / "node"), PARTNERSHIP_SCHEMA)
    source = tmp_path / "incidents.parquet"
    _incident_rows(children=["k1"]).write_parquet(source)
    with pytest.raises(IngestError, match="counties"):
        bare.ingest("incidents", source)


def test_a_crash_between_writing_the_snapshot_and_switching_current_loses_nothing(
    store: DataStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.ingest("workforce", good_workforce(tmp_path))
    assert first.snapshot is not None

    def crash(*_args: Any) -> None:
        raise OSError("simulated power loss before CURRENT switched")

    monkeypatch.setattr(store_module, "_switch_current", crash)
    with pytest.raises(OSError, match="simulated"):
        store.ingest("workforce", good_workforce(tmp_path, "next.csv", workers=5))
    current = store.current("workforce")
    assert current == first.snapshot
    assert pl.read_parquet(current.path).height == 6
    # No temporary file of the interrupted write is left behind (kernel.files names them .*).
    assert not [p.name for p in current.path.parent.iterdir() if p.name.startswith(".")]


def test_manifest_records_hashes_source_and_marks_date_ranges_local_only(
    store: DataStore, tmp_path: Path
) -> None:
    result = store.ingest("workforce", good_workforce(tmp_path))
    assert result.snapshot is not None
    manifest = json.loads(result.snapshot.path.with_suffix(".json").read_text())
    assert manifest["id"] == result.snapshot.snapshot_id
    assert manifest["id"].endswith(manifest["sha256"][:8])
    assert manifest["source"] == "good.csv"
    assert manifest["schema_version"] == SCHEMA.version
    assert "date_ranges" not in manifest
    assert manifest["local_only"]["date_ranges"]["month"] == ["2021-01-01", "2021-02-01"]
    assert result.snapshot.date_ranges["month"] == ("2021-01-01", "2021-02-01")


def test_manifest_records_the_contribution_bounds_the_stored_rows_satisfy(
    store: DataStore, tmp_path: Path
) -> None:
    """Truncated at ingest, re-checked, recorded: what the fast route needs (the derived
    worker-year view too, with its own bounds)."""
    rows = [workforce_row("w1", f"2021-{month:02d}-01") for month in range(1, 13)]
    rows.append(workforce_row("w1", "2021-03-01"))  # a second row that month: cut
    result = store.ingest("workforce", write_csv(tmp_path / "over.csv", rows))
    assert result.snapshot is not None
    manifest = json.loads(result.snapshot.path.with_suffix(".json").read_text())
    recorded = manifest[BOUNDS_KEY]
    assert recorded == declared_bounds(SCHEMA.dataset("workforce"))
    assert {"period": "month", "max_rows": 1} in recorded["max_rows_per_period"]
    assert result.snapshot.verified_bounds == recorded
    (derived,) = result.derived
    assert derived.verified_bounds == declared_bounds(SCHEMA.dataset(derived.dataset))
    assert store.current("workforce") == result.snapshot


def test_recurrence_is_derived_when_absent_following_the_cfsr_rule(
    store: DataStore, tmp_path: Path
) -> None:
    frame = _report_rows(
        [
            ("k1", date(2020, 1, 1), "substantiated"),
            ("k1", date(2020, 6, 1), "unsubstantiated"),
            ("k1", date(2020, 11, 1), "indicated"),  # within 12 months of 2020-01-01
            ("k2", date(2020, 1, 1), "substantiated"),
            ("k2", date(2021, 1, 2), "substantiated"),  # 12 months and a day later
            ("k3", date(2020, 1, 1), "unsubstantiated"),
            ("k3", date(2020, 2, 1), "substantiated"),  # no earlier victim report
        ]
    )
    assert recurrence_12m(frame).to_list() == [False, False, True, False, False, False, False]
    source = tmp_path / "reports.parquet"
    frame.write_parquet(source)
    result = store.ingest("reports", source)
    assert result.snapshot is not None
    stored = pl.read_parquet(result.snapshot.path)
    assert stored.get_column("recurrence_12m").to_list() == recurrence_12m(frame).to_list()


def test_a_given_recurrence_that_contradicts_the_report_dates_is_rejected(
    store: DataStore, tmp_path: Path
) -> None:
    frame = _report_rows(
        [("k1", date(2020, 1, 1), "substantiated"), ("k1", date(2020, 3, 1), "substantiated")]
    ).with_columns(recurrence_12m=pl.Series([False, False]))
    source = tmp_path / "reports.parquet"
    frame.write_parquet(source)
    result = store.ingest("reports", source)
    rejects = read_rejects(result.reject_report)
    assert [(r["row"], r["column"]) for r in rejects] == [("2", "recurrence_12m")]
    assert rejects[0]["reason"].startswith("inconsistent")


# ---------------------------------------------------------------------------
# Row builders from the synthetic generator (valid by construction)


def _incident_rows(children: list[str]) -> pl.DataFrame:
    from node.synth import Jurisdiction, generate

    jurisdiction = Jurisdiction(
        children=2_000_000, first_year=2020, last_year=2020, counties=COUNTIES
    )
    template = generate("incidents", jurisdiction, seed=1).head(1)
    return pl.concat([template] * len(children)).with_columns(
        child_id=pl.Series(children), incident_id=pl.Series([f"i{n}" for n in range(len(children))])
    )


def _report_rows(events: list[tuple[str, date, str]]) -> pl.DataFrame:
    from node.synth import Jurisdiction, generate

    jurisdiction = Jurisdiction(children=10_000, first_year=2020, last_year=2020, counties=COUNTIES)
    template = generate("reports", jurisdiction, seed=1).head(1)
    return pl.concat([template] * len(events)).with_columns(
        child_id=pl.Series([e[0] for e in events]),
        report_date=pl.Series([e[1] for e in events]),
        disposition=pl.Series([e[2] for e in events]),
        report_id=pl.Series([f"r{n}" for n in range(len(events))]),
    )


def test_ingesting_the_same_file_twice_leaves_a_readable_current_snapshot(
    store: DataStore, tmp_path: Path
) -> None:
    source = good_workforce(tmp_path)
    first = store.ingest("workforce", source)
    second = store.ingest("workforce", source)
    assert first.snapshot is not None
    assert second.snapshot is not None
    assert second.snapshot.sha256 == first.snapshot.sha256  # same content, same bytes
    current = store.current("workforce")
    assert current is not None
    assert pl.read_parquet(current.path).height == 6


def test_text_cells_are_trimmed_and_yes_no_spellings_accepted(
    store: DataStore, tmp_path: Path
) -> None:
    rows = [
        workforce_row(" w1 ", " 2021-03-01 ", separated="TRUE", tenure_months=" 7 "),
        workforce_row("w2", separated="no", role=" supervisor"),
        workforce_row("w3", separated="1"),
    ]
    result = store.ingest("workforce", write_csv(tmp_path / "messy.csv", rows))
    assert result.rejected == 0
    assert result.snapshot is not None
    stored = pl.read_parquet(result.snapshot.path)
    assert stored.get_column("worker_id").to_list() == ["w1", "w2", "w3"]
    assert stored.get_column("separated").to_list() == [True, False, True]
    assert stored.get_column("role").to_list() == ["caseworker", "supervisor", "caseworker"]
    assert stored.get_column("tenure_months").to_list() == [7, 12, 12]
    assert stored.get_column("month").to_list() == [date(2021, 3, 1)] * 3


def test_identifier_spellings_of_one_child_are_one_privacy_unit(
    store: DataStore, tmp_path: Path
) -> None:
    """Issue 11: "KZ", " kz" and a decomposed "KÉ"/"ké" were counted as different children,
    so one child could contribute past the bound. Identifiers are canonicalised (trimmed,
    NFC, lower case) before the bound is applied, so the child's excess row is cut
    (node/truncation.py keeps each person's earliest rows up to the bound)."""
    bound = SCHEMA.dataset("incidents").max_rows_per_unit
    spellings = ["KZ", " kz", "kZ ", "Kz"]
    children = [spellings[n % len(spellings)] for n in range(bound + 1)]
    children += ["K\u0065\u0301", "k\u00e9"]  # one child, decomposed and composed
    source = tmp_path / "incidents.parquet"
    _incident_rows(children=children).write_parquet(source)
    result = store.ingest("incidents", source)
    assert (result.accepted, result.rejected, result.truncated) == (bound + 2, 1, 1)
    assert result.snapshot is not None
    stored = pl.read_parquet(result.snapshot.path).get_column("child_id").to_list()
    assert Counter(stored) == {"kz": bound, "k\u00e9": 2}
