"""Multi-item queries: several flags counted, or several bounded items averaged, in one
OpenDP measurement with one cost (real Parquet files, real OpenDP; no mocks).

Exactness checks use a huge rho (noise far below 0.5); noise and coverage are checked in
tests/statistical/test_bounded_noise.py.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from support_data import TEST_SCHEMA as SCHEMA
from support_data import write_snapshot

from coordinator.cli.query_args import QueryArgumentError, build_query
from coordinator.report import PARTNERSHIP_SOURCE, build_report, group_column_labels
from privacy.answer_size import estimates_per_cell, release_bytes_bound
from privacy.budget import rho_to_units_ceil
from privacy.opendp_setup import opendp
from privacy.plan import QueryPlan, person_distance, plan_query
from privacy.query import (
    ITEM_GROUP_COLUMN,
    DateRangeFilter,
    GroupByColumn,
    GroupByTime,
    PrivacyLoss,
    QuerySpec,
    Statistic,
    TimeBucket,
)
from privacy.release import Release
from privacy.schema import IMPROVEMENT_OPPORTUNITIES, LIKERT_ITEMS, MALTREATMENT_FLAGS
from privacy.validate import QueryLimits, QueryValidationError, validate_query

HUGE_RHO = Decimal(1_000_000)
LIMITS = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(HUGE_RHO))
IO_ITEMS = tuple(name for name, _ in IMPROVEMENT_OPPORTUNITIES)
TEN_FLAGS = (*IO_ITEMS, *(name for name, _ in MALTREATMENT_FLAGS))[:10]
YEARS = (
    GroupByTime(column="incident_date", bucket=TimeBucket.YEAR),
    DateRangeFilter(column="incident_date", start=date(2020, 1, 1), end=date(2021, 12, 31)),
)


def _incident(index: int) -> dict[str, Any]:
    return {
        "child_id": f"c{index}",
        "incident_date": date(2020 + index % 2, 1 + index % 12, 1),
        "county": ("adams", "baker", "clark")[index % 3],
        **{name: (index * (position + 2)) % 5 < 2 for position, name in enumerate(TEN_FLAGS)},
        "ssit_workload": index % 4,
        "ssit_policy": None if index % 5 == 0 else (index * 7) % 4,
    }


ROWS = [_incident(index) for index in range(60)]


@pytest.fixture(scope="module")
def incidents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("items") / "incidents.parquet"
    return write_snapshot(path, SCHEMA.dataset("incidents"), ROWS)


def spec(statistic: str = "count", **overrides: Any) -> QuerySpec:
    group_by, date_range = YEARS
    body: dict[str, Any] = {
        "query_id": uuid.uuid4(),
        "dataset": "incidents",
        "statistic": statistic,
        "group_by": (group_by,),
        "filters": (date_range,),
        "privacy": PrivacyLoss(rho=HUGE_RHO),
        "purpose": "multi-item unit test",
    }
    body.update(overrides)
    return QuerySpec(**body)


def plan(query: QuerySpec, path: Path) -> QueryPlan:
    return plan_query(validate_query(query, SCHEMA, LIMITS), SCHEMA, path)


def released(result: Release, name: str) -> dict[tuple[str, ...], float]:
    return {
        cell.key: next(e.value for e in cell.estimates if e.name == name) for cell in result.cells
    }


def truth(path: Path, items: tuple[str, ...], statistic: str) -> dict[tuple[str, ...], float]:
    """Exact per-year, per-item counts of true flags (or means of known values), read
    straight from the snapshot."""
    data = pl.read_parquet(path).with_columns(
        year=pl.col("incident_date").dt.year().cast(pl.String)
    )
    exact: dict[tuple[str, ...], float] = {}
    for (year,), group in data.group_by("year"):
        for item in items:
            column = group[item]
            value = column.sum() if statistic == "count" else column.mean()
            exact[(str(year), item)] = float(value)  # type: ignore[arg-type]
    return exact


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"items": ("io_policy", "county")}, "items[1]", "boolean flags"),
        ({"items": ("io_policy", "io_policy")}, "items[1]", "listed twice"),
        ({"items": ("io_polcy",)}, "items[0]", "unknown column"),
        ({"items": ("io_policy",), "column": "child_age_months"}, "column", "leave"),
        ({"statistic": "sum", "column": None, "items": ("ssit_workload",)}, "items", "count"),
        (
            {"statistic": "mean", "items": ("ssit_workload", "child_age_months")},
            "items[1]",
            "share their bounds",
        ),
        ({"statistic": "mean", "items": ("io_policy",)}, "items[0]", "bounded numeric"),
        (
            {"items": ("io_policy",), "group_by": (GroupByColumn(column="io_policy"),)},
            "group_by[0].column",
            "one of the items",
        ),
    ],
)
def test_invalid_items_are_refused_naming_the_field(
    overrides: dict[str, Any], field: str, words: str
) -> None:
    query = spec(**overrides)
    with pytest.raises(QueryValidationError) as refused:
        validate_query(query, SCHEMA, LIMITS)
    assert refused.value.field == field
    assert words in refused.value.message


def test_items_multiply_the_cells_and_key_the_release_last() -> None:
    validated = validate_query(spec(items=IO_ITEMS), SCHEMA, LIMITS)
    assert validated.cells == 2 * len(IO_ITEMS)
    assert validated.group_columns == ("incident_date:year", ITEM_GROUP_COLUMN)
    too_many = QueryLimits(max_rho_units_per_query=LIMITS.max_rho_units_per_query, max_cells=11)
    with pytest.raises(QueryValidationError, match="items"):
        validate_query(spec(items=IO_ITEMS), SCHEMA, too_many)


def test_queries_without_items_keep_their_canonical_bytes() -> None:
    plain = spec()
    assert "items" not in json.loads(plain.canonical_bytes())
    with_items = plain.model_copy(update={"items": ("io_policy",)})
    assert json.loads(with_items.canonical_bytes())["items"] == ["io_policy"]
    assert QuerySpec.from_canonical_bytes(with_items.canonical_bytes()) == with_items


# --- plan and release -----------------------------------------------------------------


def test_multi_item_count_releases_each_items_true_rows_per_year(incidents: Path) -> None:
    result = plan(spec(items=IO_ITEMS), incidents).release(node="n", snapshot_id="s")
    assert result.group_columns == ("incident_date:year", ITEM_GROUP_COLUMN)
    assert [cell.key for cell in result.cells] == [
        (year, item) for year in ("2020", "2021") for item in IO_ITEMS
    ]
    assert released(result, "count") == pytest.approx(truth(incidents, IO_ITEMS, "count"))


def test_multi_item_mean_releases_each_items_mean_of_known_values(incidents: Path) -> None:
    items = ("ssit_workload", "ssit_policy")
    result = plan(spec("mean", items=items), incidents).release(node="n", snapshot_id="s")
    assert released(result, "mean") == pytest.approx(truth(incidents, items, "mean"), abs=1e-3)
    counts = released(result, "count")
    assert counts[("2020", "ssit_policy")] < counts[("2020", "ssit_workload")]  # nulls left out


def test_the_charge_is_opendps_map_of_the_one_measurement(incidents: Path) -> None:
    built = plan(spec(items=IO_ITEMS, privacy=PrivacyLoss(rho=Decimal("0.6"))), incidents)
    exact = built._measurement.map(person_distance(opendp()))
    assert built.cost_units == rho_to_units_ceil(exact)
    assert built.cost_units <= 600_000
    # every item gets the same noise: the rho is shared evenly
    assert len({value.scale for value in built.expected}) == 1


def test_ten_items_cost_what_ten_one_item_queries_cost_at_the_same_accuracy(
    incidents: Path,
) -> None:
    """Equal, not less: one person can hold every flag in each of their rows, so the
    joint L2 sensitivity is sqrt(10) times one item's (docs/privacy-model.md)."""
    target = PrivacyLoss(accuracy=5.0)
    joint = plan(spec(items=TEN_FLAGS, privacy=target), incidents)
    singles = [plan(spec(items=(item,), privacy=target), incidents) for item in TEN_FLAGS]
    assert {value.half_width for value in joint.expected} == {
        value.half_width for single in singles for value in single.expected
    }
    d_in = person_distance(opendp())
    single_maps = sum(single._measurement.map(d_in) for single in singles)
    assert joint._measurement.map(d_in) == pytest.approx(single_maps, rel=1e-9)
    assert abs(joint.cost_units - sum(single.cost_units for single in singles)) <= 10


