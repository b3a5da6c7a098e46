"""Long on purpose: every check a query must pass, in one place, read as one policy.

Query validation: a QuerySpec checked against the public schema and node policy.

Validation reads only the request, the schema (with the node's declared domains) and
the node's limits; it never touches data, so whether and how a query is refused reveals
nothing about any record. Every refusal is a `QueryValidationError` naming the offending
field with a dotted path (``"filters[2].values"``, ``"privacy.rho"``) and saying what to
do. The result, `ValidatedQuery`, carries everything the planner needs: the dataset,
the public group keys (schema domains and the time buckets of the query's date range),
the normalised filters, histogram edges, the items of a multi-item query and the
requested privacy loss.

Pure: standard library and pydantic only (the coordinator may validate before sending).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise, product

from privacy.answer_size import estimates_per_cell, release_bytes_bound
from privacy.budget import MAX_RHO_UNITS, BudgetValueError, format_rho, rho_to_units_ceil
from privacy.query import (
    ITEM_GROUP_COLUMN,
    DateRangeFilter,
    GroupByColumn,
    GroupByTime,
    InSetFilter,
    NumericRangeFilter,
    QuerySpec,
    Statistic,
)
from privacy.schema import Column, ColumnKind, Dataset, Schema
from privacy.text import unsafe_character
from privacy.timebuckets import bucket_count, buckets_between

MAX_GROUP_BY = 4
"""Deepest group-by a query may ask for (cells are limited separately)."""
MAX_QUANTILES = 32
MAX_ITEMS = 64
"""Most items one multi-item query may count or average."""
DEFAULT_HISTOGRAM_BINS = 10
"""Default histogram: at most this many equal-width bins across the column's bounds."""
MAX_HISTOGRAM_EDGES = 1001
MIN_ACCURACY = 1.0
"""Smallest 95% half-width a query may ask for (released counts are integers)."""

KeyValue = str | bool | int
"""A group-key value as the node computes it: a domain code, a flag or a bucket code."""


class QueryValidationError(ValueError):
    """A query refused before any data is read; `field` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, kw_only=True)
class QueryLimits:
    """Node policy limits that validation enforces."""

    max_cells: int = 10_000
    max_filters: int = 16
    max_filter_values: int = 256
    max_rho_units_per_query: int
    max_purpose_chars: int = 500
    max_release_bytes: int = 3 * 2**19
    """Largest answer (Release bytes) the node may charge for: it must reach the analyst
    and fit in one audit page. Nodes derive it from their message limit
    (npcs.transport.MAX_RELEASE_BYTES); this default is that value."""


@dataclass(frozen=True)
class GroupKeys:
    """One group-by dimension with its public keys.

    `output_name` is the public name in the release (the column, or "column:bucket");
    `values` are what the node computes per row; `labels` are the released key texts.
    """

    output_name: str
    column: str
    values: tuple[KeyValue, ...]
    labels: tuple[str, ...]
    time_bucket: GroupByTime | None = None


@dataclass(frozen=True)
class InSet:
    column: str
    values: tuple[str | bool, ...]


@dataclass(frozen=True)
class DateRange:
    column: str
    start: date
    end: date


@dataclass(frozen=True)
class NumericRange:
    column: str
    low: float | None
    high: float | None


RowFilter = InSet | DateRange | NumericRange


@dataclass(frozen=True)
class ValidatedQuery:
    """A query that passed validation, with its public keys resolved."""

    spec: QuerySpec
    dataset: Dataset
    measured: Column | None
    groups: tuple[GroupKeys, ...]
    filters: tuple[RowFilter, ...]
    bin_edges: tuple[float, ...]
    """Histogram edges: bins [e0, e1), [e1, e2), ..., [e(n-1), en] (last one closed)."""
    requested_rho: Decimal | None
    requested_rho_units: int | None
    accuracy: float | None
    max_rho_units: int
    cells: int
    """Released cells: group keys x histogram bins x items."""
    items: tuple[Column, ...] = ()
    """Multi-item query: the flags counted or the bounded items averaged, in query order."""

    @property
    def statistic(self) -> Statistic:
        return self.spec.statistic

    @property
    def group_columns(self) -> tuple[str, ...]:
        """The release's key columns: the group-bys, then the item for a multi-item query."""
        names = tuple(group.output_name for group in self.groups)
        return (*names, ITEM_GROUP_COLUMN) if self.items else names

    def cell_keys(self) -> tuple[tuple[KeyValue, ...], ...]:
        """Every group key, in release order (cartesian product of the dimensions)."""
        return tuple(product(*(group.values for group in self.groups)))


