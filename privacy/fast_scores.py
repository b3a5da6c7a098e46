"""The fast route's quantile scores: OpenDP's candidate scores per public cell, exactly.

OpenDP's score of candidate c for probability p = num / den (OpenDP's fraction) is
|(den - num) min(#(x < c), m) - num min(#(x > c), m)|, with m the plan's max_length.
Every score follows from how many rows hold each value, so the rows are first counted
per (cell, value):

* grouped queries: Polars counts the rows of each (cell keys, value);
* one cell, integer column with a narrow public range: numpy counts the values with
  `bincount` over [L - 1, U + 1] (values clipped there first, so a value outside the
  bounds still counts as below, or above, every candidate), about twice as fast at 1M
  rows as a Polars group-by on the value.

Each counted value is then placed among the candidates (how many lie below it, whether
it equals the next one) and the scores come from cumulative sums over the candidates,
in exact unsigned 64-bit arithmetic as OpenDP computes them.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from privacy.plan import (
    PUBLIC_MAX_ROWS,
    key_frame,
    keyed_rows,
    quantile_candidates,
    score_alpha_fraction,
)
from privacy.schema import Column, ColumnKind
from privacy.validate import ValidatedQuery

_CELL = "__cell"
_BINCOUNT_MAX_SPAN = 1 << 16
"""Widest integer range counted with `bincount` (its array holds one slot per value)."""
_BINCOUNT_CHUNK = 1 << 20
"""Values clipped and counted per pass: a buffer of 8 MB instead of copies of the column."""


def score_frame(query: ValidatedQuery, data: pl.LazyFrame) -> pl.DataFrame:
    """Per public cell, OpenDP's score of every candidate for every requested quantile:
    the key columns, then `__q{i}` (each cell's list of u64 scores)."""
    measured = query.measured
    assert measured is not None
    rows, key_columns = keyed_rows(query, data)
    if key_columns:
        cells = key_frame(query, key_columns).with_row_index(_CELL)
        keys = cells.collect()
        counted = rows.group_by(*key_columns, measured.name).len()
        in_cells = counted.join(cells, on=key_columns, how="inner")
        values = in_cells.select(_CELL, measured.name, "len").collect()
        cell = values[_CELL].to_numpy().astype(np.int64)
        value, counts = values[measured.name].to_numpy(), values["len"].to_numpy()
    else:
        keys = pl.DataFrame({_CELL: pl.Series([0], dtype=pl.UInt32)})
        value, counts = _value_counts(measured, rows)
        cell = np.zeros(len(value), dtype=np.int64)
    scores = _scores(query, keys.height, cell, value, counts)
    return keys.drop(_CELL).with_columns(
        pl.Series(name, lists, dtype=pl.List(pl.UInt64)) for name, lists in scores.items()
    )


def _value_counts(column: Column, rows: pl.LazyFrame) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of one cell's rows and how many rows hold each."""
    assert column.lower is not None
    assert column.upper is not None
    low, high = int(column.lower), int(column.upper)
    if column.kind is not ColumnKind.INTEGER or high - low > _BINCOUNT_MAX_SPAN:
        # grouping by the value alone keeps Polars on its fast path
        counted = rows.group_by(column.name).len().collect()
        return counted[column.name].to_numpy(), counted["len"].to_numpy()
    known = rows.select(column.name).collect().to_series().to_numpy()
    below = low - 1  # a slot below and one above the bounds: nothing is dropped
    counts = np.zeros(high - below + 2, dtype=np.int64)
    offsets = np.empty(min(len(known), _BINCOUNT_CHUNK), dtype=np.int64)
    for start in range(0, len(known), _BINCOUNT_CHUNK):  # one small buffer, reused
        chunk = known[start : start + _BINCOUNT_CHUNK]
        part = offsets[: len(chunk)]
        np.clip(chunk, below, high + 1, out=part)
        part -= below
        counts += np.bincount(part, minlength=len(counts))
    present = np.flatnonzero(counts)
    return present + below, counts[present]


def _scores(
    query: ValidatedQuery,
    cell_count: int,
    cell: np.ndarray,
    value: np.ndarray,
    counts: np.ndarray,
) -> dict[str, list[list[int]]]:
    """Each quantile's per-cell score lists from the rows counted per (cell, value)."""
    assert query.measured is not None
    grid = np.asarray(quantile_candidates(query.measured))
    below = np.searchsorted(grid, value, side="left")  # candidates below the value
    equal = (below < len(grid)) & (grid[np.minimum(below, len(grid) - 1)] == value)
    shape = (cell_count, len(grid) + 1)
    strictly_between, equal_to = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    np.add.at(strictly_between, (cell[~equal], below[~equal]), counts[~equal])
    np.add.at(equal_to, (cell[equal], below[equal]), counts[equal])
    through = np.cumsum(strictly_between + equal_to, axis=1)  # rows <= candidate j's slot
    total = through[:, -1:]
    at_most_before = np.concatenate([np.zeros((shape[0], 1), np.int64), through[:, :-2]], axis=1)
    less = np.minimum(at_most_before + strictly_between[:, :-1], PUBLIC_MAX_ROWS).astype(np.uint64)
    greater = np.minimum(total - through[:, :-1], PUBLIC_MAX_ROWS).astype(np.uint64)
    scores = {}
    for index, probability in enumerate(query.spec.quantiles):
        numerator, denominator = score_alpha_fraction(probability)
        # No overflow in u64: OpenDP picks den so that den * PUBLIC_MAX_ROWS fits.
        weighted_less = np.uint64(denominator - numerator) * less
        weighted_greater = np.uint64(numerator) * greater
        difference = np.where(
            weighted_less >= weighted_greater,
            weighted_less - weighted_greater,
            weighted_greater - weighted_less,
        )
        scores[f"__q{index}"] = difference.tolist()
    return scores
