"""Every cell of an export parsed to its column's stable dtype, one column at a time.

`parse_column` gives two columns per schema column: the parsed value (null where the
cell cannot be one) and whether the raw cell held anything (blank text counts as
missing); `node.row_validation` turns them into reject reasons. The general route is one
polars expression per column kind. Three routes give exactly its result for less:

- identifiers: `node.cell_text.canonical_identifiers` (whole ASCII columns at once);
- text columns with few distinct values (codes, flags, dates, small numbers): parsed
  once per distinct value and mapped back;
- a text code column whose every cell is already one of its public values (exactly,
  so trimming changes nothing): the column itself, every cell present.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.cell_text import as_text, canonical_identifier, canonical_identifiers, trimmed_text
from privacy.schema import Column, ColumnKind

if TYPE_CHECKING:
    import polars as pl

_TRUE_WORDS = ("true", "t", "yes", "y", "1")
_FALSE_WORDS = ("false", "f", "no", "n", "0")


def parsed_name(name: str) -> str:
    """The column holding `name`'s parsed values."""
    return f"__parsed__{name}"


def present_name(name: str) -> str:
    """The column saying whether `name`'s raw cell held anything."""
    return f"__present__{name}"


def parse_column(column: Column, raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    """The parsed column and whether each raw cell held anything."""
    import polars as pl

    name = column.name
    if column.kind is ColumnKind.IDENTIFIER:
        text = trimmed_text(raw)
        parsed = canonical_identifiers(text).alias(parsed_name(name))
        return parsed, text.is_not_null().alias(present_name(name))
    if _all_public_codes(column, raw):
        present = pl.repeat(True, raw.len(), eager=True).alias(present_name(name))
        return raw.alias(parsed_name(name)), present
    expressions = (
        _parse(column, raw.dtype).alias(parsed_name(name)),
        _present(name, raw.dtype).alias(present_name(name)),
    )
    distinct = raw.unique() if raw.dtype == pl.String else None
    if distinct is None or distinct.len() * 8 > raw.len():
        table = raw.to_frame().select(expressions)
        return table.get_column(parsed_name(name)), table.get_column(present_name(name))
    lookup = distinct.drop_nulls().to_frame()
    table = lookup.select(expressions)
    keys = lookup.get_column(name)
    return (
        _map_through(raw, keys, table.get_column(parsed_name(name))),
        _map_through(raw, keys, table.get_column(present_name(name))).fill_null(False),
    )


def _all_public_codes(column: Column, raw: pl.Series) -> bool:
    """Every cell is exactly a public value that trimming leaves as it is."""
    import polars as pl

    domain = column.domain
    if column.kind is not ColumnKind.CATEGORICAL or not domain or raw.dtype != pl.String:
        return False
    if any(value != value.strip() or not value for value in domain):
        return False
    return raw.null_count() == 0 and bool(raw.is_in(list(domain)).all())


def _map_through(raw: pl.Series, keys: pl.Series, values: pl.Series) -> pl.Series:
    mapped = raw.replace_strict(keys, values, default=None, return_dtype=values.dtype)
    return mapped.alias(values.name)


def _parse(column: Column, dtype: pl.DataType) -> pl.Expr:
    """The cell converted to the column's stable dtype, or null where it cannot be."""
    parsers = {
        ColumnKind.IDENTIFIER: canonical_identifier,
        ColumnKind.CATEGORICAL: as_text,
        ColumnKind.BOOLEAN: _parse_boolean,
        ColumnKind.INTEGER: _parse_integer,
        ColumnKind.FLOAT: _parse_float,
        ColumnKind.DATE: _parse_date,
    }
    return parsers[column.kind](column.name, dtype)


def _parse_boolean(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype == pl.Boolean:
        return pl.col(name)
    words = dict.fromkeys(_TRUE_WORDS, True) | dict.fromkeys(_FALSE_WORDS, False)
    return (
        as_text(name, dtype)
        .str.to_lowercase()
        .replace_strict(words, default=None, return_dtype=pl.Boolean)
    )


def _parse_integer(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64, strict=False)
    # Text (and floats, via their text) must spell a whole number: 2.5 is not silently 2.
    return as_text(name, dtype).cast(pl.Int64, strict=False)


def _parse_float(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype.is_numeric():
        number = pl.col(name).cast(pl.Float64)
    else:
        number = as_text(name, dtype).cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number)


def _parse_date(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype == pl.Date:
        return pl.col(name)
    if dtype == pl.Datetime:
        return pl.col(name).dt.date()
    return as_text(name, dtype).str.to_date("%Y-%m-%d", strict=False)


def _present(name: str, dtype: pl.DataType) -> pl.Expr:
    """The raw cell holds something (blank text counts as missing)."""
    import polars as pl

    if dtype == pl.String:
        return pl.col(name).str.strip_chars().str.len_bytes().fill_null(0) > 0
    return pl.col(name).is_not_null()
