"""Long on purpose: one OpenDP plan per statistic, kept together to read their privacy maps.

Planning and release: a validated query becomes one OpenDP measurement over Parquet.

How a query is turned into a measurement (node-only module; imports polars and OpenDP):

* **Privacy unit.** The input metric is OpenDP's symmetric distance on the dataset's
  privacy-unit column (`dp.unit_of(contributions=1, identifier=unit)`): neighbouring
  snapshots differ in all the rows of one person. The plan truncates each person's rows
  to the query's contribution bounds (privacy/bounds.py: the total within the query's
  date range, and the per-bucket bound of a time group-by), written as OpenDP's
  identifier truncations (`int_range(len).over(unit[, bucket]) < k`). OpenDP both
  enforces them (a snapshot that breaks a bound, e.g. one written outside ingest, loses
  the excess rows of that person) and derives the sensitivity from them. Ingest already
  keeps every person within the bounds, so on an ingested snapshot the truncation keeps
  every row. Which rows it keeps of a person over a bound: the first in file order.
* **Public keys.** Every group-by dimension's keys come from the validated query (schema
  domains, the buckets of the query's own date range, histogram bins); the aggregate is
  left-joined onto that key frame, which is how OpenDP releases a public key set, so
  every cell appears and empty cells get noisy zeros.
* **Nulls.** Sums fill nulls with 0 (bounds widened to include 0), so a sum is the sum of
  the known values; a mean is that sum over the count of known values; quantiles and
  histograms use only rows where the column is known. OpenDP's silent midpoint fill is
  never reached.
* **Scale.** OpenDP's relative `global_scale` multiplies each statistic's own
  sensitivity, so every released column costs the same share of rho. The plan is built
  once at scale 1, its `map(d_in)` read, and the scale for the requested rho (or the
  largest scale meeting the requested accuracy) computed directly; then the final
  measurement is built at that scale. No `resolve()` search.
* **Cost.** `measurement.map(d_in)` of the final measurement, rounded up to micro-rho.
* **Multi-item queries** (query.items): the aggregation holds every item's aggregates
  side by side (privacy/item_columns.py names them), so all items are one measurement
  with one privacy map (OpenDP composes them) and one charge; each item's values are
  then packaged as a one-column answer would be and released as its own cell, keyed
  by the item's name after the group keys (docs/privacy-model.md, section 5.2).

Released values carry OpenDP's distribution, scale and 95% half-width. Means are noisy
sum / max(noisy count, 1), clipped to the column bounds, with an interval from the sum
and count intervals at 97.5% each (union bound); when the count interval reaches below
1 the mean's interval is the column's bounds (an empty group's mean is undefined: the
value is then only a placeholder inside the bounds). Quantiles are chosen by OpenDP's
score mechanism (distribution RANK); their value interval is the whole candidate range,
a conservative statement that needs no data. Each also carries a 95% `rank_error`
(and with `quantile_count` the cell's count of known values is released too, one more
output of the same measurement, so the coordinator can turn rank errors into value
intervals: coordinator/quantile_intervals.py):

* OpenDP scores candidate c as |den * ((1 - p) * #(x < c) - p * #(x > c))| with p ~ num /
  den (den is p's exact denominator when small, else (2^64 - 1) // max_length) and
  releases argmin(score + Gumbel noise of scale s). That is the exponential mechanism: a
  candidate whose score is t worse than the best is chosen with probability at most
  exp(-t / s), so with k candidates P(score gap > s * ln((k - 1) / beta)) <= beta.
* With beta = 5%, `rank_error = s * ln((k - 1) / 0.05) / den` rows: with 95% probability
  the released value's rank score (1 - p) * #below - p * #above is within that many rows
  of the best candidate's. It uses only public numbers (s, k, p), so it costs nothing.
* A value interval would need the data's distribution between candidates (private), so
  the value interval stays the candidate range.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import polars as pl

from privacy.accuracy import CONFIDENCE, half_width_for, scale_for_half_width
from privacy.bounds import query_bounds
from privacy.budget import format_rho, rho_to_units_ceil
from privacy.centring import CENTRED_SUM, SUM_SHARE_OF_MEAN_RHO, centred_bounds, mean_centre
from privacy.item_columns import item_output_column, item_view, output_role
from privacy.opendp_setup import opendp, opendp_version
from privacy.query import PrivacyLoss, Statistic, TimeBucket
from privacy.query_route import QueryRoute, has_fast_form
from privacy.release import Cell, Estimate, NoiseDistribution, Release
from privacy.schema import Column, ColumnKind, Dataset, Schema
from privacy.snapshot_types import snapshot_dtype
from privacy.validate import (
    DateRange,
    GroupKeys,
    InSet,
    KeyValue,
    NumericRange,
    QueryValidationError,
    RowFilter,
    ValidatedQuery,
)

PUBLIC_MAX_ROWS = 1_000_000_000
"""Declared public upper bound on the rows of any snapshot (OpenDP's `max_length` margin,
needed for sums and quantiles to rule out overflow)."""

MAX_QUANTILE_CANDIDATES = 1024
_SCALE_SAFETY = 1 + 1e-9
"""Scales are inflated by this factor so float rounding never pushes the cost above the
requested rho."""
_MEAN_PART_CONFIDENCE = 1 - (1 - CONFIDENCE) / 2
_BIN_COLUMN = "__bin"
_SHAPE_ID = UUID(int=0)
_SHAPE_PRIVACY = PrivacyLoss(rho=Decimal(1))
_EPOCH = date(1970, 1, 1)

_OPENDP_TYPES: Mapping[ColumnKind, str] = {
    ColumnKind.IDENTIFIER: "String",
    ColumnKind.CATEGORICAL: "String",
    ColumnKind.BOOLEAN: "bool",
    ColumnKind.INTEGER: "i64",
    ColumnKind.FLOAT: "f64",
    ColumnKind.DATE: "NaiveDate",
}


@dataclass(frozen=True)
class ExpectedAccuracy:
    """What one released value will carry, known before release (Preview, --dry-run)."""

    name: str
    distribution: NoiseDistribution
    scale: float
    half_width: float
    """95% half-width; for RANK and NONE values a conservative, data-free bound."""
    rank_error: float | None = None
    """RANK values: the 95% rank error in rows (see the module docstring)."""


@dataclass(frozen=True)
class _Noise:
    """Noise of one OpenDP output column."""

    distribution: NoiseDistribution
    scale: float
    half_width: float
    half_width_mean_part: float
    """Half-width at 97.5% (used when this column is one half of a mean)."""
    rank_error: float | None = None
    """RANK columns: the 95% rank error in rows."""


@dataclass(frozen=True)
class _Output:
    """One aggregate column of the OpenDP output and the estimate name it becomes."""

    column: str
    name: str
    item: int | None = None
    """Multi-item queries: the index of the item (in query.items) this column measures."""

    @property
    def role(self) -> str:
        """The aggregate ("__count", "__sum", "__q0", ...), whichever item it is for."""
        return output_role(self.column)

    def measured(self, query: ValidatedQuery) -> Column | None:
        """The column this output aggregates (none for a plain row count)."""
        return query.measured if self.item is None else query.items[self.item]


@dataclass(frozen=True)
class QueryPlan:
    """A built measurement, its exact cost and the accuracy each value will have."""

    cost_units: int
    """ceil(measurement.map(d_in) * 1e6): what the ledger charges."""
    expected: tuple[ExpectedAccuracy, ...]
    query: ValidatedQuery
    parquet_path: Path
    _measurement: Any = field(repr=False)
    _noise: Mapping[str, _Noise] = field(repr=False)
    route: QueryRoute = QueryRoute.OPENDP
    """How `release` computes the answer; the cost is the full measurement's either way."""
    _released: list[bool] = field(default_factory=list, repr=False, compare=False)

    @property
    def rho(self) -> float:
        return self.cost_units / 1_000_000

    def mechanism_summary(self) -> str:
        """Distribution and scale per released value (the same for every cell), as JSON
        for the ledger entry."""
        rows = [
            {"name": value.name, "distribution": value.distribution.value, "scale": value.scale}
            for value in self.expected
        ]
        return json.dumps(rows, sort_keys=True, separators=(",", ":"))

    def unreleased_copy(self) -> QueryPlan:
        """The same measurement, cost and accuracy, not yet released (for a plan cache:
        the measurement is reusable, and each copy draws its own noise once)."""
        return replace(self, _released=[])

    def release(
        self, *, node: str, snapshot_id: str, suppress_below: float | None = None
    ) -> Release:
        """Run the measurement once over the snapshot and package the noisy answer.

        `suppress_below` optionally flags counts below it (post-processing of the noisy
        value: the value stays in the release and the cost is unchanged).
        A plan releases at most once; plan again (and charge again) for a new draw.
        """
        if self._released:
            raise RuntimeError("this plan was already released; plan (and charge) again")
        self._released.append(True)
        frame = self._noisy_frame()
        cells = _cells(self.query, frame, self._noise, suppress_below)
        spec = self.query.spec
        return Release(
            query_id=str(spec.query_id),
            node=node,
            dataset=spec.dataset,
            statistic=spec.statistic.value,
            group_columns=self.query.group_columns,
            cells=cells,
            cost_units=self.cost_units,
            confidence=CONFIDENCE,
            snapshot_id=snapshot_id,
            opendp_version=opendp_version(),
        )

    def _noisy_frame(self) -> pl.DataFrame:
        if self.route is QueryRoute.FAST:
            from privacy.fast_release import fast_release_frame

            scales = {column: noise.scale for column, noise in self._noise.items()}
            return fast_release_frame(self.query, self.parquet_path, scales)
        data = _scan(self.parquet_path, query_columns(self.query))
        frame: pl.DataFrame = self._measurement(data).collect()
        return frame


