"""Noise under per-period bounds and centred means matches its claims, even on a
snapshot that breaks a bound (truth: the snapshot truncated by the documented rule).

2,000 real plan + release rounds per shape; no seeding, no mocks. False-failure rate:
each variance check at alpha 1e-5, each coverage band at more than 5 standard errors.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest
from support_data import TEST_SCHEMA as SCHEMA
from support_data import write_snapshot

from coordinator.discrete import discrete_gaussian_pmf
from privacy.budget import rho_to_units_ceil
from privacy.centring import CENTRED_SUM
from privacy.plan import plan_query
from privacy.query import DateRangeFilter, GroupByTime, PrivacyLoss, QuerySpec, TimeBucket
from privacy.release import Estimate, Release
from privacy.validate import QueryLimits, validate_query

pytestmark = pytest.mark.slow

RELEASES = 2_000
ALPHA = 1e-5
LIMITS = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(Decimal(1_000)))


def _chi_square_band(dof: int) -> tuple[float, float]:
    """Wilson-Hilferty quantiles of chi-square(dof) at ALPHA/2 and 1 - ALPHA/2."""
    h = 2 / (9 * dof)
    z = NormalDist().inv_cdf(1 - ALPHA / 2)
    return dof * (1 - h - z * math.sqrt(h)) ** 3, dof * (1 - h + z * math.sqrt(h)) ** 3


def _releases(path: Path, spec: Callable[[], QuerySpec]) -> list[Release]:
    return [
        plan_query(validate_query(spec(), SCHEMA, LIMITS), SCHEMA, path).release(
            node="n", snapshot_id="s"
        )
        for _ in range(RELEASES)
    ]


def _check_noise(errors: list[float], scale: float) -> None:
    low, high = _chi_square_band(len(errors))
    assert low <= sum(e * e for e in errors) / scale**2 <= high
    z = NormalDist().inv_cdf(1 - ALPHA / 2)
    assert abs(statistics.fmean(errors)) <= z * scale / math.sqrt(len(errors))


def _coverage_band(trials: int, claim: float = 0.95) -> float:
    return max(0.015, 5.5 * math.sqrt(claim * (1 - claim) / trials))


# --- a count by year on monthly rows, one worker over the monthly bound ---------------

WORKERS_PER_MONTH = {2020: 30, 2021: 12}


@pytest.fixture(scope="module")
def workforce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows: list[dict[str, Any]] = [
        {"worker_id": f"w{year}-{index}", "month": date(year, month, 1)}
        for year, workers in WORKERS_PER_MONTH.items()
        for index in range(workers)
        for month in range(1, 13)
    ]
    # Breaks the bound: one worker listed 40 times in March 2020 (ingest would cut 39).
    rows += [{"worker_id": "w-over", "month": date(2020, 3, 1)}] * 40
    dataset = SCHEMA.dataset("workforce")
    return write_snapshot(tmp_path_factory.mktemp("bounded") / "w.parquet", dataset, rows)


TRUNCATED_TRUTH = {"2020": 12 * 30 + 12.0, "2021": 12 * 12.0}
"""The query groups by year, so OpenDP truncates each worker to the yearly bound (12 rows
a year): w-over keeps 12 of its 40 March rows (ingest's monthly rule would keep 1, but
the query only needs, and only pays for, the per-year bound)."""


def _workforce_by_year() -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="workforce",
        statistic="count",
        group_by=(GroupByTime(column="month", bucket=TimeBucket.YEAR),),
        filters=(DateRangeFilter(column="month", start=date(2020, 1, 1), end=date(2021, 12, 31)),),
        privacy=PrivacyLoss(rho=Decimal("0.02")),
        purpose="bounded noise test",
    )


@pytest.fixture(scope="module")
def workforce_releases(workforce: Path) -> list[Release]:
    return _releases(workforce, _workforce_by_year)


def test_count_noise_matches_the_per_year_scale_on_a_bound_breaking_snapshot(
    workforce_releases: list[Release],
) -> None:
    truth = TRUNCATED_TRUTH
    scale = workforce_releases[0].cells[0].estimates[0].scale
    # 2 year cells, at most 12 rows of one worker per year: L2 = sqrt(2) * 12, rho 0.02
    assert scale == pytest.approx(math.sqrt(2) * 12 / math.sqrt(2 * 0.02), rel=1e-6)
    errors = [
        cell.estimates[0].value - truth[cell.key[0]]
        for release in workforce_releases
        for cell in release.cells
    ]
    _check_noise(errors, scale)


def test_count_intervals_cover_95_percent_on_a_bound_breaking_snapshot(
    workforce_releases: list[Release],
) -> None:
    truth = TRUNCATED_TRUTH
    hits = [
        cell.estimates[0].ci_low <= truth[cell.key[0]] <= cell.estimates[0].ci_high
        for release in workforce_releases
        for cell in release.cells
    ]
    assert abs(statistics.fmean(hits) - 0.95) <= _coverage_band(len(hits))


# --- a centred mean per survey wave (one response per quarter) ------------------------

ANSWERS = {"2021-Q1": [1, 2, 2, 3, 4, 5, 5, 5] * 10, "2021-Q3": [4, 4, 5, 3] * 15}


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    waves = {"2021-Q1": date(2021, 3, 1), "2021-Q3": date(2021, 9, 1)}
    rows: list[dict[str, Any]] = [
        {"respondent_id": f"r{index}", "wave_date": waves[wave], "psych_safety": answer}
        for wave, answers in ANSWERS.items()
        for index, answer in enumerate(answers)
    ]
    # Breaks the bound: one respondent answered 25 times in the first wave.
    rows += [{"respondent_id": "r-over", "wave_date": waves["2021-Q1"], "psych_safety": 1}] * 25
    dataset = SCHEMA.dataset("safety_culture")
    return write_snapshot(tmp_path_factory.mktemp("survey") / "s.parquet", dataset, rows)


def _survey_by_quarter() -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="safety_culture",
        statistic="mean",
        column="psych_safety",
        group_by=(GroupByTime(column="wave_date", bucket=TimeBucket.QUARTER),),
        filters=(
            DateRangeFilter(column="wave_date", start=date(2021, 1, 1), end=date(2021, 9, 30)),
        ),
        privacy=PrivacyLoss(rho=Decimal("0.05")),
        purpose="bounded noise test",
    )


@pytest.fixture(scope="module")
def survey_releases(survey: Path) -> list[Release]:
    return _releases(survey, _survey_by_quarter)


def _survey_truth() -> dict[str, tuple[float, float]]:
    """(centred sum, count) per wave after truncation; r-over keeps one answer of 1."""
    truth = {wave: (sum(a - 3 for a in answers), len(answers)) for wave, answers in ANSWERS.items()}
    total, count = truth["2021-Q1"]
    truth["2021-Q1"] = (total + (1 - 3), count + 1)
    truth["2021-Q2"] = (0, 0)
    return {wave: (float(total), float(count)) for wave, (total, count) in truth.items()}


def test_centred_sum_and_count_noise_match_their_scales(survey_releases: list[Release]) -> None:
    truth = _survey_truth()
    for index, name in ((0, CENTRED_SUM), (1, "count")):
        scale = survey_releases[0].cells[0].estimates[index].scale
        errors = [
            cell.estimates[index].value - truth[cell.key[0]][index]
            for release in survey_releases
            for cell in release.cells
        ]
        assert cell_names(survey_releases[0])[index] == name
        _check_noise(errors, scale)


def cell_names(release: Release) -> list[str]:
    return [estimate.name for estimate in release.cells[0].estimates]


def _exact_integer_coverage(estimate: Estimate) -> float:
    """The interval's exact coverage under integer (discrete Gaussian) noise.

    The count and the centred sum of an integer item both carry integer noise, which
    cannot be cut at exactly 95%: OpenDP's half-width is the smallest integer reaching at
    least 95%, so the interval covers a little more.
    """
    pmf = discrete_gaussian_pmf(estimate.scale)
    centre = len(pmf) // 2
    reach = math.floor(estimate.ci_high - estimate.value + 1e-9)
    return math.fsum(pmf[max(0, centre - reach) : centre + reach + 1])


def test_centred_sum_and_count_intervals_cover_95_percent(survey_releases: list[Release]) -> None:
    """Observed coverage matches each interval's exact coverage, which is at least 95%."""
    truth = _survey_truth()
    for index in (0, 1):
        estimates = [
            (cell.estimates[index], truth[cell.key[0]][index])
            for release in survey_releases
            for cell in release.cells
        ]
        hits = [e.ci_low <= true <= e.ci_high for e, true in estimates]
        claimed = statistics.fmean(_exact_integer_coverage(e) for e, _ in estimates)
        assert claimed >= 0.95
        assert abs(statistics.fmean(hits) - claimed) <= _coverage_band(len(hits), claimed)