def validate_query(spec: QuerySpec, schema: Schema, limits: QueryLimits) -> ValidatedQuery:
    """Check `spec` against the public schema and `limits`; never reads data."""
    dataset = _dataset(spec, schema)
    items = _items(spec, dataset)
    measured = None if items else _measured_column(spec, dataset)
    _check_quantiles(spec)
    bin_edges = _bin_edges(spec, measured)
    filters = _filters(spec, dataset, limits)
    groups = _groups(spec, dataset, filters)
    cells = _count_cells(groups, bin_edges, len(items), limits)
    _check_release_size(spec, groups, items, cells, limits)
    rho, rho_units, accuracy = _privacy(spec, limits)
    _check_purpose(spec.purpose, limits)
    return ValidatedQuery(
        spec=spec,
        dataset=dataset,
        measured=measured,
        groups=groups,
        filters=filters,
        bin_edges=bin_edges,
        requested_rho=rho,
        requested_rho_units=rho_units,
        accuracy=accuracy,
        max_rho_units=limits.max_rho_units_per_query,
        cells=cells,
        items=items,
    )


# ---------------------------------------------------------------------------
# dataset and measured column


def _dataset(spec: QuerySpec, schema: Schema) -> Dataset:
    try:
        return schema.dataset(spec.dataset)
    except KeyError:
        known = ", ".join(schema.dataset_names)
        raise QueryValidationError(
            "dataset", f"unknown dataset {spec.dataset!r}; choose one of: {known}"
        ) from None


def _column(dataset: Dataset, name: str, field: str) -> Column:
    try:
        column = dataset.column(name)
    except KeyError:
        raise QueryValidationError(
            field,
            f"unknown column {name!r} in dataset {dataset.name!r}; "
            f"see the schema (Describe) for its columns",
        ) from None
    if column.kind is ColumnKind.IDENTIFIER:
        raise QueryValidationError(
            field, f"column {name!r} is an identifier and cannot be queried, grouped or filtered"
        )
    return column


def _measured_column(spec: QuerySpec, dataset: Dataset) -> Column | None:
    if spec.statistic is Statistic.COUNT:
        if spec.column is not None:
            raise QueryValidationError(
                "column", "a count takes no column; leave it empty (filters select rows)"
            )
        return None
    if spec.column is None:
        raise QueryValidationError(
            "column", f"statistic {spec.statistic.value!r} needs a numeric column to measure"
        )
    column = _column(dataset, spec.column, "column")
    if not column.is_numeric or column.lower is None or column.upper is None:
        raise QueryValidationError(
            "column",
            f"statistic {spec.statistic.value!r} needs a numeric (integer or float) column "
            f"with bounds; {column.name!r} is {column.kind.value}",
        )
    return column