def plan_query(
    query: ValidatedQuery,
    schema: Schema,
    parquet_path: Path,
    route: QueryRoute = QueryRoute.OPENDP,
) -> QueryPlan:
    """Build the OpenDP measurement for `query` over the Parquet snapshot at `parquet_path`.

    `route` FAST (allowed only on a snapshot verified to satisfy the dataset's bounds,
    privacy/fast_release.py) releases through the fast route when the query has a fast
    form, else the full one; the measurement, its cost and accuracy are the same.
    Reads no data (the file is only scanned at release). Raises QueryValidationError
    (field "privacy.accuracy") when the requested accuracy would cost more than the
    node's per-query cap.
    """
    del schema  # the validated query already carries its dataset (with local domains)
    dp = opendp()
    columns = query_columns(query)
    build = functools.partial(
        _build,
        dp,
        _frame_domain(columns),
        _input_metric(query.dataset.privacy_unit),
        query,
        columns,
    )
    d_in = person_distance(dp)

    scales = _scales(query, _unit_cost(_measurement_shape(query)))
    measurement = build(scales=scales)
    cost_units = rho_to_units_ceil(measurement.map(d_in))
    if query.requested_rho_units is not None and cost_units > query.requested_rho_units:
        # Never charge more than asked: one correction from OpenDP's own map, then give up.
        scales = scales.times(math.sqrt(cost_units / query.requested_rho_units) * (1 + 1e-6))
        measurement = build(scales=scales)
        cost_units = rho_to_units_ceil(measurement.map(d_in))
        if cost_units > query.requested_rho_units:
            raise RuntimeError("could not fit the measurement inside the requested rho")
    if cost_units > query.max_rho_units:
        raise QueryValidationError(
            "privacy.accuracy",
            f"that accuracy costs rho {format_rho(cost_units)}, over this node's per-query cap "
            f"of {format_rho(query.max_rho_units)}; ask for a wider interval",
        )
    noise = _with_rank_errors(query, _noise_by_column(dp, measurement), scales.relative)
    if query.accuracy is not None:
        _check_accuracy(noise, query.accuracy)
    return QueryPlan(
        cost_units=cost_units,
        expected=_expected(query, noise),
        query=query,
        parquet_path=parquet_path,
        _measurement=measurement,
        _noise=noise,
        route=route if route is QueryRoute.OPENDP or _fast_form_fits(query) else QueryRoute.OPENDP,
    )