def test_mean_intervals_cover_at_least_95_percent(survey_releases: list[Release]) -> None:
    """The mean's interval is a union bound of two 97.5% intervals: at least 95%."""
    truth = _survey_truth()
    hits = [
        cell.estimates[2].ci_low <= 3 + total / count <= cell.estimates[2].ci_high
        for release in survey_releases
        for cell in release.cells
        for total, count in [truth[cell.key[0]]]
        if count
    ]
    assert statistics.fmean(hits) >= 0.95 - _coverage_band(len(hits))


# --- a multi-item count by year (three flags, one measurement), one child over the bound --

FLAGS = ("io_policy", "io_training", "io_practice")


@pytest.fixture(scope="module")
def flagged_incidents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows: list[dict[str, Any]] = [
        {
            "child_id": f"c{index}",
            "incident_date": date(2020 + index % 2, 6, 1),
            **{flag: index % (position + 2) == 0 for position, flag in enumerate(FLAGS)},
        }
        for index in range(150)
    ]
    # Breaks the bound: one child with 30 incidents in 2020, every flag set (ingest
    # would keep 2; so does the plan: the first 2 in file order).
    rows += [{"child_id": "c-over", "incident_date": date(2020, 6, 1)} | dict.fromkeys(FLAGS, True)]
    rows = rows[:1] + rows[-1:] * 29 + rows[1:]
    dataset = SCHEMA.dataset("incidents")
    return write_snapshot(tmp_path_factory.mktemp("flags") / "i.parquet", dataset, rows)