def _items(spec: QuerySpec, dataset: Dataset) -> tuple[Column, ...]:
    """The items of a multi-item query: flags to count, or bounded items to average."""
    if not spec.items:
        return ()
    if spec.statistic not in (Statistic.COUNT, Statistic.MEAN):
        raise QueryValidationError(
            "items",
            f"items apply to count (boolean flags) or mean (bounded numeric items), not "
            f"{spec.statistic.value!r}; ask one column at a time",
        )
    if spec.column is not None:
        raise QueryValidationError(
            "column", "a multi-item query measures its items; leave the column empty"
        )
    if len(spec.items) > MAX_ITEMS:
        raise QueryValidationError(
            "items", f"at most {MAX_ITEMS} items per query, got {len(spec.items)}"
        )
    items: list[Column] = []
    for index, name in enumerate(spec.items):
        field = f"items[{index}]"
        if name in spec.items[:index]:
            raise QueryValidationError(field, f"{name!r} is listed twice")
        column = _column(dataset, name, field)
        if spec.statistic is Statistic.COUNT and column.kind is not ColumnKind.BOOLEAN:
            raise QueryValidationError(
                field,
                f"a multi-item count counts boolean flags; {name!r} is {column.kind.value} "
                "(average numeric items with mean)",
            )
        if spec.statistic is Statistic.MEAN:
            _check_mean_item(column, items[0] if items else column, field)
        items.append(column)
    return tuple(items)


def _check_mean_item(column: Column, first: Column, field: str) -> None:
    if not column.is_numeric or column.lower is None or column.upper is None:
        raise QueryValidationError(
            field,
            f"a multi-item mean averages bounded numeric items; {column.name!r} is "
            f"{column.kind.value}",
        )
    if (column.lower, column.upper) != (first.lower, first.upper):
        raise QueryValidationError(
            field,
            f"items of one mean share their bounds; {column.name!r} is "
            f"[{column.lower:g}, {column.upper:g}] but {first.name!r} is "
            f"[{first.lower:g}, {first.upper:g}]; ask them in separate queries",
        )


def _check_quantiles(spec: QuerySpec) -> None:
    if spec.statistic is not Statistic.QUANTILES:
        if spec.quantiles:
            raise QueryValidationError(
                "quantiles", "quantile probabilities apply only to the quantiles statistic"
            )
        if spec.quantile_count:
            raise QueryValidationError(
                "quantile_count", "a quantile count applies only to the quantiles statistic"
            )
        return
    probabilities = spec.quantiles
    if not probabilities:
        raise QueryValidationError(
            "quantiles", "give at least one probability in (0, 1), e.g. [0.5] for the median"
        )
    if len(probabilities) > MAX_QUANTILES:
        raise QueryValidationError(
            "quantiles",
            f"at most {MAX_QUANTILES} probabilities per query, got {len(probabilities)}",
        )
    for probability in probabilities:
        if not (math.isfinite(probability) and 0 < probability < 1):
            raise QueryValidationError(
                "quantiles", f"probability {probability} is not strictly between 0 and 1"
            )
    if any(b <= a for a, b in pairwise(probabilities)):
        raise QueryValidationError(
            "quantiles", "probabilities must be strictly increasing (sorted, no duplicates)"
        )


def _bin_edges(spec: QuerySpec, measured: Column | None) -> tuple[float, ...]:
    if spec.statistic is not Statistic.HISTOGRAM:
        if spec.bins:
            raise QueryValidationError("bins", "bin edges apply only to the histogram statistic")
        return ()
    assert measured is not None
    assert measured.lower is not None
    assert measured.upper is not None
    if not spec.bins:
        return default_bin_edges(measured)
    edges = spec.bins
    if len(edges) < 2:
        raise QueryValidationError("bins", "give at least two edges (one bin), or none")
    if len(edges) > MAX_HISTOGRAM_EDGES:
        raise QueryValidationError("bins", f"at most {MAX_HISTOGRAM_EDGES} edges per histogram")
    if not all(math.isfinite(edge) for edge in edges):
        raise QueryValidationError("bins", "bin edges must be finite numbers")
    if any(b <= a for a, b in pairwise(edges)):
        raise QueryValidationError("bins", "bin edges must be strictly increasing")
    return tuple(float(edge) for edge in edges)


