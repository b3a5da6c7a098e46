"""Row validation of an export: one vectorised pass, a reason for every rejected cell.

Every cell is parsed to its column's stable dtype (node/cell_parsing.py) and checked
against the partnership schema (type, missing values, public domain, clipping bounds,
date range) with one polars expression per column, never a Python loop per row; messages
are formatted only for the (usually few) rows that fail. Then the per-person rules run
on the valid rows (node/person_rules.py): the contribution bounds, the derived columns
(CFSR 12-month recurrence), and the check that every person is within the bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from node.cell_parsing import parse_column, parsed_name, present_name
from node.cell_text import as_text
from privacy.schema import EARLIEST_DATE, LATEST_DATE, Column, ColumnKind, Dataset

if TYPE_CHECKING:
    import polars as pl

REJECT_REPORT_COLUMNS = ("row", "column", "reason")
DERIVED_COLUMNS: Mapping[str, frozenset[str]] = {"reports": frozenset({"recurrence_12m"})}
"""Columns ingest computes when the file lacks them (and checks when the file has them)."""

ROW_NUMBER = "__row"
"""The 1-based data row of the file, added by `validate` unless the frame has it already
(rows read in buckets keep their number in the whole file: node/ingest_buckets.py)."""
_ROW = ROW_NUMBER
_ROW_OUT = REJECT_REPORT_COLUMNS[0]
_DOMAIN_VALUES_SHOWN = 12


@dataclass(frozen=True)
class ValidatedRows:
    """What validation makes of one part of an export (parts never split a person)."""

    valid: pl.DataFrame
    """The valid rows: the schema's columns and dtypes, in file row order."""
    rejects: pl.DataFrame
    """One (row, column, reason) line per rejected cell, cut row or inconsistent value."""
    within_bounds: bool
    """Every person's valid rows, and every bounded value, were checked within the
    dataset's bounds (node/bounds_record.py)."""