def _fast_form_fits(query: ValidatedQuery) -> bool:
    """A fast form whose integer sums are exact: max(|L|, |U|) x max_length < 2^63. The
    fast route sums plain values in Int64 (a mean's too, centred afterwards); OpenDP
    checks only the bounds it sums, which for a mean are the narrower centred ones."""
    measured = query.measured
    if not has_fast_form(query):
        return False
    if measured is None or measured.lower is None or measured.upper is None:
        return True
    return max(abs(measured.lower), abs(measured.upper)) * PUBLIC_MAX_ROWS < 2**63


# ---------------------------------------------------------------------------
# building the measurement


def query_columns(query: ValidatedQuery) -> tuple[Column, ...]:
    """The columns a query reads, in schema order (the measurement sees only these).

    Projecting columns keeps every row, so neighbouring datasets stay neighbours at the
    same distance; fewer columns make the OpenDP build and the scan faster.
    """
    used = {query.dataset.privacy_unit}
    used.update(row_filter.column for row_filter in query.filters)
    used.update(group.column for group in query.groups)
    if query.measured is not None:
        used.add(query.measured.name)
    used.update(item.name for item in query.items)
    return tuple(column for column in query.dataset.columns if column.name in used)


@functools.lru_cache(maxsize=512)
def _frame_domain(columns: tuple[Column, ...]) -> Any:
    dp = opendp()
    series = [
        dp.series_domain(c.name, dp.option_domain(dp.atom_domain(T=_OPENDP_TYPES[c.kind])))
        for c in columns
    ]
    domain = dp.lazyframe_domain(series)
    return dp.with_margin(domain, dp.polars.Margin(by=[], max_length=PUBLIC_MAX_ROWS))


@functools.lru_cache(maxsize=512)
def _empty_frame(columns: tuple[Column, ...]) -> pl.LazyFrame:
    return pl.LazyFrame(schema={c.name: snapshot_dtype(c) for c in columns})


def _scan(parquet_path: Path, columns: tuple[Column, ...]) -> pl.LazyFrame:
    return pl.scan_parquet(parquet_path).select([c.name for c in columns])


@functools.lru_cache(maxsize=64)
def _input_metric(privacy_unit: str) -> Any:
    """Symmetric distance in persons: all rows sharing one privacy-unit id change."""
    dp = opendp()
    return dp.frame_distance(dp.symmetric_id_distance(privacy_unit))


def person_distance(dp: ModuleType) -> list[Any]:
    """d_in of every plan: one person, i.e. one privacy-unit id (with all its rows)."""
    return [dp.polars.Bound(by=[], per_group=1)]


@dataclass(frozen=True)
class _Scales:
    """Noise scales of a measurement: OpenDP's relative `global_scale` (each output's own
    sensitivity times it), or an absolute scale per output column where given."""

    relative: float
    absolute: Mapping[str, float] = field(default_factory=dict)

    def times(self, factor: float) -> _Scales:
        absolute = {column: scale * factor for column, scale in self.absolute.items()}
        return _Scales(self.relative * factor, absolute)


def _build(
    dp: ModuleType,
    domain: Any,
    metric: Any,
    query: ValidatedQuery,
    columns: tuple[Column, ...],
    *,
    scales: _Scales,
) -> Any:
    aggregations = [
        _aggregation_expr(dp, query, output, scales.absolute.get(output.column))
        for output in _outputs(query)
    ]
    lazy_plan = _shaped_plan(query, _empty_frame(columns), aggregations, truncate=True)
    return dp.m.make_private_lazyframe(
        domain,
        metric,
        dp.zero_concentrated_divergence(),
        lazy_plan,
        global_scale=scales.relative,
    )


def exact_plan(query: ValidatedQuery, parquet_path: Path) -> pl.LazyFrame:
    """The measurement's plan without privacy: same filter, keys, group-by and key cells.

    Exact aggregates (no noise, no clipping to the column bounds) over the same columns
    of the same file, every public key cell present (empty cells count 0, sum 0). For
    benchmarks ("the same non-private aggregation") and exactness checks; never released.
    """
    data = _scan(parquet_path, query_columns(query))
    outputs = _outputs(query)
    frame = _shaped_plan(query, data, [_exact_expr(query, output) for output in outputs])
    filled = [pl.col(o.column).fill_null(0) for o in outputs if not o.column.startswith("__q")]
    frame = frame.with_columns(filled) if filled else frame
    centred = [
        centred_integer_sum(
            column,
            output.column,
            "__count" if output.item is None else item_output_column("__count", output.item),
        )
        for output in outputs
        if (column := _integer_mean_column(query, output)) is not None
    ]
    return frame.with_columns(centred) if centred else frame


def _integer_mean_column(query: ValidatedQuery, output: _Output) -> Column | None:
    """The integer column whose mean `output` is the sum of (summed plainly, then centred
    exactly by `centred_integer_sum`); None for every other output."""
    measured = output.measured(query)
    if (
        query.statistic is Statistic.MEAN
        and output.role == "__sum"
        and measured is not None
        and measured.kind is ColumnKind.INTEGER
    ):
        return measured
    return None