def default_bin_edges(column: Column) -> tuple[float, ...]:
    """Equal-width bins over the column's public bounds (whole-number widths for integers)."""
    assert column.lower is not None
    assert column.upper is not None
    low, high = column.lower, column.upper
    if column.kind is ColumnKind.INTEGER:
        values = int(high) - int(low) + 1
        width = math.ceil(values / DEFAULT_HISTOGRAM_BINS)
        edges = list(range(int(low), int(high) + 1, width))
        edges.append(int(high) + 1 if edges[-1] + width > high else edges[-1] + width)
        return tuple(float(edge) for edge in edges)
    step = (high - low) / DEFAULT_HISTOGRAM_BINS
    return (*tuple(low + step * index for index in range(DEFAULT_HISTOGRAM_BINS)), high)


# ---------------------------------------------------------------------------
# filters


def _filters(spec: QuerySpec, dataset: Dataset, limits: QueryLimits) -> tuple[RowFilter, ...]:
    if len(spec.filters) > limits.max_filters:
        raise QueryValidationError(
            "filters", f"at most {limits.max_filters} filters per query, got {len(spec.filters)}"
        )
    result: list[RowFilter] = []
    date_ranged: set[str] = set()
    for index, spec_filter in enumerate(spec.filters):
        field = f"filters[{index}]"
        column = _column(dataset, spec_filter.column, f"{field}.column")
        if isinstance(spec_filter, InSetFilter):
            result.append(_in_set(spec_filter, column, field, limits))
        elif isinstance(spec_filter, DateRangeFilter):
            if column.kind is not ColumnKind.DATE:
                raise QueryValidationError(
                    f"{field}.column",
                    f"a date range needs a date column; {column.name!r} is {column.kind.value}",
                )
            if spec_filter.start > spec_filter.end:
                raise QueryValidationError(
                    f"{field}.end",
                    f"the range ends ({spec_filter.end}) before it starts ({spec_filter.start})",
                )
            if column.name in date_ranged:
                raise QueryValidationError(
                    field, f"only one date range per column; merge the ranges on {column.name!r}"
                )
            date_ranged.add(column.name)
            result.append(DateRange(column.name, spec_filter.start, spec_filter.end))
        else:
            result.append(_numeric_range(spec_filter, column, field))
    return tuple(result)


def _in_set(spec_filter: InSetFilter, column: Column, field: str, limits: QueryLimits) -> InSet:
    values = spec_filter.values
    if not values:
        raise QueryValidationError(f"{field}.values", "give at least one value to keep")
    if len(values) > limits.max_filter_values:
        raise QueryValidationError(
            f"{field}.values",
            f"at most {limits.max_filter_values} values per filter, got {len(values)}",
        )
    if column.kind is ColumnKind.BOOLEAN:
        flags = tuple(_as_flag(value, f"{field}.values") for value in values)
        return InSet(column.name, tuple(dict.fromkeys(flags)))
    if column.kind is not ColumnKind.CATEGORICAL:
        raise QueryValidationError(
            f"{field}.column",
            f"a value-set filter needs a categorical or boolean column; {column.name!r} is "
            f"{column.kind.value} (use a numeric or date range)",
        )
    domain = _declared_domain(column, f"{field}.column")
    for value in values:
        if not isinstance(value, str) or value not in domain:
            raise QueryValidationError(
                f"{field}.values",
                f"unknown value {value!r} for column {column.name!r}; allowed: {_preview(domain)}",
            )
    return InSet(column.name, tuple(dict.fromkeys(values)))


