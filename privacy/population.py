"""Public child populations by year and group: the denominators of rates by group.

A node publishes its jurisdiction's child population by year (node.toml's
`child_population`) and, from public estimates such as the Census Bureau's, by year and
group: race/ethnicity and sex. Rates by a grouped column must divide each group's count
by that group's population, never by the total (DESIGN section 3 and issue 10).

These numbers are public, not private: they are read from a CSV the operator imports
(`npcs-node population import DIR FILE --source TEXT`), validated here, stored by the node
with their source and published in `Describe`.

CSV columns (a header row, any order): `year` (four digits), `column` (a population
column, see POPULATION_COLUMNS), `value` (one of that column's public values) and
`population` (a whole number >= 0). One row per (year, column, value).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from privacy.schema import RACE_ETHNICITY, SEX

POPULATION_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "race_ethnicity": tuple(v for v in RACE_ETHNICITY if v != "unknown"),
    "sex": tuple(v for v in SEX if v != "unknown"),
}
"""Columns with published populations, and their values. "unknown" is a recording gap in
case files, not a population a census counts, so it has no denominator."""

CSV_FIELDS = ("year", "column", "value", "population")
MAX_ROWS = 10_000
MAX_POPULATION = 200_000_000
MAX_SOURCE_LENGTH = 500


class PopulationFileError(ValueError):
    """A population CSV (or stored table) that cannot be used; the message says where and why."""


@dataclass(frozen=True, order=True)
class GroupPopulation:
    """The child population of one group in one year."""

    year: str
    column: str
    value: str
    population: int


@dataclass(frozen=True)
class PopulationTable:
    """A node's published populations by group, with where they came from."""

    source: str
    rows: tuple[GroupPopulation, ...]

    def lookup(self, year: str, column: str, value: str) -> int | None:
        """The population of `column=value` in `year`, or None when none is published."""
        for row in self.rows:
            if (row.year, row.column, row.value) == (year, column, value):
                return row.population
        return None

    def columns(self) -> tuple[str, ...]:
        return tuple(sorted({row.column for row in self.rows}))

    def years(self) -> tuple[str, ...]:
        return tuple(sorted({row.year for row in self.rows}))

    def to_json(self) -> str:
        return json.dumps(
            {
                "source": self.source,
                "rows": [
                    {
                        "year": r.year,
                        "column": r.column,
                        "value": r.value,
                        "population": r.population,
                    }
                    for r in self.rows
                ],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> PopulationTable:
        try:
            document = json.loads(text)
            return build_table(
                document["source"],
                (
                    (str(r["year"]), str(r["column"]), str(r["value"]), str(r["population"]))
                    for r in document["rows"]
                ),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise PopulationFileError(f"not a stored population table ({exc})") from None


def parse_population_csv(text: str, source: str) -> PopulationTable:
    """Validate a population CSV; every problem names its line and what to fix."""
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    missing = [name for name in CSV_FIELDS if name not in header]
    if missing:
        raise PopulationFileError(
            f"line 1: the header lacks {', '.join(missing)}; "
            f"it needs the columns {', '.join(CSV_FIELDS)}"
        )
    rows = ((row["year"], row["column"], row["value"], row["population"]) for row in reader)
    return build_table(source, rows, first_line=2)


def build_table(
    source: str, rows: Iterable[tuple[str, str, str, str]], *, first_line: int = 1
) -> PopulationTable:
    """Check each (year, column, value, population) and the source; refuse duplicates."""
    source = source.strip()
    if not source or len(source) > MAX_SOURCE_LENGTH or "\n" in source:
        raise PopulationFileError(
            f"the source must name where the numbers come from, on one line of 1 to "
            f"{MAX_SOURCE_LENGTH} characters (for example 'US Census Bureau, Vintage 2023')"
        )
    seen: set[tuple[str, str, str]] = set()
    checked: list[GroupPopulation] = []
    for line, raw in enumerate(rows, start=first_line):
        if len(checked) >= MAX_ROWS:
            raise PopulationFileError(f"more than {MAX_ROWS} rows: split the file by year")
        row = _checked_row(line, *(field.strip() if field else "" for field in raw))
        key = (row.year, row.column, row.value)
        if key in seen:
            raise PopulationFileError(
                f"line {line}: a second row for {row.column}={row.value} in {row.year}; "
                "keep one row per year, column and value"
            )
        seen.add(key)
        checked.append(row)
    if not checked:
        raise PopulationFileError("the file has no rows after its header")
    return PopulationTable(source=source, rows=tuple(sorted(checked)))


def _checked_row(line: int, year: str, column: str, value: str, population: str) -> GroupPopulation:
    if not (len(year) == 4 and year.isascii() and year.isdigit() and 1900 <= int(year) <= 2100):
        raise PopulationFileError(f"line {line}: year {year!r} must be four digits, 1900-2100")
    if column not in POPULATION_COLUMNS:
        raise PopulationFileError(
            f"line {line}: column {column!r} has no published population; "
            f"use one of {', '.join(POPULATION_COLUMNS)}"
        )
    values = POPULATION_COLUMNS[column]
    if value not in values:
        raise PopulationFileError(
            f"line {line}: {value!r} is not a value of {column}; use one of {', '.join(values)}"
        )
    if not (population.isascii() and population.isdigit() and int(population) <= MAX_POPULATION):
        raise PopulationFileError(
            f"line {line}: population {population!r} must be a whole number from 0 to "
            f"{MAX_POPULATION:,} (digits only, no commas)"
        )
    return GroupPopulation(year=year, column=column, value=value, population=int(population))


__all__ = [
    "POPULATION_COLUMNS",
    "GroupPopulation",
    "PopulationFileError",
    "PopulationTable",
    "build_table",
    "parse_population_csv",
]