def _flags_truth(path: Path) -> dict[tuple[str, str], float]:
    """Exact per-year flag counts from the snapshot, each child cut to its first 2 rows."""
    import polars as pl

    kept = pl.read_parquet(path).filter(pl.int_range(pl.len()).over("child_id") < 2)
    by_year = kept.group_by(pl.col("incident_date").dt.year().cast(pl.String).alias("year"))
    totals = by_year.agg(pl.col(flag).sum() for flag in FLAGS)
    return {(row["year"], flag): float(row[flag]) for row in totals.to_dicts() for flag in FLAGS}


@pytest.fixture(scope="module")
def flag_releases(flagged_incidents: Path) -> list[Release]:
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic="count",
        items=FLAGS,
        group_by=(GroupByTime(column="incident_date", bucket=TimeBucket.YEAR),),
        filters=(
            DateRangeFilter(column="incident_date", start=date(2020, 1, 1), end=date(2021, 12, 31)),
        ),
        privacy=PrivacyLoss(rho=Decimal("0.015")),
        purpose="multi-item noise test",
    )
    built = plan_query(validate_query(spec, SCHEMA, LIMITS), SCHEMA, flagged_incidents)
    # One measurement, released RELEASES times (each copy draws fresh OpenDP noise).
    return [built.unreleased_copy().release(node="n", snapshot_id="s") for _ in range(RELEASES)]


def test_multi_item_count_noise_matches_its_scale(
    flag_releases: list[Release], flagged_incidents: Path
) -> None:
    truth = _flags_truth(flagged_incidents)
    assert truth[("2020", "io_policy")] == 75 + 2  # c-over kept 2 of its 30 rows
    scale = flag_releases[0].cells[0].estimates[0].scale
    # 3 items, each a count of at most 2 rows per child: rho 0.015 = 3 * 2^2 / (2 scale^2)
    assert scale == pytest.approx(2 / math.sqrt(2 * 0.015 / 3), rel=1e-6)
    assert {e.scale for r in flag_releases[:1] for c in r.cells for e in c.estimates} == {scale}
    errors = [
        cell.estimates[0].value - truth[(cell.key[0], cell.key[1])]
        for release in flag_releases
        for cell in release.cells
    ]
    assert len(errors) == RELEASES * 2 * len(FLAGS)
    _check_noise(errors, scale)