def _as_flag(value: str | bool, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise QueryValidationError(
        field, f"unknown value {value!r} for a boolean column; use true/false"
    )


def _numeric_range(spec_filter: NumericRangeFilter, column: Column, field: str) -> NumericRange:
    if not column.is_numeric:
        raise QueryValidationError(
            f"{field}.column",
            f"a numeric range needs an integer or float column; {column.name!r} is "
            f"{column.kind.value}",
        )
    low, high = spec_filter.low, spec_filter.high
    if low is None and high is None:
        raise QueryValidationError(field, "give low, high or both")
    for name, bound in (("low", low), ("high", high)):
        if bound is not None and not math.isfinite(bound):
            raise QueryValidationError(f"{field}.{name}", f"{name} must be a finite number")
    if low is not None and high is not None and low > high:
        raise QueryValidationError(f"{field}.high", f"high ({high}) is below low ({low})")
    return NumericRange(column.name, low, high)


def _declared_domain(column: Column, field: str) -> tuple[str, ...]:
    if column.domain is None:
        raise QueryValidationError(
            field,
            f"this node declared no public values for {column.name!r} (e.g. no county list), "
            "so it cannot be grouped or filtered here",
        )
    return column.domain


def _preview(values: tuple[str, ...], limit: int = 12) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


# ---------------------------------------------------------------------------
# group-by


def _groups(
    spec: QuerySpec, dataset: Dataset, filters: tuple[RowFilter, ...]
) -> tuple[GroupKeys, ...]:
    if len(spec.group_by) > MAX_GROUP_BY:
        raise QueryValidationError(
            "group_by", f"at most {MAX_GROUP_BY} group-by columns, got {len(spec.group_by)}"
        )
    groups: list[GroupKeys] = []
    for index, group in enumerate(spec.group_by):
        field = f"group_by[{index}]"
        column = _column(dataset, group.column, f"{field}.column")
        if isinstance(group, GroupByColumn):
            groups.append(_column_keys(column, field))
        else:
            groups.append(_time_keys(group, column, field, filters))
        if spec.column is not None and group.column == spec.column:
            raise QueryValidationError(f"{field}.column", "cannot group by the measured column")
        if group.column in spec.items:
            raise QueryValidationError(f"{field}.column", "cannot group by one of the items")
    names = [group.output_name for group in groups]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise QueryValidationError(f"group_by[{index}]", f"{name!r} is grouped twice")
    return tuple(groups)


def _column_keys(column: Column, field: str) -> GroupKeys:
    if column.kind is ColumnKind.BOOLEAN:
        return GroupKeys(column.name, column.name, (False, True), ("false", "true"))
    if column.kind is not ColumnKind.CATEGORICAL:
        hint = " (use a time bucket)" if column.kind is ColumnKind.DATE else ""
        raise QueryValidationError(
            f"{field}.column",
            f"can only group by categorical or boolean columns; {column.name!r} is "
            f"{column.kind.value}{hint}",
        )
    domain = _declared_domain(column, f"{field}.column")
    return GroupKeys(column.name, column.name, domain, domain)


def _time_keys(
    group: GroupByTime, column: Column, field: str, filters: tuple[RowFilter, ...]
) -> GroupKeys:
    if column.kind is not ColumnKind.DATE:
        raise QueryValidationError(
            f"{field}.column",
            f"a time bucket needs a date column; {column.name!r} is {column.kind.value}",
        )
    ranges = [f for f in filters if isinstance(f, DateRange) and f.column == column.name]
    if not ranges:
        raise QueryValidationError(
            field,
            f"grouping {column.name!r} by {group.bucket.value} needs a date range filter on "
            f"{column.name!r} with both a start and an end (the buckets come from that range)",
        )
    span = ranges[0]
    output_name = f"{column.name}:{group.bucket.value}"
    # Checked before listing the buckets, so a huge range is refused without building it.
    count = bucket_count(group.bucket, span.start, span.end, group.fiscal_year_start_month)
    if count > MAX_TIME_BUCKETS:
        raise QueryValidationError(
            field, f"{count} {group.bucket.value} buckets in the date range; narrow the range"
        )
    buckets = buckets_between(group.bucket, span.start, span.end, group.fiscal_year_start_month)
    return GroupKeys(
        output_name,
        column.name,
        tuple(b.code for b in buckets),
        tuple(b.label for b in buckets),
        time_bucket=group,
    )


MAX_TIME_BUCKETS = 100_000


def _count_cells(
    groups: tuple[GroupKeys, ...], bin_edges: tuple[float, ...], items: int, limits: QueryLimits
) -> int:
    cells = 1
    sizes = [len(group.values) for group in groups] + [max(len(bin_edges) - 1, 1), max(items, 1)]
    for size in sizes:
        cells *= size
        if cells > limits.max_cells:
            break
    if cells > limits.max_cells:
        raise QueryValidationError(
            "group_by",
            f"the query asks for more than {limits.max_cells} cells (group keys x bins x "
            "items); "
            "group by fewer columns, narrow the date range or use coarser buckets",
        )
    return cells


def _check_release_size(
    spec: QuerySpec,
    groups: tuple[GroupKeys, ...],
    items: tuple[Column, ...],
    cells: int,
    limits: QueryLimits,
) -> None:
    per_cell = estimates_per_cell(spec.statistic, len(spec.quantiles), spec.quantile_count)
    labels = [group.labels for group in groups]
    if items:
        labels.append(tuple(item.name for item in items))
    bound = release_bytes_bound(labels, cells, per_cell)
    if bound > limits.max_release_bytes:
        raise QueryValidationError(
            "group_by",
            f"the answer could be up to {bound:,} bytes ({cells:,} cells x {per_cell} "
            f"values), over this node's limit of {limits.max_release_bytes:,} bytes per "
            "answer; ask for fewer quantiles or items, group by fewer columns, narrow the date "
            "range or use coarser buckets",
        )


# ---------------------------------------------------------------------------
# privacy loss and purpose


def _privacy(
    spec: QuerySpec, limits: QueryLimits
) -> tuple[Decimal | None, int | None, float | None]:
    rho, accuracy = spec.privacy.rho, spec.privacy.accuracy
    if (rho is None) == (accuracy is None):
        raise QueryValidationError(
            "privacy", "give exactly one of rho (privacy loss) or accuracy (95% half-width)"
        )
    if rho is not None:
        return rho, _rho_units(rho, limits), None
    assert accuracy is not None
    if not (math.isfinite(accuracy) and accuracy > 0):
        raise QueryValidationError(
            "privacy.accuracy", f"accuracy must be a positive finite number, got {accuracy}"
        )
    if accuracy < MIN_ACCURACY:
        raise QueryValidationError(
            "privacy.accuracy",
            f"accuracy must be at least {MIN_ACCURACY:g}: counts and integer sums move in "
            "whole steps, so a narrower 95% interval cannot be promised",
        )
    if spec.statistic is Statistic.QUANTILES:
        raise QueryValidationError(
            "privacy.accuracy",
            "quantiles are released by rank, with no half-width target; give rho instead",
        )
    return None, None, accuracy


def _rho_units(rho: Decimal, limits: QueryLimits) -> int:
    if not rho.is_finite():
        raise QueryValidationError("privacy.rho", f"rho must be a finite number, got {rho}")
    if rho <= 0:
        raise QueryValidationError("privacy.rho", f"rho must be positive, got {rho}")
    # Compare against the cap before converting: a huge rho would overflow the exact
    # conversion (Decimal quantize), and anything over the cap is refused anyway.
    over_cap = rho > Decimal(limits.max_rho_units_per_query).scaleb(-6)
    units = limits.max_rho_units_per_query + 1
    if not over_cap:
        try:
            units = rho_to_units_ceil(rho)
        except (BudgetValueError, ArithmeticError):
            units = MAX_RHO_UNITS + 1
    if units > limits.max_rho_units_per_query:
        raise QueryValidationError(
            "privacy.rho",
            f"rho {rho} is over this node's per-query cap of "
            f"{format_rho(limits.max_rho_units_per_query)}; ask for less",
        )
    return units


def _check_purpose(purpose: str, limits: QueryLimits) -> None:
    if not purpose.strip():
        raise QueryValidationError("purpose", "say briefly why you ask (it is kept in the ledger)")
    if len(purpose) > limits.max_purpose_chars:
        raise QueryValidationError(
            "purpose",
            f"purpose is {len(purpose)} characters; keep it under {limits.max_purpose_chars}",
        )
    unsafe = unsafe_character(purpose)
    if unsafe is not None:
        position, code = unsafe
        raise QueryValidationError(
            "purpose",
            f"purpose has the control or text-direction character {code} at position "
            f"{position}; write it as one line of plain text",
        )
