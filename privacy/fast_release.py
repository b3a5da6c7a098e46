"""The fast route: the exact aggregate in plain Polars, the noise from OpenDP's measurement.

The full route (privacy/plan.py) hands OpenDP one plan: filter, derived keys, identifier
truncation to the query's contribution bounds, group-by onto the public key cells, noisy
aggregate. OpenDP computes the aggregate inside its bundled Polars engine and adds the
noise there. On a snapshot whose every person is already within the dataset's declared
bounds (verified at ingest and recorded in the sha256-checked manifest, node/bounds_record.py)
the truncation keeps every row, so the same aggregate can be computed in Python's Polars
on its fast path and handed to OpenDP's own measurement at the same scale. The record
also says every value of a bounded numeric column lies within its public bounds [L, U]
(ingest rejects others), so the plan's clipping is the identity there and is skipped:

* counts: `pl.len()` per public cell (a mean's denominator: `count()` of known values);
* sums: nulls filled as the plan fills them (a mean's sum centred first), summed in
  64-bit integers (exact: |bound| x max_length fits);
* quantiles: OpenDP's candidate scores |(den - num) min(#(x < c), m) - num min(#(x > c), m)|
  per cell, with OpenDP's (num, den) for p and size limit m = the plan's max_length;
* empty public cells: 0 (no rows), all-zero scores for a quantile.

Noise: the integer Gaussian (`make_gaussian` on the vector of cells) and the Gumbel
report-noisy-min (`make_noisy_max(negate=True)` on each cell's score vector), at the
scale OpenDP's full measurement reports for that column. The charge is not computed
here: it stays the full measurement's privacy map (the plan is built either way).
docs/privacy-model.md (section 2.1) argues why the aggregate equals the transformation
whose stability OpenDP charges; tests/property/test_fast_aggregate_equals_opendp.py
checks it.

Only queries with a fast form (privacy/query_route.py, from the public query alone) take
this route; others use the full one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from privacy.centring import mean_centre
from privacy.opendp_setup import opendp
from privacy.plan import (
    PUBLIC_MAX_ROWS,
    key_frame,
    keyed_rows,
    quantile_candidates,
    query_columns,
    score_alpha_fraction,
)
from privacy.query import Statistic
from privacy.validate import ValidatedQuery

_CELL = "__cell"


def exact_aggregate(query: ValidatedQuery, data: pl.LazyFrame) -> pl.DataFrame:
    """The aggregate the full plan's transformation computes, one row per public cell.

    Key columns as the full plan names them, then `__count` / `__sum` (Int64, 0 in empty
    cells) or, for quantiles, `__q{i}` (each cell's list of candidate scores).
    `data` must satisfy the query's contribution bounds (no truncation happens here).
    """
    if query.statistic is Statistic.QUANTILES:
        return _score_frame(query, data)
    rows, key_columns = keyed_rows(query, data)
    aggregations = _aggregations(query)
    names = [aggregation.meta.output_name() for aggregation in aggregations]
    if not key_columns:
        frame = rows.select(aggregations)
    else:
        grouped = rows.group_by(key_columns).agg(aggregations)
        frame = key_frame(query, key_columns).join(grouped, how="left", on=key_columns)
    return frame.with_columns(pl.col(names).fill_null(0).cast(pl.Int64)).collect()


def fast_release_frame(
    query: ValidatedQuery, parquet_path: Path, scales: Mapping[str, float]
) -> pl.DataFrame:
    """Exact aggregate of the snapshot plus OpenDP's noise at `scales` (per output column),
    in the shape the full route's measurement returns."""
    data = pl.scan_parquet(parquet_path).select([c.name for c in query_columns(query)])
    return add_noise(query, exact_aggregate(query, data), scales)


def add_noise(
    query: ValidatedQuery, exact: pl.DataFrame, scales: Mapping[str, float]
) -> pl.DataFrame:
    """Each output column through OpenDP's measurement at its scale (one draw per cell)."""
    dp = opendp()
    noisy = []
    for column, scale in scales.items():
        values = exact[column].to_list()
        if query.statistic is Statistic.QUANTILES:
            released: list[Any] = _noisy_candidates(dp, query, values, scale)
        else:
            gaussian = dp.m.make_gaussian(
                dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="i64"), scale
            )
            released = list(gaussian(values)) if values else []
        noisy.append(pl.Series(column, released))
    # Eager column swaps: no query-engine run for a frame of a few cells.
    frame = exact.clone()
    for series in noisy:
        frame.replace_column(frame.get_column_index(series.name), series)
    return frame


def _noisy_candidates(
    dp: Any, query: ValidatedQuery, score_lists: list[list[int]], scale: float
) -> list[int | float]:
    assert query.measured is not None
    candidates = quantile_candidates(query.measured)
    noisy_min = dp.m.make_noisy_max(
        dp.vector_domain(dp.atom_domain(T="u64")),
        dp.linf_distance(T="u64", monotonic=False),
        dp.zero_concentrated_divergence(),
        scale=scale,
        negate=True,
    )
    return [candidates[noisy_min(scores)] for scores in score_lists]


def _aggregations(query: ValidatedQuery) -> list[pl.Expr]:
    statistic = query.statistic
    if statistic is Statistic.COUNT or statistic is Statistic.HISTOGRAM:
        return [pl.len().alias("__count")]
    measured = query.measured
    assert measured is not None
    column = pl.col(measured.name)
    # No clipping: on a verified snapshot every value lies in [L, U], inside the plan's
    # clipping bounds ([min(L, 0), max(U, 0)]; [L - c, U - c] after centring), where
    # OpenDP's clamp is the identity (module docstring).
    if statistic is Statistic.SUM:
        return [column.fill_null(0).sum().alias("__sum")]
    centre = mean_centre(measured)
    centred = column.fill_null(centre) - centre
    return [centred.sum().alias("__sum"), column.count().alias("__count")]


def _score_frame(query: ValidatedQuery, data: pl.LazyFrame) -> pl.DataFrame:
    """Per public cell, OpenDP's score of every candidate for every requested quantile.

    Polars counts the rows of each (cell, value); each value is then placed among the
    candidates (how many lie below it, whether it equals the next one) and the scores
    follow from cumulative sums over the candidates.
    """
    measured = query.measured
    assert measured is not None
    candidates = quantile_candidates(measured)
    rows, key_columns = keyed_rows(query, data)
    if key_columns:
        cells = key_frame(query, key_columns).with_row_index(_CELL)
        keys = cells.collect()
        counted = rows.group_by(*key_columns, measured.name).len()
        in_cells = counted.join(cells, on=key_columns, how="inner")
        values = in_cells.select(_CELL, measured.name, "len").collect()
    else:  # one cell; grouping by the value alone keeps Polars on its fast path
        keys = pl.DataFrame({_CELL: pl.Series([0], dtype=pl.UInt32)})
        values = rows.group_by(measured.name).len().collect()
        values = values.with_columns(pl.lit(0, dtype=pl.UInt32).alias(_CELL))
    # numpy from here: a few small arrays, no query-engine runs
    grid = np.asarray(candidates)
    value = values[measured.name].to_numpy()
    cell, counts = values[_CELL].to_numpy().astype(np.int64), values["len"].to_numpy()
    below = np.searchsorted(grid, value, side="left")  # candidates below the value
    equal = (below < len(grid)) & (grid[np.minimum(below, len(grid) - 1)] == value)
    shape = (keys.height, len(candidates) + 1)
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
    return keys.drop(_CELL).with_columns(
        pl.Series(name, values, dtype=pl.List(pl.UInt64)) for name, values in scores.items()
    )