def centred_integer_sum(column: Column, sum_column: str, count_column: str) -> pl.Expr:
    """A mean's centred sum, sum(fill_null(c) - c), from the sum of the known values and
    their count: sum - c x count, exact in 64-bit integers (|c| <= max(|L|, |U|), so
    every term is within a plain sum's range), without a pass over the rows to subtract
    c from each. Named `sum_column`."""
    centre = pl.lit(mean_centre(column), dtype=pl.Int64)
    return (pl.col(sum_column) - centre * pl.col(count_column)).alias(sum_column)


def _exact_expr(query: ValidatedQuery, output: _Output) -> pl.Expr:
    measured = output.measured(query)
    if _counts_rows(query) and output.item is not None:  # a flag item: its true rows
        return pl.col(query.items[output.item].name).sum().alias(output.column)
    if output.role == "__count" and measured is not None and not _counts_rows(query):
        return pl.col(measured.name).count().alias(output.column)
    if output.role == "__count":
        # No cast: a cast inside the aggregation costs Polars its fast group-by path.
        return pl.len().alias(output.column)
    assert measured is not None
    column = pl.col(measured.name)
    if output.role == "__sum" and query.statistic is Statistic.MEAN:
        centre = mean_centre(measured)
        # integer columns: the plain sum, centred exactly afterwards (exact_plan)
        plain = _integer_mean_column(query, output) is not None
        return (column if plain else column.fill_null(centre) - centre).sum().alias(output.column)
    if output.column == "__sum":
        return column.fill_null(_bound(measured, 0)).sum().alias(output.column)
    probability = query.spec.quantiles[int(output.column.removeprefix("__q"))]
    return column.quantile(probability, "nearest").alias(output.column)


def _counts_rows(query: ValidatedQuery) -> bool:
    return query.statistic is Statistic.COUNT or query.statistic is Statistic.HISTOGRAM


def _shaped_plan(
    query: ValidatedQuery,
    frame: pl.LazyFrame,
    aggregations: Sequence[Any],
    *,
    truncate: bool = False,
) -> pl.LazyFrame:
    """Filter, derived key columns, (truncation,) group-by and the join onto the key cells.

    The truncation filters sit right under the aggregation, where OpenDP looks for them.
    """
    frame, key_columns = keyed_rows(query, frame)
    if truncate:
        frame = truncated_rows(query, frame)
    if not key_columns:
        return frame.select(aggregations)
    grouped = frame.group_by(key_columns).agg(aggregations)
    return key_frame(query, key_columns).join(grouped, how="left", on=key_columns)


def keyed_rows(query: ValidatedQuery, frame: pl.LazyFrame) -> tuple[pl.LazyFrame, list[str]]:
    """The rows a query aggregates (its filter applied) with its derived key columns
    (time buckets, histogram bin), and the names of all its key columns in order."""
    predicate = _predicate(query)
    if predicate is not None:
        frame = frame.filter(predicate)
    key_columns = [_key_column_name(index, group) for index, group in enumerate(query.groups)]
    derived = {
        name: _bucket_expr(group)
        for name, group in zip(key_columns, query.groups, strict=True)
        if group.time_bucket is not None
    }
    if query.statistic is Statistic.HISTOGRAM:
        assert query.measured is not None
        derived[_BIN_COLUMN] = _bin_index_expr(query.measured, query.bin_edges)
        key_columns.append(_BIN_COLUMN)
    if derived:
        frame = frame.with_columns(**derived)
    return frame, key_columns


def truncated_rows(query: ValidatedQuery, frame: pl.LazyFrame) -> pl.LazyFrame:
    """Keep at most the query's contribution bounds of rows per person (first in file order).

    OpenDP reads each filter as an identifier truncation and derives its bounds from it.
    """
    bounds = query_bounds(query)
    unit = query.dataset.privacy_unit
    # Per bucket first: a person over a bucket's bound then loses rows in that bucket only.
    for index, (group, per_bucket) in enumerate(
        zip(query.groups, bounds.per_time_group, strict=True)
    ):
        if per_bucket is not None:
            bucket = _key_column_name(index, group)
            frame = frame.filter(pl.int_range(pl.len()).over(unit, bucket) < per_bucket)
    return frame.filter(pl.int_range(pl.len()).over(unit) < bounds.total)


def _key_column_name(index: int, group: GroupKeys) -> str:
    return f"__g{index}" if group.time_bucket is not None else group.column


def key_frame(query: ValidatedQuery, key_columns: Sequence[str]) -> pl.LazyFrame:
    dimensions: list[tuple[KeyValue, ...]] = [group.values for group in query.groups]
    dtypes: list[Any] = [_key_dtype(query.dataset, group) for group in query.groups]
    if query.statistic is Statistic.HISTOGRAM:
        dimensions.append(tuple(range(1, len(query.bin_edges))))
        dtypes.append(pl.Int64)
    return _cross_keys(tuple(key_columns), tuple(dimensions), tuple(dtypes))


@functools.lru_cache(maxsize=256)
def _cross_keys(
    names: tuple[str, ...], dimensions: tuple[tuple[KeyValue, ...], ...], dtypes: tuple[Any, ...]
) -> pl.LazyFrame:
    """Every public key cell: the cross product of the dimensions (a LazyFrame is
    immutable, so one is shared by every plan with the same keys)."""
    keys = pl.LazyFrame({names[0]: pl.Series(dimensions[0], dtype=dtypes[0])})
    for name, values, dtype in zip(names[1:], dimensions[1:], dtypes[1:], strict=True):
        keys = keys.join(pl.LazyFrame({name: pl.Series(values, dtype=dtype)}), how="cross")
    return keys


def _key_dtype(dataset: Dataset, group: GroupKeys) -> Any:
    if group.time_bucket is not None:
        return pl.Int64
    return snapshot_dtype(dataset.column(group.column))


