"""Row validation of an export: one vectorised pass, a reason for every rejected cell.

Every cell is parsed to its column's stable dtype and checked against the partnership
schema (type, missing values, public domain, clipping bounds, date range) with one polars
expression per column, never a Python loop per row; messages are formatted only for the
(usually few) rows that fail. Then the contribution bound per privacy unit is applied and
the derived columns (CFSR 12-month recurrence) are computed or checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from privacy.schema import EARLIEST_DATE, LATEST_DATE, Column, ColumnKind, Dataset

if TYPE_CHECKING:
    import polars as pl

REJECT_REPORT_COLUMNS = ("row", "column", "reason")
DERIVED_COLUMNS: Mapping[str, frozenset[str]] = {"reports": frozenset({"recurrence_12m"})}
"""Columns ingest computes when the file lacks them (and checks when the file has them)."""

IDENTIFIER_RULE = "surrounding whitespace removed, Unicode NFC, then lower case"
"""How ingest canonicalises identifier columns (documented in the deploy guide)."""

ROW_NUMBER = "__row"
"""The 1-based data row of the file, added by `validate` unless the frame has it already
(rows read in buckets keep their number in the whole file: node/ingest_buckets.py)."""
_ROW = ROW_NUMBER
_ROW_OUT = REJECT_REPORT_COLUMNS[0]
_DOMAIN_VALUES_SHOWN = 12
_VICTIM_DISPOSITIONS = ("substantiated", "indicated")
_TRUE_WORDS = ("true", "t", "yes", "y", "1")
_FALSE_WORDS = ("false", "f", "no", "n", "0")


def validate(spec: Dataset, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a raw frame into valid rows (schema columns and dtypes) and a reject list.

    The reject list has one line per problem cell: `row` (1-based data row), `column`,
    `reason`. Checks run as one vectorised pass of boolean expressions; the messages are
    formatted only for the (usually few) rows that fail.
    """
    import polars as pl

    from node.truncation import truncate_to_bounds
    from privacy.snapshot_types import snapshot_dtype

    derived = DERIVED_COLUMNS.get(spec.name, frozenset())
    present = [c for c in spec.columns if c.name in raw.columns]
    numbered = raw if _ROW in raw.columns else raw.with_row_index(_ROW, offset=1)
    work = numbered.with_columns(
        series for c in present for series in _parse_column(c, raw.get_column(c.name))
    )
    rules = {
        c.name: _rules(c, raw.schema[c.name], c.name in derived, spec.privacy_unit) for c in present
    }
    conditions = [condition for column_rules in rules.values() for condition, _ in column_rules]
    failing = pl.any_horizontal(conditions).fill_null(False) if conditions else pl.lit(False)
    work = work.with_columns(failing.alias("__failing"))
    bad = work.filter(pl.col("__failing"))
    cell_rejects = pl.concat(
        [_reasons(bad, name, column_rules) for name, column_rules in rules.items()]
        or [_empty_rejects()]
    )
    candidates = work.filter(~pl.col("__failing")).select(
        _ROW, *(pl.col(_parsed(c.name)).alias(c.name) for c in present)
    )
    candidates, cut = truncate_to_bounds(spec, candidates, _ROW)
    candidates, derived_rejects = _derive(spec, candidates)
    rejects = pl.concat([cell_rejects, cut, derived_rejects])
    valid = candidates.select(pl.col(c.name).cast(snapshot_dtype(c)) for c in spec.columns)
    return valid, rejects


def _parsed(name: str) -> str:
    return f"__parsed__{name}"


def _present_name(name: str) -> str:
    return f"__present__{name}"