def test_mean_items_split_the_rho_evenly_and_each_matches_a_one_item_mean(
    incidents: Path,
) -> None:
    items = ("ssit_workload", "ssit_policy", "ssit_training")
    joint = plan(spec("mean", items=items, privacy=PrivacyLoss(rho=Decimal("0.3"))), incidents)
    single = plan(
        spec("mean", items=(items[0],), privacy=PrivacyLoss(rho=Decimal("0.1"))), incidents
    )
    assert joint.cost_units <= 300_000
    assert joint.cost_units == pytest.approx(3 * single.cost_units, abs=3)
    single_scales = {v.name: v.scale for v in single.expected}
    for value in joint.expected:
        item, _, name = value.name.partition(":")
        assert item in items
        assert value.scale == pytest.approx(single_scales[f"{items[0]}:{name}"])


def test_the_release_fits_the_answer_size_bound(incidents: Path) -> None:
    items = tuple(name for name, _ in LIKERT_ITEMS)
    survey = write_snapshot(
        incidents.parent / "survey.parquet",
        SCHEMA.dataset("safety_culture"),
        [{"wave_date": date(2021, 3, 1), items[0]: 3}],
    )
    query = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="safety_culture",
        statistic="mean",
        items=items,
        group_by=(GroupByColumn(column="team"),),
        privacy=PrivacyLoss(rho=Decimal("0.5")),
        purpose="answer size",
    )
    validated = validate_query(query, SCHEMA, LIMITS)
    result = plan_query(validated, SCHEMA, survey).release(node="n", snapshot_id="s")
    labels = [validated.groups[0].labels, items]
    bound = release_bytes_bound(labels, validated.cells, estimates_per_cell(Statistic.MEAN, 0))
    assert len(result.cells) == validated.cells == 6 * len(items)
    assert len(result.to_bytes()) <= bound