def _predicate(query: ValidatedQuery) -> pl.Expr | None:
    parts = [_filter_expr(row_filter) for row_filter in query.filters]
    if query.statistic in (Statistic.QUANTILES, Statistic.HISTOGRAM):
        assert query.measured is not None
        parts.append(pl.col(query.measured.name).is_not_null())
    if not parts:
        return None
    predicate = parts[0]
    for part in parts[1:]:
        predicate = predicate & part
    return predicate


def _filter_expr(row_filter: RowFilter) -> pl.Expr:
    column = pl.col(row_filter.column)
    if isinstance(row_filter, InSet):
        # OpenDP 0.16 does not accept `is_in`; an OR of equalities is the same predicate
        # (a null never equals a value, so rows with a missing value are dropped).
        expression = column == row_filter.values[0]
        for value in row_filter.values[1:]:
            expression = expression | (column == value)
        return expression
    if isinstance(row_filter, DateRange):
        # OpenDP rejects date literals; compare days since the epoch instead.
        days = column.cast(pl.Int64)
        return (days >= _epoch_days(row_filter.start)) & (days <= _epoch_days(row_filter.end))
    return _numeric_range_expr(column, row_filter)


def _numeric_range_expr(column: pl.Expr, row_filter: NumericRange) -> pl.Expr:
    parts = []
    if row_filter.low is not None:
        parts.append(column >= row_filter.low)
    if row_filter.high is not None:
        parts.append(column <= row_filter.high)
    return parts[0] if len(parts) == 1 else parts[0] & parts[1]


def _epoch_days(day: date) -> int:
    return (day - _EPOCH).days


def _bucket_expr(group: GroupKeys) -> pl.Expr:
    """The bucket code per row, mirroring privacy.timebuckets.bucket_code."""
    assert group.time_bucket is not None
    column = pl.col(group.column)
    year = column.dt.year().cast(pl.Int64)
    month = column.dt.month().cast(pl.Int64)
    bucket = group.time_bucket.bucket
    if bucket is TimeBucket.YEAR:
        return year
    if bucket is TimeBucket.FISCAL_YEAR:
        start = group.time_bucket.fiscal_year_start_month
        if start == 1:
            return year
        return year + (month >= start).cast(pl.Int64)
    if bucket is TimeBucket.QUARTER:
        return year * 4 + (month - 1) // 3
    return year * 12 + (month - 1)


def _bin_index_expr(column: Column, edges: tuple[float, ...]) -> pl.Expr:
    """1-based bin index; 0 or len(edges) for values outside the edges (not keys).

    Bins are [e0, e1), ..., [e(n-2), e(n-1)] with the last one closed. Values are clipped
    to the column's bounds first, as for sums.
    """
    assert column.lower is not None
    assert column.upper is not None
    value = pl.col(column.name).clip(_bound(column, column.lower), _bound(column, column.upper))
    index = (value >= edges[0]).cast(pl.Int64)
    for edge in edges[1:-1]:
        index = index + (value >= edge).cast(pl.Int64)
    return index + (value > edges[-1]).cast(pl.Int64)


def _bound(column: Column, bound: float) -> int | float:
    return int(bound) if column.kind is ColumnKind.INTEGER else float(bound)


def _outputs(query: ValidatedQuery) -> tuple[_Output, ...]:
    if query.items:
        return tuple(
            _Output(item_output_column(single.column, index), single.name, index)
            for index in range(len(query.items))
            for single in _single_outputs(query)
        )
    return _single_outputs(query)


def _single_outputs(query: ValidatedQuery) -> tuple[_Output, ...]:
    statistic = query.statistic
    if statistic is Statistic.COUNT or statistic is Statistic.HISTOGRAM:
        return (_Output("__count", "count"),)
    if statistic is Statistic.SUM:
        return (_Output("__sum", "sum"),)
    if statistic is Statistic.MEAN:
        return (_Output("__sum", CENTRED_SUM), _Output("__count", "count"))
    quantiles = tuple(
        _Output(f"__q{index}", f"q{probability:g}")
        for index, probability in enumerate(query.spec.quantiles)
    )
    if query.spec.quantile_count:  # the count of known values, for value intervals
        return (*quantiles, _Output("__count", "count"))
    return quantiles


def _aggregation_expr(
    dp: ModuleType, query: ValidatedQuery, output: _Output, scale: float | None = None
) -> Any:
    """The OpenDP aggregate of one output; `scale` None: relative to the global scale."""
    # Returns Any: the `.dp` expression namespace is registered by OpenDP at runtime.
    statistic = query.statistic
    if _counts_rows(query) and output.item is not None:  # a flag item: its true rows
        flag: Any = pl.col(query.items[output.item].name)
        return flag.filter(flag).dp.len(signed=True).alias(output.column)
    if _counts_rows(query):
        return dp.len(signed=True).alias(output.column)
    measured = output.measured(query)
    assert measured is not None
    assert measured.lower is not None
    assert measured.upper is not None
    column: Any = pl.col(measured.name)
    if output.role == "__count":  # the denominator of a mean: known values only
        return column.dp.count(signed=True, scale=scale).alias(output.column)
    if output.role == "__sum" and statistic is Statistic.MEAN:
        # A missing value is filled with the centre: it adds 0 to the centred sum.
        centre = mean_centre(measured)
        centred = column.fill_null(centre) - centre
        return centred.dp.sum(centred_bounds(measured), scale=scale).alias(output.column)
    if output.column == "__sum":
        return (
            column.fill_null(_bound(measured, 0)).dp.sum(sum_bounds(measured)).alias(output.column)
        )
    index = int(output.column.removeprefix("__q"))
    probability = query.spec.quantiles[index]
    # Rows with a missing value are filtered out above; the fill is a no-op that keeps
    # OpenDP from ever imputing its own value.
    return (
        column.fill_null(_bound(measured, measured.lower))
        .dp.quantile(probability, list(quantile_candidates(measured)))
        .alias(output.column)
    )