def test_multi_item_count_intervals_cover_95_percent(
    flag_releases: list[Release], flagged_incidents: Path
) -> None:
    truth = _flags_truth(flagged_incidents)
    estimates = [
        (cell.estimates[0], truth[(cell.key[0], cell.key[1])])
        for release in flag_releases
        for cell in release.cells
    ]
    hits = [e.ci_low <= true <= e.ci_high for e, true in estimates]
    claimed = statistics.fmean(_exact_integer_coverage(e) for e, _ in estimates)
    assert 0.95 <= claimed <= 0.96
    assert abs(statistics.fmean(hits) - claimed) <= _coverage_band(len(hits), claimed)
    assert abs(statistics.fmean(hits) - 0.95) <= 0.015


# --- a multi-item mean per survey wave (two Likert items, one measurement) -------------

LIKERT = ("psych_safety", "intent_to_stay")


@pytest.fixture(scope="module")
def two_item_survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows: list[dict[str, Any]] = [
        {
            "respondent_id": f"r{index}",
            "wave_date": date(2021, 3 if index % 2 else 9, 1),
            "psych_safety": 1 + index % 5,
            "intent_to_stay": None if index % 7 == 0 else 1 + (index * 3) % 5,
        }
        for index in range(120)
    ]
    dataset = SCHEMA.dataset("safety_culture")
    return write_snapshot(tmp_path_factory.mktemp("likert") / "s.parquet", dataset, rows)


def _likert_truth(path: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """(centred sum, count of known values) per quarter and item, from the snapshot."""
    import polars as pl

    data = pl.read_parquet(path)
    truth: dict[tuple[str, str], tuple[float, float]] = {}
    for quarter, month in (("2021-Q1", 3), ("2021-Q2", None), ("2021-Q3", 9)):
        wave = data.filter(pl.col("wave_date").dt.month() == month) if month else data.clear()
        for item in LIKERT:
            known = wave[item].drop_nulls()
            truth[(quarter, item)] = (float((known - 3).sum()), float(len(known)))
    return truth


@pytest.fixture(scope="module")
def likert_releases(two_item_survey: Path) -> list[Release]:
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="safety_culture",
        statistic="mean",
        items=LIKERT,
        group_by=(GroupByTime(column="wave_date", bucket=TimeBucket.QUARTER),),
        filters=(
            DateRangeFilter(column="wave_date", start=date(2021, 1, 1), end=date(2021, 9, 30)),
        ),
        privacy=PrivacyLoss(rho=Decimal("0.1")),
        purpose="multi-item noise test",
    )
    built = plan_query(validate_query(spec, SCHEMA, LIMITS), SCHEMA, two_item_survey)
    return [built.unreleased_copy().release(node="n", snapshot_id="s") for _ in range(RELEASES)]


def test_multi_item_mean_parts_match_their_scales_and_cover_95_percent(
    likert_releases: list[Release], two_item_survey: Path
) -> None:
    truth = _likert_truth(two_item_survey)
    for index, name in ((0, CENTRED_SUM), (1, "count")):
        estimates = [
            (cell.estimates[index], truth[(cell.key[0], cell.key[1])][index])
            for release in likert_releases
            for cell in release.cells
        ]
        assert {e.name for e, _ in estimates} == {name}
        (scale,) = {e.scale for e, _ in estimates}
        _check_noise([e.value - true for e, true in estimates], scale)
        hits = [e.ci_low <= true <= e.ci_high for e, true in estimates]
        claimed = statistics.fmean(_exact_integer_coverage(e) for e, _ in estimates)
        assert claimed >= 0.95
        assert abs(statistics.fmean(hits) - claimed) <= _coverage_band(len(hits), claimed)
    means = [
        cell.estimates[2].ci_low <= 3 + total / count <= cell.estimates[2].ci_high
        for release in likert_releases
        for cell in release.cells
        for total, count in [truth[(cell.key[0], cell.key[1])]]
        if count
    ]
    assert statistics.fmean(means) >= 0.95 - _coverage_band(len(means))
