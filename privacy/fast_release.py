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
* sums: `sum()` of the known values, which is the plan's sum with nulls filled with 0;
  a mean's centred sum (the plan's sum of `fill_null(c) - c`) as sum - c x count of the
  known values, one pass fewer over the rows; 64-bit integers, exact because
  max(|L|, |U|) x max_length fits;
* quantiles: OpenDP's candidate scores |(den - num) min(#(x < c), m) - num min(#(x > c), m)|
  per cell, with OpenDP's (num, den) for p and size limit m = the plan's max_length
  (privacy/fast_scores.py);
* empty public cells: 0 (no rows), all-zero scores for a quantile.

Noise (privacy/fast_noise.py): the integer Gaussian (`make_gaussian` on the vector of
cells) and the Gumbel report-noisy-min (`make_noisy_max(negate=True)` on each cell's score
vector), at the scale OpenDP's full measurement reports for that column. The charge is
not computed here: it stays the full measurement's privacy map (the plan is built either way).
docs/privacy-model.md (section 2.1) argues why the aggregate equals the transformation
whose stability OpenDP charges; tests/property/test_fast_aggregate_equals_opendp.py
checks it.

Only queries with a fast form (privacy/query_route.py, from the public query alone) take
this route; others use the full one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from privacy.fast_noise import add_noise
from privacy.fast_scores import score_frame
from privacy.plan import centred_integer_sum, key_frame, keyed_rows, query_columns
from privacy.query import Statistic
from privacy.validate import ValidatedQuery


def exact_aggregate(query: ValidatedQuery, data: pl.LazyFrame) -> pl.DataFrame:
    """The aggregate the full plan's transformation computes, one row per public cell.

    Key columns as the full plan names them, then `__count` / `__sum` (Int64, 0 in empty
    cells) or, for quantiles, `__q{i}` (each cell's list of candidate scores).
    `data` must satisfy the query's contribution bounds (no truncation happens here).
    """
    if query.statistic is Statistic.QUANTILES:
        return score_frame(query, data)
    rows, key_columns = keyed_rows(query, data)
    aggregations = _aggregations(query)
    names = [aggregation.meta.output_name() for aggregation in aggregations]
    if not key_columns:
        frame = rows.select(aggregations)
    else:
        grouped = rows.group_by(key_columns).agg(aggregations)
        frame = key_frame(query, key_columns).join(grouped, how="left", on=key_columns)
    frame = frame.with_columns(pl.col(names).fill_null(0).cast(pl.Int64))
    if query.statistic is Statistic.MEAN:
        assert query.measured is not None
        frame = frame.with_columns(centred_integer_sum(query.measured, "__sum", "__count"))
    return frame.collect()


def fast_release_frame(
    query: ValidatedQuery, parquet_path: Path, scales: Mapping[str, float]
) -> pl.DataFrame:
    """Exact aggregate of the snapshot plus OpenDP's noise at `scales` (per output column),
    in the shape the full route's measurement returns."""
    data = pl.scan_parquet(parquet_path).select([c.name for c in query_columns(query)])
    return add_noise(query, exact_aggregate(query, data), scales)


def _aggregations(query: ValidatedQuery) -> list[pl.Expr]:
    statistic = query.statistic
    if statistic is Statistic.COUNT or statistic is Statistic.HISTOGRAM:
        return [pl.len().alias("__count")]
    measured = query.measured
    assert measured is not None
    column = pl.col(measured.name)
    # No clipping: on a verified snapshot every value lies in [L, U], inside the plan's
    # clipping bounds ([min(L, 0), max(U, 0)]; [L - c, U - c] after centring), where
    # OpenDP's clamp is the identity (module docstring). `sum` skips missing values,
    # which is the plan's fill of 0.
    if statistic is Statistic.SUM:
        return [column.sum().alias("__sum")]
    # A mean: the sum and the number of known values; centred afterwards.
    return [column.sum().alias("__sum"), column.count().alias("__count")]