def sum_bounds(column: Column) -> tuple[int | float, int | float]:
    """Clipping bounds of a plain sum: the column's bounds widened to include 0 (the fill
    of a missing value)."""
    assert column.lower is not None
    assert column.upper is not None
    zero = _bound(column, 0)
    return min(_bound(column, column.lower), zero), max(_bound(column, column.upper), zero)


def quantile_candidates(column: Column) -> tuple[int | float, ...]:
    """Public candidate grid for quantiles: every integer in bounds, or an even grid."""
    assert column.lower is not None
    assert column.upper is not None
    low, high = column.lower, column.upper
    if column.kind is ColumnKind.INTEGER and high - low + 1 <= MAX_QUANTILE_CANDIDATES:
        return tuple(range(int(low), int(high) + 1))
    steps = MAX_QUANTILE_CANDIDATES - 1
    grid = [low + (high - low) * index / steps for index in range(steps + 1)]
    if column.kind is ColumnKind.INTEGER:
        return tuple(sorted({round(value) for value in grid}))
    return tuple(grid)


# ---------------------------------------------------------------------------
# scale, cost and accuracy


@dataclass(frozen=True)
class _UnitCost:
    """What OpenDP says of a query's measurement at relative scale 1: its rho at one
    person (`map(d_in)`) and each output's (column, distribution, scale) from
    `summarize_polars_measurement`."""

    rho: float
    outputs: tuple[tuple[str, str, float], ...]


def _measurement_shape(query: ValidatedQuery) -> ValidatedQuery:
    """`query` without what the scale-1 measurement does not depend on (its id, purpose,
    requested rho or accuracy, the node's cap): equal for queries whose measurements
    differ only in scale. Everything else (the dataset with its local domains and
    contribution bounds, columns, groups with their keys, filters, bins, items) stays in."""
    spec = query.spec.model_copy(
        update={"query_id": _SHAPE_ID, "privacy": _SHAPE_PRIVACY, "purpose": ""}
    )
    return replace(
        query,
        spec=spec,
        requested_rho=None,
        requested_rho_units=None,
        accuracy=None,
        max_rho_units=0,
    )


@functools.lru_cache(maxsize=256)
def _unit_cost(shape: ValidatedQuery) -> _UnitCost:
    """Build the measurement of `shape` at relative scale 1 and ask OpenDP its cost and
    scales (deterministic in the shape: public schema, query and OpenDP only)."""
    dp = opendp()
    columns = query_columns(shape)
    unit = _build(
        dp,
        _frame_domain(columns),
        _input_metric(shape.dataset.privacy_unit),
        shape,
        columns,
        scales=_Scales(1.0),
    )
    summary = dp.summarize_polars_measurement(unit)
    outputs = tuple(
        (str(column), str(distribution), float(scale))
        for column, distribution, scale in zip(
            summary["column"], summary["distribution"], summary["scale"], strict=True
        )
    )
    return _UnitCost(float(unit.map(person_distance(dp))), outputs)


def clear_shape_caches() -> None:
    """Forget every cached scale-1 cost, input metric, empty frame, key frame and
    half-width (the next plan of each shape builds them again: the cold planning time
    the bench reports)."""
    _unit_cost.cache_clear()
    half_width_for.cache_clear()
    _input_metric.cache_clear()
    _empty_frame.cache_clear()
    _cross_keys.cache_clear()


def _scales(query: ValidatedQuery, unit: _UnitCost) -> _Scales:
    """The scales for the requested rho or accuracy; a mean at a given rho splits it."""
    if query.statistic is Statistic.MEAN and query.requested_rho is not None:
        return _mean_scales(query, float(query.requested_rho), unit)
    return _Scales(_global_scale(query, unit))


def _mean_scales(query: ValidatedQuery, rho: float, unit: _UnitCost) -> _Scales:
    """Absolute sum and count scales giving the sum SUM_SHARE_OF_MEAN_RHO of rho.

    At relative scale 1 each output costs the same (its own sensitivity is the noise
    scale), so each costs unit_rho / 2 there, and rho falls with the scale squared. With
    k items each of the 2k outputs costs unit_rho / (2k) at scale 1 and each item gets
    rho / k, so the same scales result: every item's mean is as accurate as the others.
    """
    unit_scales = {column: scale for column, _, scale in unit.outputs}
    shares = {"__sum": SUM_SHARE_OF_MEAN_RHO, "__count": 1 - SUM_SHARE_OF_MEAN_RHO}
    absolute = {
        output.column: unit_scales[output.column]
        * math.sqrt(unit.rho / 2 / (shares[output.role] * rho))
        for output in _outputs(query)
    }
    return _Scales(1.0, absolute).times(_SCALE_SAFETY)


def _global_scale(query: ValidatedQuery, unit: _UnitCost) -> float:
    """The relative scale for the requested rho, or the largest meeting the accuracy.

    Every mechanism here has rho proportional to 1 / scale^2, so the scale for a target
    rho follows from the cost at scale 1.
    """
    if query.requested_rho is not None:
        return math.sqrt(unit.rho / float(query.requested_rho)) * _SCALE_SAFETY
    assert query.accuracy is not None
    scales = []
    for _, distribution, unit_scale in unit.outputs:
        try:
            target = scale_for_half_width(distribution, query.accuracy)
        except ValueError as error:
            raise QueryValidationError("privacy.accuracy", f"{error}; ask for more") from None
        scales.append(target / unit_scale)
    return min(scales) / _SCALE_SAFETY