# --- coordinator: arguments and pooling ------------------------------------------------


def _cli_query(**overrides: Any) -> QuerySpec:
    arguments: dict[str, Any] = {
        "statistic": "count",
        "dataset": "incidents",
        "column": None,
        "rho": "0.5",
        "purpose": "items",
    }
    arguments.update(overrides)
    return build_query(**arguments)


def test_items_globs_expand_in_schema_order_and_lists_keep_theirs() -> None:
    assert _cli_query(items="io_*").items == IO_ITEMS
    assert _cli_query(items="mal_neglect,io_policy,mal_*").items[:3] == (
        "mal_neglect",
        "io_policy",
        "mal_physical_abuse",
    )
    assert _cli_query(statistic="mean", dataset="safety_culture", items="*").items == tuple(
        name for name, _ in LIKERT_ITEMS
    )


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"items": "io_polcy"}, "did you mean 'io_policy'"),
        ({"items": "iop_*"}, "matches no flag of incidents"),
        ({"items": "county"}, "unknown flag of incidents 'county'"),
        ({"items": "io_*", "statistic": "sum", "column": "ssit_workload"}, "count"),
        ({"items": "ssit_*", "statistic": "mean", "column": "ssit_policy"}, "leave out COLUMN"),
    ],
)
def test_bad_items_arguments_say_what_to_do(overrides: dict[str, Any], words: str) -> None:
    with pytest.raises(QueryArgumentError, match=words):
        _cli_query(**overrides)


def test_each_item_is_pooled_on_its_own(incidents: Path) -> None:
    query = spec(items=IO_ITEMS, privacy=PrivacyLoss(rho=Decimal(1000)))
    releases = {
        node: plan(query, incidents).release(node=node, snapshot_id="s") for node in ("a", "b")
    }
    report = build_report(
        spec=query,
        result_id="r",
        created_at="2026-01-01T00:00:00Z",
        partnership="p",
        statuses=[],
        releases=releases,
    )
    assert (
        report.group_columns
        == group_column_labels(query)
        == (
            "incident_date:year",
            ITEM_GROUP_COLUMN,
        )
    )
    exact = truth(incidents, IO_ITEMS, "count")
    pooled = {r.key: r for r in report.rows if r.source == PARTNERSHIP_SOURCE and r.name == "count"}
    assert set(pooled) == set(exact)
    for key, row in pooled.items():
        per_node = [
            next(e.value for e in cell.estimates)
            for r in releases.values()
            for cell in r.cells
            if cell.key == key
        ]
        assert row.unbiased_estimate == pytest.approx(sum(per_node))
        assert row.ci_low is not None
        assert row.ci_high is not None
        assert row.ci_low <= 2 * exact[key] <= row.ci_high
