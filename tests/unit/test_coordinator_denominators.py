"""Rates by group use that group's own population, or are left out with the reason."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import pytest
from test_coordinator_pooling import gaussian

from coordinator.cli.render import render_report
from coordinator.report import PARTNERSHIP_SOURCE, NodeStatus, Report, build_report
from privacy.population import PopulationTable, build_table
from privacy.query import (
    DateRangeFilter,
    Filter,
    GroupBy,
    GroupByColumn,
    GroupByTime,
    InSetFilter,
    PrivacyLoss,
    QuerySpec,
    Statistic,
    TimeBucket,
)
from privacy.release import Cell, Release
from privacy.schema import RACE_ETHNICITY

YEARS = {"2021": 300_000, "2022": 310_000}
RACES = [r for r in RACE_ETHNICITY if r != "unknown"]


def group_table(node_offset: int, source: str = "census") -> PopulationTable:
    """Distinct populations for every node, year and group, so a mix-up cannot hide."""
    rows = [
        (year, "race_ethnicity", race, str(10_000 * (i + 1) + 100 * node_offset + int(year) % 10))
        for year in YEARS
        for i, race in enumerate(RACES)
    ]
    rows += [
        (year, "sex", sex, str(150_000 + node_offset + j))
        for year in YEARS
        for j, sex in enumerate(("female", "male"))
    ]
    return build_table(source, rows)


def spec(group_by: tuple[GroupBy, ...], filters: tuple[Filter, ...] = ()) -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        group_by=group_by,
        filters=(
            DateRangeFilter(column="incident_date", start=date(2021, 1, 1), end=date(2022, 12, 31)),
            *filters,
        ),
        privacy=PrivacyLoss(rho=Decimal("0.01")),
        purpose="rates by group",
    )


def published(table: PopulationTable, year: str, column: str, value: str) -> int:
    population = table.lookup(year, column, value)
    assert population is not None
    return population


def report(
    query: QuerySpec, keys: Sequence[tuple[str, ...]], tables: dict[str, PopulationTable]
) -> Report:
    nodes = ("county-a", "county-b")
    releases = {
        node: Release(
            query_id=str(query.query_id),
            node=node,
            dataset="incidents",
            statistic="count",
            group_columns=tuple(g.column for g in query.group_by),
            cells=tuple(Cell(key=k, estimates=(gaussian("count", 40.0, 2.0),)) for k in keys),
            cost_units=10_000,
            snapshot_id="s",
            opendp_version="0.16.0",
        )
        for node in nodes
    }
    return build_report(
        spec=query,
        result_id="r",
        created_at="2026-01-01T00:00:00+00:00",
        partnership="p",
        statuses=[NodeStatus(node=n, answered=True) for n in nodes],
        releases=releases,
        populations=dict.fromkeys(nodes, YEARS),
        group_populations=tables,
    )


def test_a_rate_by_race_never_uses_another_groups_or_the_total_denominator() -> None:
    tables = {"county-a": group_table(1), "county-b": group_table(2)}
    result = report(spec((GroupByColumn(column="race_ethnicity"),)), [(r,) for r in RACES], tables)
    for row in result.rows:
        (race,) = row.key
        expected = {
            node: sum(published(tables[node], y, "race_ethnicity", race) for y in YEARS)
            for node in tables
        }
        want = sum(expected.values()) if row.source == PARTNERSHIP_SOURCE else expected[row.source]
        assert row.population == want, (row.source, race)
        assert row.rate_per_100k is not None
        count = 80.0 if row.source == PARTNERSHIP_SOURCE else 40.0
        assert row.rate_per_100k == pytest.approx(count * 100_000 / want)
    assert result.rate_notes == ()


def test_by_year_and_race_each_cell_uses_its_own_year_and_group() -> None:
    tables = {"county-a": group_table(1), "county-b": group_table(2)}
    query = spec(
        (
            GroupByTime(column="incident_date", bucket=TimeBucket.YEAR),
            GroupByColumn(column="race_ethnicity"),
        )
    )
    keys = [(year, race) for year in YEARS for race in RACES]
    for row in report(query, keys, tables).rows:
        if row.source != PARTNERSHIP_SOURCE:
            year, race = row.key
            assert row.population == tables[row.source].lookup(year, "race_ethnicity", race)


def test_unknown_race_and_a_node_without_populations_get_no_rate_and_say_why() -> None:
    result = report(
        spec((GroupByColumn(column="race_ethnicity"),)),
        [("black",), ("unknown",)],
        {"county-a": group_table(1)},
    )
    rates = {(row.source, row.key): row.rate_per_100k for row in result.rows}
    assert rates["county-a", ("black",)] is not None
    assert rates["county-a", ("unknown",)] is None
    assert rates["county-b", ("black",)] is None
    assert rates[PARTNERSHIP_SOURCE, ("black",)] is None  # a partial denominator would be wrong
    assert set(result.rate_notes) == {
        "county-a: rate left out where race_ethnicity 'unknown' is a gap in records, "
        "not a population",
        "county-b: rate left out where the node publishes no population by race_ethnicity",
    }
    text = render_report(result, "table", rates=True)
    assert "No rate: county-b: rate left out where the node publishes no population by" in text


def test_county_and_two_demographic_columns_have_no_published_denominator() -> None:
    tables = {"county-a": group_table(1), "county-b": group_table(2)}
    by_county = report(spec((GroupByColumn(column="county"),)), [("c001",)], tables)
    assert all(row.rate_per_100k is None for row in by_county.rows)
    assert "county-a: rate left out where no published population by county" in by_county.rate_notes
    both = report(
        spec((GroupByColumn(column="race_ethnicity"), GroupByColumn(column="sex"))),
        [("black", "female")],
        tables,
    )
    assert all(row.rate_per_100k is None for row in both.rows)
    assert any("race_ethnicity and sex together" in note for note in both.rate_notes)


def test_a_filter_on_a_group_uses_that_groups_population_and_event_columns_the_total() -> None:
    tables = {"county-a": group_table(1), "county-b": group_table(2)}
    girls = report(
        spec(
            (GroupByColumn(column="incident_type"),),
            (InSetFilter(column="sex", values=("female",)),),
        ),
        [("fatality",)],
        tables,
    )
    row = next(r for r in girls.rows if r.source == "county-a")
    assert row.population == sum(published(tables["county-a"], y, "sex", "female") for y in YEARS)
    everyone = report(spec((GroupByColumn(column="incident_type"),)), [("fatality",)], tables)
    row = next(r for r in everyone.rows if r.source == "county-a")
    assert row.population == sum(YEARS.values())