def _noise_by_column(dp: ModuleType, measurement: Any) -> dict[str, _Noise]:
    # Distributions and scales from OpenDP; half-widths from privacy.accuracy, which uses
    # OpenDP's helper wherever it is fast (summarize's own accuracy column calls the same
    # helper, which takes tens of milliseconds at very large scales).
    summary = dp.summarize_polars_measurement(measurement)
    noise: dict[str, _Noise] = {}
    for row in summary.iter_rows(named=True):
        opendp_name = str(row["distribution"])
        distribution = _distribution(opendp_name)
        scale = float(row["scale"])
        if distribution is NoiseDistribution.RANK:
            noise[row["column"]] = _Noise(distribution, scale, math.inf, math.inf)
            continue
        half_width = half_width_for(opendp_name, scale, CONFIDENCE)
        mean_part = half_width_for(opendp_name, scale, _MEAN_PART_CONFIDENCE)
        noise[row["column"]] = _Noise(distribution, scale, half_width, mean_part)
    return noise


def _with_rank_errors(
    query: ValidatedQuery, noise: Mapping[str, _Noise], global_scale: float
) -> dict[str, _Noise]:
    """Attach each quantile's 95% rank error (module docstring) to its noise."""
    if query.statistic is not Statistic.QUANTILES:
        return dict(noise)
    assert query.measured is not None
    candidates = len(quantile_candidates(query.measured))
    with_errors = dict(noise)
    for index, probability in enumerate(query.spec.quantiles):
        column = f"__q{index}"
        with_errors[column] = dataclasses.replace(
            noise[column],
            rank_error=quantile_rank_error(
                probability, noise[column].scale, global_scale, candidates
            ),
        )
    return with_errors


def quantile_rank_error(
    probability: float,
    score_scale: float,
    global_scale: float,
    candidates: int,
    confidence: float = CONFIDENCE,
) -> float | None:
    """95% bound, in rows, on how much worse the released candidate's rank score is.

    `score_scale` is the Gumbel scale OpenDP reports (in units of its integer scores);
    `global_scale` the relative scale the measurement was built with. Returns None when
    the score constants reconstructed here do not reproduce OpenDP's scale (a changed
    OpenDP): then no rank claim is made rather than a wrong one.
    """
    numerator, denominator = score_alpha_fraction(probability)
    sensitivity = max(numerator, denominator - numerator)
    if not math.isclose(score_scale, global_scale * sensitivity, rel_tol=1e-6):
        return None
    if candidates < 2:
        return 0.0
    return score_scale * math.log((candidates - 1) / (1 - confidence)) / denominator


def score_alpha_fraction(probability: float) -> tuple[int, int]:
    """OpenDP's integer (num, den) for p (score_candidates_constants, size = max_length)."""
    exact = Fraction(probability)
    limit = (2**64 - 1) // PUBLIC_MAX_ROWS
    if exact.denominator < limit:
        return exact.numerator, exact.denominator
    return round(probability * float(limit)), limit


def _distribution(opendp_name: str) -> NoiseDistribution:
    lowered = opendp_name.lower()
    if "gaussian" in lowered:
        return NoiseDistribution.GAUSSIAN
    if "laplace" in lowered:
        return NoiseDistribution.LAPLACE
    if "gumbel" in lowered or "exponential" in lowered:
        return NoiseDistribution.RANK
    raise RuntimeError(f"unexpected OpenDP noise distribution {opendp_name!r}")


def _check_accuracy(noise: Mapping[str, _Noise], accuracy: float) -> None:
    for column, column_noise in noise.items():
        if column_noise.half_width > accuracy:
            raise RuntimeError(
                f"internal: {column} half-width {column_noise.half_width} exceeds {accuracy}"
            )


def _expected(query: ValidatedQuery, noise: Mapping[str, _Noise]) -> tuple[ExpectedAccuracy, ...]:
    """Each value's expected accuracy; a multi-item query's names are "ITEM:VALUE"."""
    if not query.items:
        return _expected_values(query, noise, query.measured)
    return tuple(
        replace(value, name=f"{item.name}:{value.name}")
        for index, item in enumerate(query.items)
        for value in _expected_values(query, item_view(noise, index), item)
    )


def _expected_values(
    query: ValidatedQuery, noise: Mapping[str, _Noise], measured: Column | None
) -> tuple[ExpectedAccuracy, ...]:
    """The values of one cell of one column; `noise` keyed by the plain output names."""
    expected: list[ExpectedAccuracy] = []
    for output in _single_outputs(query):
        column_noise = noise[output.column]
        if query.statistic is Statistic.HISTOGRAM:
            expected.extend(
                ExpectedAccuracy(
                    name, column_noise.distribution, column_noise.scale, column_noise.half_width
                )
                for name in bin_names(query.bin_edges)
            )
            continue
        half_width = column_noise.half_width
        if column_noise.distribution is NoiseDistribution.RANK:
            assert measured is not None
            half_width = _bounds_half_width(measured)
        expected.append(
            ExpectedAccuracy(
                output.name,
                column_noise.distribution,
                column_noise.scale,
                half_width,
                column_noise.rank_error,
            )
        )
    if query.statistic is Statistic.MEAN:
        assert measured is not None
        expected.append(
            ExpectedAccuracy("mean", NoiseDistribution.NONE, 0.0, _bounds_half_width(measured))
        )
    return tuple(expected)


def _bounds_half_width(column: Column) -> float:
    assert column.lower is not None
    assert column.upper is not None
    return (column.upper - column.lower) / 2


def bin_names(edges: tuple[float, ...]) -> tuple[str, ...]:
    """Estimate names of histogram bins: "bin[0,22)", ..., last one closed "bin[198,216]"."""
    names = [f"bin[{low:g},{high:g})" for low, high in itertools.pairwise(edges[:-1])]
    names.append(f"bin[{edges[-2]:g},{edges[-1]:g}]")
    return tuple(names)


# ---------------------------------------------------------------------------
# packaging the release


