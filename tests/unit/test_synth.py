"""The synthetic generator is deterministic, valid, and matches the published marginals."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from node.recurrence import recurrence_12m
from node.row_validation import validate
from node.synth import DATASETS, Jurisdiction, default_counties, generate, generate_chunks
from node.synth_output import write_csv, write_parquet
from privacy.schema import PARTNERSHIP_SCHEMA

YEARS = (2019, 2024)
PINNED_REPORTS_SHA256 = "855b08ee4bc713535f31ea56aac31244a37b0c8c8ea97f5448bc68dcf362d3e4"
"""Parquet (polars 1.36.1) of `reports`, 200,000 children, seed 3, as main made it before
reports were generated in chunks."""
N_YEARS = YEARS[1] - YEARS[0] + 1


def jurisdiction(children: int) -> Jurisdiction:
    return Jurisdiction(
        children=children,
        first_year=YEARS[0],
        last_year=YEARS[1],
        counties=default_counties(children),
    )


def top(series: pl.Series) -> float:
    value = series.max()
    assert isinstance(value, int | float)
    return value


def mean(series: pl.Series) -> float:
    value = series.mean()
    assert isinstance(value, int | float)
    return value


def parquet_sha256(frame: pl.DataFrame) -> str:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


@pytest.fixture(scope="module")
def state() -> dict[str, pl.DataFrame]:
    """A large state (for tight marginals on the common datasets)."""
    place = jurisdiction(1_000_000)
    return {dataset: generate(dataset, place, seed=11) for dataset in DATASETS}


@pytest.fixture(scope="module")
def large_incidents() -> pl.DataFrame:
    """Incidents of a 20-million-child jurisdiction: ~3,300 fatalities over six years."""
    return generate("incidents", jurisdiction(20_000_000), seed=5)


@pytest.mark.parametrize("dataset", DATASETS)
def test_same_seed_gives_identical_bytes_and_another_seed_differs(dataset: str) -> None:
    place = jurisdiction(200_000)
    first = parquet_sha256(generate(dataset, place, seed=3))
    again = parquet_sha256(generate(dataset, place, seed=3))
    other = parquet_sha256(generate(dataset, place, seed=4))
    assert first == again
    assert first != other


@pytest.mark.parametrize("dataset", DATASETS)
def test_generated_rows_all_pass_ingest_validation(
    state: dict[str, pl.DataFrame], dataset: str
) -> None:
    schema = PARTNERSHIP_SCHEMA.with_local_domains({"county": default_counties(1_000_000)})
    valid, rejects = validate(schema.dataset(dataset), state[dataset])
    assert rejects.height == 0, rejects.head()
    assert valid.height == state[dataset].height


@pytest.mark.parametrize("dataset", DATASETS)
def test_contribution_bounds_are_never_exceeded(
    state: dict[str, pl.DataFrame], dataset: str
) -> None:
    spec = PARTNERSHIP_SCHEMA.dataset(dataset)
    per_unit = state[dataset].group_by(spec.privacy_unit).len().get_column("len")
    assert top(per_unit) <= spec.max_rows_per_unit
    assert top(per_unit) > 1  # several rows per unit do occur


def test_fatality_marginals_match_child_maltreatment_2022(large_incidents: pl.DataFrame) -> None:
    fatal = large_incidents.filter(pl.col("incident_type") == "fatality")
    near = large_incidents.height - fatal.height
    rate = fatal.height / N_YEARS / 20_000_000 * 100_000
    assert 2.45 <= rate <= 3.0, rate  # 2.73 per 100,000 children a year
    assert 0.40 <= mean(fatal.get_column("child_age_months") < 12) <= 0.48  # 44% under 1
    assert 0.71 <= mean(fatal.get_column("mal_neglect")) <= 0.79  # neglect ~75%
    assert 3.5 <= near / fatal.height <= 4.6  # near fatalities about 4 per fatality


def test_fatality_rates_by_race_follow_the_published_ordering(
    large_incidents: pl.DataFrame,
) -> None:
    from node.synth import US_CHILD_RACE_MIX

    fatal = large_incidents.filter(pl.col("incident_type") == "fatality")
    counts = dict(fatal.group_by("race_ethnicity").len().iter_rows())
    rate = {
        race: counts[race] / N_YEARS / (20_000_000 * US_CHILD_RACE_MIX[race]) * 100_000
        for race in ("black", "white", "hispanic")
    }
    assert 5.6 <= rate["black"] <= 7.2  # 6.37
    assert 1.7 <= rate["white"] <= 2.3  # 1.99
    assert 1.4 <= rate["hispanic"] <= 2.0  # 1.68


def test_siblings_share_an_incident_and_a_family(large_incidents: pl.DataFrame) -> None:
    shared = large_incidents.group_by("incident_id").agg(
        pl.len().alias("children"), pl.col("family_id").n_unique().alias("families")
    )
    several = shared.filter(pl.col("children") > 1)
    assert several.height > 0
    assert (several.get_column("families") == 1).all()


def test_reports_victim_rate_and_recurrence(state: dict[str, pl.DataFrame]) -> None:
    reports = state["reports"].with_columns(recurrence_12m=recurrence_12m(state["reports"]))
    victims = reports.filter(pl.col("disposition").is_in(["substantiated", "indicated"]))
    victims_per_year = victims.group_by(pl.col("report_date").dt.year(), "child_id").len().height
    per_1000 = victims_per_year / N_YEARS / 1_000_000 * 1000
    assert 6.6 <= per_1000 <= 8.2, per_1000  # 7.4 per 1,000 children
    recurrence = mean(victims.get_column("recurrence_12m"))
    assert 0.07 <= recurrence <= 0.11, recurrence  # CFSR ~8-10%


def test_caseworker_turnover_is_between_20_and_40_percent_a_year(
    state: dict[str, pl.DataFrame],
) -> None:
    yearly = (
        state["workforce"]
        .group_by(pl.col("month").dt.year())
        .agg((pl.col("separated").sum() / (pl.len() / 12)).alias("turnover"))
    )
    assert yearly.get_column("turnover").is_between(0.2, 0.4).all()
    months_per_worker = state["workforce"].group_by("worker_id").len().get_column("len")
    assert top(months_per_worker) > 12  # workers span many months


def test_survey_has_one_row_per_respondent_per_wave_two_waves_a_year(
    state: dict[str, pl.DataFrame],
) -> None:
    survey = state["safety_culture"]
    assert survey.group_by("respondent_id", "wave_date").len().get_column("len").max() == 1
    waves = survey.get_column("wave_date").unique()
    assert waves.len() == 2 * N_YEARS
    assert top(survey.group_by("respondent_id").len().get_column("len")) > 1  # a panel


@pytest.mark.parametrize("seed", range(8))
def test_tribal_size_jurisdictions_have_zero_to_two_incidents_a_year(seed: int) -> None:
    incidents = generate("incidents", jurisdiction(3_000), seed=seed)
    per_year = incidents.group_by(pl.col("incident_date").dt.year()).agg(
        pl.col("incident_id").n_unique()
    )
    assert per_year.height == 0 or top(per_year.get_column("incident_id")) <= 2


def test_invalid_jurisdictions_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="children"):
        Jurisdiction(children=0, first_year=2020, last_year=2020, counties=("c001",))
    with pytest.raises(ValueError, match="empty"):
        Jurisdiction(children=10, first_year=2021, last_year=2020, counties=("c001",))
    with pytest.raises(ValueError, match="unknown dataset"):
        generate("cases", jurisdiction(10), seed=1)


def test_reports_in_many_chunks_are_one_valid_table_written_chunk_by_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks never split a child (no truncation across them), ids never repeat across
    them, and the streamed Parquet and CSV files hold exactly `generate`'s rows."""
    import node.synth

    monkeypatch.setattr(node.synth, "FAMILIES_PER_CHUNK", 700)
    place = jurisdiction(30_000)
    chunks = list(generate_chunks("reports", place, seed=3))
    assert len(chunks) >= 5
    whole = generate("reports", place, seed=3)
    assert whole.equals(pl.concat(chunks))
    families = [set(chunk["family_id"]) for chunk in chunks]
    assert sum(len(f) for f in families) == len(set().union(*families))
    reports = whole.select("report_id", "family_id").unique()
    assert reports["report_id"].n_unique() == reports.height  # one family per report id

    schema = PARTNERSHIP_SCHEMA.with_local_domains({"county": default_counties(30_000)})
    valid, rejects = validate(schema.dataset("reports"), whole)
    assert rejects.height == 0, rejects.head()
    assert valid.height == whole.height

    assert write_parquet("reports", place, 3, tmp_path / "r.parquet") == whole.height
    written = pl.read_parquet(tmp_path / "r.parquet")
    assert written.equals(whole)
    assert pq.ParquetFile(tmp_path / "r.parquet").num_row_groups == len(chunks)
    assert write_csv("reports", place, 3, tmp_path / "r.csv") == whole.height
    csv = pl.read_csv(tmp_path / "r.csv", infer_schema=False)
    assert csv.height == whole.height
    assert csv["report_id"].to_list() == whole["report_id"].to_list()


def test_a_jurisdiction_of_one_chunk_gets_the_rows_it_always_got() -> None:
    """Chunking changed nothing below FAMILIES_PER_CHUNK families (seeded rows pinned)."""
    rows = generate("reports", jurisdiction(200_000), seed=3)
    assert len(list(generate_chunks("reports", jurisdiction(200_000), seed=3))) == 1
    assert parquet_sha256(rows) == PINNED_REPORTS_SHA256