def validate(spec: Dataset, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a raw frame into valid rows (schema columns and dtypes) and a reject list.

    The reject list has one line per problem cell: `row` (1-based data row), `column`,
    `reason`. Checks run as one vectorised pass of boolean expressions; the messages are
    formatted only for the (usually few) rows that fail.
    """
    checked = validate_rows(spec, raw)
    return checked.valid, checked.rejects


def validate_rows(spec: Dataset, raw: pl.DataFrame) -> ValidatedRows:
    """`validate`, and whether the valid rows are within the dataset's bounds."""
    import polars as pl

    from node.bounds_record import within_value_bounds
    from node.person_rules import apply_person_rules
    from privacy.snapshot_types import snapshot_dtype

    derived = DERIVED_COLUMNS.get(spec.name, frozenset())
    present = [c for c in spec.columns if c.name in raw.columns]
    numbered = raw if _ROW in raw.columns else raw.with_row_index(_ROW, offset=1)
    work = numbered.with_columns(
        series for c in present for series in parse_column(c, raw.get_column(c.name))
    )
    rules = {
        c.name: _rules(c, raw.schema[c.name], c.name in derived, spec.privacy_unit) for c in present
    }
    conditions = [condition for column_rules in rules.values() for condition, _ in column_rules]
    failing = pl.any_horizontal(conditions).fill_null(False) if conditions else pl.lit(False)
    failing_rows = work.select(failing).to_series()
    # One chunk: `pl.format` panics on text split over chunks, some empty (polars 1.36),
    # as a bucket read from its scratch files is; the failing rows are few.
    bad = work.filter(failing_rows).rechunk()
    cell_rejects = pl.concat(
        [_reasons(bad, name, column_rules) for name, column_rules in rules.items()]
        or [_empty_rejects()]
    )
    candidates = work.select(_ROW, *(pl.col(parsed_name(c.name)).alias(c.name) for c in present))
    if bad.height:
        candidates = candidates.filter(~failing_rows)
    person = apply_person_rules(spec, candidates, _ROW, _ROW_OUT)
    rejects = pl.concat([cell_rejects, person.cut, person.inconsistent])
    valid = person.kept.select(pl.col(c.name).cast(snapshot_dtype(c)) for c in spec.columns)
    within_bounds = person.within_bounds and within_value_bounds(spec, valid)
    return ValidatedRows(valid=valid, rejects=rejects, within_bounds=within_bounds)


def _empty_rejects() -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(schema={_ROW_OUT: pl.UInt32, "column": pl.String, "reason": pl.String})


def count_rejected_rows(rejects: pl.DataFrame) -> int:
    """How many distinct rows a reject list rejects (a row may fail in several cells)."""
    return rejects.get_column(_ROW_OUT).n_unique() if rejects.height else 0


def count_truncated_rows(rejects: pl.DataFrame) -> int:
    """How many valid rows a reject list cuts for a contribution bound (node/truncation.py)."""
    import polars as pl

    from node.truncation import TRUNCATION_REASON

    return rejects.filter(pl.col("reason").str.starts_with(TRUNCATION_REASON)).height


def _rules(
    column: Column, dtype: pl.DataType, derived: bool, unit: str
) -> list[tuple[pl.Expr, pl.Expr]]:
    """(failure condition, reason) pairs for one column, in the order they are reported."""
    import polars as pl

    name = column.name
    present = pl.col(present_name(name))
    value = pl.col(parsed_name(name))
    text = as_text(name, dtype)
    rules: list[tuple[pl.Expr, pl.Expr]] = [
        (present & value.is_null(), pl.format(_type_message(column), text)),
    ]
    if not column.nullable and not derived:
        rules.append((~present, pl.lit(_missing_message(column, unit))))
    if column.kind is ColumnKind.CATEGORICAL and column.domain:
        rules.append((~value.is_in(column.domain), pl.format(_domain_message(column), value)))
    if column.is_numeric and column.lower is not None and column.upper is not None:
        outside = (value < column.lower) | (value > column.upper)
        rules.append((outside, pl.format(_bounds_message(column), value)))
    if column.kind is ColumnKind.DATE:
        outside = (value < EARLIEST_DATE) | (value > LATEST_DATE)
        template = f"out of range: date {{}} is outside [{EARLIEST_DATE}, {LATEST_DATE}]"
        rules.append((outside, pl.format(template, value)))
    return rules


def _reasons(bad: pl.DataFrame, name: str, rules: list[tuple[pl.Expr, pl.Expr]]) -> pl.DataFrame:
    """One reject line per failing cell of this column; a cell gets its first failed rule."""
    import polars as pl

    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, message in reversed(rules):
        reason = pl.when(condition.fill_null(False)).then(message).otherwise(reason)
    return bad.select(
        pl.col(_ROW).alias(_ROW_OUT), pl.lit(name).alias("column"), reason.alias("reason")
    ).filter(pl.col("reason").is_not_null())


def _type_message(column: Column) -> str:
    expected = {
        ColumnKind.IDENTIFIER: "an identifier",
        ColumnKind.CATEGORICAL: "a code",
        ColumnKind.BOOLEAN: "a yes/no value (true/false, yes/no, 1/0)",
        ColumnKind.INTEGER: "a whole number",
        ColumnKind.FLOAT: "a finite number",
        ColumnKind.DATE: "a date (YYYY-MM-DD)",
    }[column.kind]
    return f"wrong type: '{{}}' is not {expected}"


def _missing_message(column: Column, unit: str) -> str:
    if column.name == unit:
        return f"missing privacy unit id: {column.name} may not be empty"
    return f"missing value: {column.name} may not be empty"


def _domain_message(column: Column) -> str:
    domain = column.domain or ()
    shown = ", ".join(domain[:_DOMAIN_VALUES_SHOWN])
    more = f", ... ({len(domain)} values)" if len(domain) > _DOMAIN_VALUES_SHOWN else ""
    return f"out of domain: '{{}}' is not a public value of {column.name} ({shown}{more})"


def _bounds_message(column: Column) -> str:
    low, high = _format_bound(column.lower), _format_bound(column.upper)
    return f"out of bounds: {{}} is outside [{low}, {high}]"


def _format_bound(bound: float | None) -> str:
    return f"{bound:g}" if bound is not None else "?"