def _cells(
    query: ValidatedQuery,
    frame: pl.DataFrame,
    noise: Mapping[str, _Noise],
    suppress_below: float | None,
) -> tuple[Cell, ...]:
    key_columns = [_key_column_name(index, group) for index, group in enumerate(query.groups)]
    histogram = query.statistic is Statistic.HISTOGRAM
    by_key: dict[tuple[KeyValue, ...], dict[str, Any]] = {}
    for row in frame.iter_rows(named=True):
        key = tuple(row[name] for name in key_columns)
        if histogram:
            key = (*key, row[_BIN_COLUMN])
        by_key[key] = row
    cells = []
    labels_by_dimension = [dict(zip(g.values, g.labels, strict=True)) for g in query.groups]
    for key in query.cell_keys():
        label = tuple(labels[value] for labels, value in zip(labels_by_dimension, key, strict=True))
        if histogram:
            estimates = _histogram_estimates(query, key, by_key, noise, suppress_below)
        elif query.items:
            cells.extend(_item_cells(query, label, _row(by_key, key), noise, suppress_below))
            continue
        else:
            cell_row = _row(by_key, key)
            estimates = _estimates(query, cell_row, noise, suppress_below, query.measured)
        cells.append(Cell(key=label, estimates=estimates))
    return tuple(cells)


def _item_cells(
    query: ValidatedQuery,
    label: tuple[str, ...],
    row: Mapping[str, Any],
    noise: Mapping[str, _Noise],
    suppress_below: float | None,
) -> list[Cell]:
    """One cell per item, keyed by the group key and then the item's name."""
    return [
        Cell(
            key=(*label, item.name),
            estimates=_estimates(
                query, item_view(row, index), item_view(noise, index), suppress_below, item
            ),
        )
        for index, item in enumerate(query.items)
    ]


def _row(
    by_key: Mapping[tuple[KeyValue, ...], Mapping[str, Any]], key: tuple[KeyValue, ...]
) -> Mapping[str, Any]:
    try:
        return by_key[key]
    except KeyError:
        raise RuntimeError(f"internal: OpenDP released no row for public key {key}") from None


def _histogram_estimates(
    query: ValidatedQuery,
    key: tuple[KeyValue, ...],
    by_key: Mapping[tuple[KeyValue, ...], Mapping[str, Any]],
    noise: Mapping[str, _Noise],
    suppress_below: float | None,
) -> tuple[Estimate, ...]:
    count_noise = noise["__count"]
    return tuple(
        _additive_estimate(
            name, _row(by_key, (*key, index))["__count"], count_noise, suppress_below
        )
        for index, name in enumerate(bin_names(query.bin_edges), start=1)
    )


def _estimates(
    query: ValidatedQuery,
    row: Mapping[str, Any],
    noise: Mapping[str, _Noise],
    suppress_below: float | None,
    measured: Column | None,
) -> tuple[Estimate, ...]:
    """The values of one cell of one column; `row` and `noise` keyed by plain names."""
    statistic = query.statistic
    if statistic is Statistic.COUNT:
        return (_additive_estimate("count", row["__count"], noise["__count"], suppress_below),)
    if statistic is Statistic.SUM:
        return (_additive_estimate("sum", row["__sum"], noise["__sum"], None),)
    assert measured is not None
    assert measured.lower is not None
    assert measured.upper is not None
    if statistic is Statistic.MEAN:
        total = _additive_estimate(CENTRED_SUM, row["__sum"], noise["__sum"], None)
        count = _additive_estimate("count", row["__count"], noise["__count"], suppress_below)
        mean = _mean_estimate(measured, total.value, count.value, noise, count.suppressed)
        return (total, count, mean)
    quantiles = tuple(
        Estimate(
            name=output.name,
            value=float(row[output.column]),
            distribution=NoiseDistribution.RANK,
            scale=noise[output.column].scale,
            ci_low=float(measured.lower),
            ci_high=float(measured.upper),
            rank_error=noise[output.column].rank_error,
        )
        for output in _outputs(query)
        if output.column != "__count"
    )
    if not query.spec.quantile_count:
        return quantiles
    count = _additive_estimate("count", row["__count"], noise["__count"], suppress_below)
    return (*quantiles, count)


def _additive_estimate(
    name: str, raw: Any, noise: _Noise, suppress_below: float | None
) -> Estimate:
    if raw is None:
        raise RuntimeError(f"internal: OpenDP released no value for {name}")
    value = float(raw)
    return Estimate(
        name=name,
        value=value,
        distribution=noise.distribution,
        scale=noise.scale,
        ci_low=value - noise.half_width,
        ci_high=value + noise.half_width,
        suppressed=suppress_below is not None and value < suppress_below,
    )


def _mean_estimate(
    column: Column, total: float, count: float, noise: Mapping[str, _Noise], suppressed: bool
) -> Estimate:
    """centre + noisy centred sum / noisy count, post-processed; finite for every cell,
    empty ones included."""
    assert column.lower is not None
    assert column.upper is not None
    low, high = float(column.lower), float(column.upper)
    centre = float(mean_centre(column))
    value = min(max(centre + total / max(count, 1.0), low), high)
    sum_half = noise["__sum"].half_width_mean_part
    count_half = noise["__count"].half_width_mean_part
    ci_low, ci_high = low, high
    if count - count_half >= 1:
        # With both parts inside their 97.5% intervals (jointly >= 95%), the true mean lies
        # between the extreme ratios at the corners of the box (the denominator is > 0).
        ratios = [
            centre + (total + ds) / (count + dc)
            for ds in (-sum_half, sum_half)
            for dc in (-count_half, count_half)
        ]
        ci_low, ci_high = max(low, min(ratios)), min(high, max(ratios))
    return Estimate(
        name="mean",
        value=value,
        distribution=NoiseDistribution.NONE,
        scale=0.0,
        ci_low=min(ci_low, value),
        ci_high=max(ci_high, value),
        suppressed=suppressed,
    )