def _parse_column(column: Column, raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    """The parsed column and whether each raw cell held anything.

    Text columns with few distinct values (codes, flags, dates, small numbers) are parsed
    once per distinct value and mapped back: a CSV of a million rows parses in a second.
    """
    import polars as pl

    name = column.name
    expressions = (
        _parse(column, raw.dtype).alias(_parsed(name)),
        _present(name, raw.dtype).alias(_present_name(name)),
    )
    # Identifiers are nearly all distinct: their lookup table would be as long as the column.
    few_values = raw.dtype == pl.String and column.kind is not ColumnKind.IDENTIFIER
    distinct = raw.unique() if few_values else None
    if distinct is None or distinct.len() * 8 > raw.len():
        table = raw.to_frame().select(expressions)
        return table.get_column(_parsed(name)), table.get_column(_present_name(name))
    lookup = distinct.drop_nulls().to_frame()
    table = lookup.select(expressions)
    keys = lookup.get_column(name)
    return (
        _map_through(raw, keys, table.get_column(_parsed(name))),
        _map_through(raw, keys, table.get_column(_present_name(name))).fill_null(False),
    )


def _map_through(raw: pl.Series, keys: pl.Series, values: pl.Series) -> pl.Series:
    mapped = raw.replace_strict(keys, values, default=None, return_dtype=values.dtype)
    return mapped.alias(values.name)


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


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """The raw cell as trimmed text, with empty text as null (CSV writes missing as '')."""
    import polars as pl

    text = pl.col(name) if dtype == pl.String else pl.col(name).cast(pl.String)
    text = text.str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _parse(column: Column, dtype: pl.DataType) -> pl.Expr:
    """The cell converted to the column's stable dtype, or null where it cannot be."""
    parsers = {
        ColumnKind.IDENTIFIER: canonical_identifier,
        ColumnKind.CATEGORICAL: _parse_text,
        ColumnKind.BOOLEAN: _parse_boolean,
        ColumnKind.INTEGER: _parse_integer,
        ColumnKind.FLOAT: _parse_float,
        ColumnKind.DATE: _parse_date,
    }
    return parsers[column.kind](column.name, dtype)


def _parse_text(name: str, dtype: pl.DataType) -> pl.Expr:
    return _as_text(name, dtype)


def canonical_identifier(name: str, dtype: pl.DataType) -> pl.Expr:
    """The canonical identifier (IDENTIFIER_RULE): trimmed, Unicode NFC, lower case.

    One child exported as "KZ" in one system and " kz" in another is one privacy unit:
    two spellings counted as two people would let one person contribute past the bound.
    """
    return _as_text(name, dtype).str.normalize("NFC").str.to_lowercase()


def _parse_boolean(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype == pl.Boolean:
        return pl.col(name)
    words = dict.fromkeys(_TRUE_WORDS, True) | dict.fromkeys(_FALSE_WORDS, False)
    return (
        _as_text(name, dtype)
        .str.to_lowercase()
        .replace_strict(words, default=None, return_dtype=pl.Boolean)
    )


def _parse_integer(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64, strict=False)
    # Text (and floats, via their text) must spell a whole number: 2.5 is not silently 2.
    return _as_text(name, dtype).cast(pl.Int64, strict=False)


def _parse_float(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype.is_numeric():
        number = pl.col(name).cast(pl.Float64)
    else:
        number = _as_text(name, dtype).cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number)


def _parse_date(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype == pl.Date:
        return pl.col(name)
    if dtype == pl.Datetime:
        return pl.col(name).dt.date()
    return _as_text(name, dtype).str.to_date("%Y-%m-%d", strict=False)


def _present(name: str, dtype: pl.DataType) -> pl.Expr:
    """The raw cell holds something (blank text counts as missing)."""
    import polars as pl

    if dtype == pl.String:
        return pl.col(name).str.strip_chars().str.len_bytes().fill_null(0) > 0
    return pl.col(name).is_not_null()


def _rules(
    column: Column, dtype: pl.DataType, derived: bool, unit: str
) -> list[tuple[pl.Expr, pl.Expr]]:
    """(failure condition, reason) pairs for one column, in the order they are reported."""
    import polars as pl

    name = column.name
    present = pl.col(_present_name(name))
    value = pl.col(_parsed(name))
    text = _as_text(name, dtype)
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


def _derive(spec: Dataset, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Compute derived columns; reject rows whose given value disagrees with the derivation."""
    import polars as pl

    if spec.name != "reports":
        return frame, _empty_rejects()
    derived = recurrence_12m(frame)
    if "recurrence_12m" not in frame.columns:
        return frame.with_columns(derived.alias("recurrence_12m")), _empty_rejects()
    given = pl.col("recurrence_12m")
    checked = frame.with_columns(derived.alias("__derived"))
    wrong = given.is_not_null() & (given != pl.col("__derived"))
    rejects = checked.filter(wrong).select(
        pl.col(_ROW).alias(_ROW_OUT),
        pl.lit("recurrence_12m").alias("column"),
        pl.format(
            "inconsistent: recurrence_12m is {} but this child's substantiated/indicated "
            "report dates give {} (CFSR 12-month recurrence); omit the column to derive it",
            given,
            pl.col("__derived"),
        ).alias("reason"),
    )
    kept = (
        checked.filter(~wrong)
        .with_columns(pl.col("__derived").alias("recurrence_12m"))
        .drop("__derived")
    )
    return kept, rejects


def recurrence_12m(frame: pl.DataFrame) -> pl.Series:
    """CFSR recurrence: a substantiated/indicated report of a child within 12 months after
    an earlier substantiated/indicated report of the same child. Reports of one child on
    the same day count as one event. Returned in the frame's row order.

    One sort, then only running (cumulative) expressions: no group-by or join, so a
    million reports take a fraction of a second.
    """
    import polars as pl

    day = pl.col("report_date").cast(pl.Int64) + _DAY_OFFSET  # always >= 1
    child = pl.col("child_id")
    new_child = (child != child.shift(1)).fill_null(True)
    new_day = (pl.col("report_date") != pl.col("report_date").shift(1)).fill_null(True)
    child_base = new_child.cast(pl.Int64).cum_sum() * _CHILD_STRIDE
    # Running max of (child, victim day) codes: the child's latest victim day so far.
    latest = pl.when(pl.col("__victim")).then(child_base + day).otherwise(0).cum_max() - child_base
    latest_victim_day = pl.when(latest > 0).then(latest)
    before_this_day = pl.when(~new_child).then(latest_victim_day.shift(1))
    # Same-day reports share the value found at the first report of that day.
    previous = pl.when(new_child | new_day).then(before_this_day.fill_null(-1)).forward_fill()
    previous_day = pl.when(previous > 0).then(previous - _DAY_OFFSET).cast(pl.Date)
    flagged = (
        frame.select(
            pl.int_range(pl.len()).alias("__order"),
            "child_id",
            "report_date",
            pl.col("disposition").is_in(_VICTIM_DISPOSITIONS).alias("__victim"),
        )
        .sort("child_id", "report_date")
        .select(
            "__order",
            (
                pl.col("__victim")
                & previous_day.is_not_null()
                & (pl.col("report_date") <= previous_day.dt.offset_by("12mo"))
            ).alias("recurrence_12m"),
        )
        .sort("__order")
    )
    return flagged.get_column("recurrence_12m")


_DAY_OFFSET = 100_000
"""Shifts day numbers (days since 1970, >= -7,305 for EARLIEST_DATE) above zero."""
_CHILD_STRIDE = 1_000_000
"""Larger than any shifted day number, so child and day pack into one Int64."""
