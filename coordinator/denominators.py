"""The denominator of a rate: the children at risk behind one cell, or why there is none.

A rate divides a cell's count by the public child population the cell describes. A
cell grouped (or filtered) by a column that splits *children* into groups, such as
race/ethnicity or sex, is divided by that group's population, never by the total and
never by another group's: with every group over the total, each group's rate would be
understated by its share of the children. Columns that describe the *event* (incident
type, cause, manner) keep the total population: a cause-specific rate counts events of
one cause among all children.

Where the node publishes no matching population (no table by group, a year or group it
left out, "unknown" race, counties, or two demographic columns at once, for which only
marginals are published), the cell gets no rate and `Denominator.reason` says why; the
report lists those reasons next to the table instead of printing a wrong rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from coordinator.trend import bucket_year
from privacy.population import POPULATION_COLUMNS, PopulationTable
from privacy.query import DateRangeFilter, GroupByColumn, InSetFilter, QuerySpec

CHILD_STRATA = frozenset(
    {
        "race_ethnicity",
        "sex",
        "county",
        "race_aian",
        "race_asian",
        "race_black",
        "race_nhpi",
        "race_white",
        "ethnicity_hispanic",
    }
)
"""Columns that split the child population itself: a rate by them needs their population."""


@dataclass(frozen=True)
class NodePopulations:
    """What one node publishes for rates (Describe): by year, and by year and group."""

    by_year: Mapping[str, int]
    by_group: PopulationTable | None = None


@dataclass(frozen=True)
class Denominator:
    population: int | None
    reason: str | None = None
    """Why there is no population (None when there is one)."""


def cell_denominator(
    spec: QuerySpec, key: Sequence[str], time_index: int | None, published: NodePopulations
) -> Denominator:
    """Children at risk behind one cell: its year (or the query's years) and its group.

    A multi-year cell is divided by the sum of the yearly populations (child-years), so
    its rate is an average annual rate.
    """
    years = _cell_years(spec, key, time_index)
    if not years:
        return Denominator(None, "the query's years are unknown (filter one date range)")
    strata = _cell_strata(spec, key)
    if not strata:
        return _sum_over(years, [(year, published.by_year.get(year)) for year in years], "")
    if len(strata) > 1:
        joint = " and ".join(sorted(strata))
        return Denominator(None, f"no population by {joint} together (only each alone)")
    ((column, values),) = strata.items()
    if column not in POPULATION_COLUMNS:
        return Denominator(None, f"no published population by {column}")
    if published.by_group is None:
        return Denominator(None, f"the node publishes no population by {column}")
    table = published.by_group
    found = [
        (f"{year} {column}={value}", table.lookup(year, column, value))
        for year in years
        for value in values
    ]
    return _sum_over(years, found, column)


def _sum_over(
    years: Sequence[str], found: Sequence[tuple[str, int | None]], column: str
) -> Denominator:
    missing = [what for what, population in found if population is None]
    if missing:
        what = missing[0]
        if what.endswith("=unknown"):
            return Denominator(None, f"{column} 'unknown' is a gap in records, not a population")
        return Denominator(None, f"no child population published for {what}")
    total = sum(population for _, population in found if population is not None)
    if total <= 0:
        return Denominator(None, f"the published population for {', '.join(years)} is 0")
    return Denominator(total)


def _cell_years(spec: QuerySpec, key: Sequence[str], time_index: int | None) -> list[str]:
    if time_index is not None:
        year = bucket_year(key[time_index])
        return [] if year is None else [str(year)]
    ranges = [f for f in spec.filters if isinstance(f, DateRangeFilter)]
    if len(ranges) != 1:
        return []
    start: date = ranges[0].start
    end: date = ranges[0].end
    return [str(year) for year in range(start.year, end.year + 1)]


def _cell_strata(spec: QuerySpec, key: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Each child-splitting column of the cell, with the values the cell covers."""
    strata: dict[str, tuple[str, ...]] = {}
    for index, group in enumerate(spec.group_by):
        if isinstance(group, GroupByColumn) and group.column in CHILD_STRATA:
            strata[group.column] = (key[index],)
    for condition in spec.filters:
        if isinstance(condition, InSetFilter) and condition.column in CHILD_STRATA:
            strata.setdefault(condition.column, tuple(str(v) for v in condition.values))
    return strata


def rate_notes(reasons: Mapping[str, set[str]]) -> tuple[str, ...]:
    """One line per source and reason, for the table's notes and the JSON document."""
    return tuple(
        f"{source}: rate left out where {reason}"
        for source, found in reasons.items()
        for reason in sorted(found)
    )


__all__ = [
    "CHILD_STRATA",
    "Denominator",
    "NodePopulations",
    "cell_denominator",
    "rate_notes",
]
