"""From `npcs query` arguments to a QuerySpec: --by, --where, --from/--to.

Grammar (docs/analyst-guide.md):

    --by      COL[,COL...]       COL is a categorical/boolean column, or DATECOL:BUCKET
                                 with BUCKET one of year, fiscal_year, quarter, month
                                 (fiscal_year:M starts the fiscal year in month M)
    --where   CLAUSE[;CLAUSE...] CLAUSE is COL=V1,V2,...   (column in set of values)
                                         COL=LOW..HIGH     (numeric or date range, both
                                                            ends inclusive, one may be empty)
    --from/--to DATE             YYYY, YYYY-MM or YYYY-MM-DD, on the time bucket's column
                                 (or --date-column, or the dataset's main date column)
    --items   ITEM[,ITEM...]     names or globs of flags to count / items to average
                                 (coordinator/cli/query_items.py)

Never SQL: each clause becomes one structured filter that the node validates against the
public schema. Checks here use the partnership schema only to give early, clear errors.
"""

from __future__ import annotations

import calendar
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from uuid import UUID, uuid4

from coordinator.cli.query_items import ItemsArgumentError, parse_items
from coordinator.suggest import unknown
from privacy.budget import MAX_RHO_UNITS
from privacy.query import (
    DateRangeFilter,
    Filter,
    GroupBy,
    GroupByColumn,
    GroupByTime,
    InSetFilter,
    NumericRangeFilter,
    PrivacyLoss,
    QuerySpec,
    Statistic,
    TimeBucket,
)
from privacy.schema import PARTNERSHIP_SCHEMA, ColumnKind, Dataset
from privacy.validate import QueryLimits, QueryValidationError, validate_query

NODE_DECLARED_COLUMNS = frozenset(
    column.name
    for dataset in PARTNERSHIP_SCHEMA.datasets
    for column in dataset.columns
    if column.kind is ColumnKind.CATEGORICAL and column.domain is None
)
"""Columns whose public values each node declares itself (county)."""

PUBLIC_LIMITS = QueryLimits(max_rho_units_per_query=MAX_RHO_UNITS)
"""Schema-level limits; each node applies its own per-query cap on top."""

MAIN_DATE_COLUMN = {
    "incidents": "incident_date",
    "reports": "report_date",
    "workforce": "month",
    "safety_culture": "wave_date",
}


class QueryArgumentError(ValueError):
    """A command-line query argument that cannot be turned into a query."""


def _dataset(name: str) -> Dataset | None:
    try:
        return PARTNERSHIP_SCHEMA.dataset(name)
    except KeyError:
        return None


def parse_group_by(text: str | None, fiscal_year_start: int = 10) -> tuple[GroupBy, ...]:
    if not text:
        return ()
    groups: list[GroupBy] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        column, _, bucket_text = part.partition(":")
        if not bucket_text:
            groups.append(GroupByColumn(column=column))
            continue
        bucket_name, _, month_text = bucket_text.partition(":")
        try:
            bucket = TimeBucket(bucket_name)
        except ValueError as exc:
            choices = ", ".join(b.value for b in TimeBucket)
            raise QueryArgumentError(
                f"--by {part!r}: time bucket {bucket_name!r} is not one of {choices}"
            ) from exc
        start = fiscal_year_start
        if month_text:
            if not month_text.isdigit() or not 1 <= int(month_text) <= 12:
                raise QueryArgumentError(f"--by {part!r}: the fiscal year start month must be 1-12")
            start = int(month_text)
        groups.append(GroupByTime(column=column, bucket=bucket, fiscal_year_start_month=start))
    if sum(isinstance(g, GroupByTime) for g in groups) > 1:
        raise QueryArgumentError("--by may name at most one time bucket")
    return tuple(groups)


def parse_where(text: str | None, dataset: str) -> tuple[Filter, ...]:
    if not text:
        return ()
    schema = _dataset(dataset)
    filters: list[Filter] = []
    for clause in (c.strip() for c in text.split(";")):
        if not clause:
            continue
        column, separator, value_text = clause.partition("=")
        column, value_text = column.strip(), value_text.strip()
        if not separator or not column or not value_text:
            raise QueryArgumentError(
                f"--where clause {clause!r} must be COLUMN=V1,V2 or COLUMN=LOW..HIGH"
            )
        kind = _column_kind(schema, column, clause)
        if ".." in value_text:
            filters.append(_range_filter(column, value_text, kind, clause))
        else:
            filters.append(_set_filter(column, value_text, kind, clause))
    return tuple(filters)


def _column_kind(schema: Dataset | None, column: str, clause: str) -> ColumnKind | None:
    if schema is None:
        return None
    if not schema.has_column(column):
        raise QueryArgumentError(
            f"--where clause {clause!r}: "
            + unknown(f"column of {schema.name}", column, queryable_columns(schema))
        )
    return schema.column(column).kind


def _range_filter(column: str, text: str, kind: ColumnKind | None, clause: str) -> Filter:
    low_text, _, high_text = (part.strip() for part in text.partition(".."))
    if kind is ColumnKind.DATE or (kind is None and _looks_like_date(low_text or high_text)):
        if not low_text or not high_text:
            raise QueryArgumentError(f"--where clause {clause!r}: a date range needs both ends")
        return DateRangeFilter(
            column=column,
            start=parse_date(low_text, end=False, what=clause),
            end=parse_date(high_text, end=True, what=clause),
        )
    if kind is not None and kind not in (ColumnKind.INTEGER, ColumnKind.FLOAT):
        raise QueryArgumentError(
            f"--where clause {clause!r}: {column} is {kind.value}, a range needs a number "
            "or date column; list values instead (COLUMN=A,B)"
        )
    low, high = _number(low_text, clause), _number(high_text, clause)
    if low is None and high is None:
        raise QueryArgumentError(f"--where clause {clause!r}: give at least one end")
    if low is not None and high is not None and low > high:
        raise QueryArgumentError(f"--where clause {clause!r}: LOW is larger than HIGH")
    return NumericRangeFilter(column=column, low=low, high=high)


def _set_filter(column: str, text: str, kind: ColumnKind | None, clause: str) -> Filter:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if kind is ColumnKind.BOOLEAN:
        flags: list[str | bool] = []
        for value in values:
            if value.lower() not in ("true", "false"):
                raise QueryArgumentError(
                    f"--where clause {clause!r}: {column} is a yes/no flag: use true or false"
                )
            flags.append(value.lower() == "true")
        return InSetFilter(column=column, values=tuple(flags))
    if kind in (ColumnKind.INTEGER, ColumnKind.FLOAT, ColumnKind.DATE, ColumnKind.IDENTIFIER):
        assert kind is not None
        raise QueryArgumentError(
            f"--where clause {clause!r}: {column} is {kind.value}; use a range LOW..HIGH"
            if kind is not ColumnKind.IDENTIFIER
            else f"--where clause {clause!r}: identifier columns cannot be filtered"
        )
    return InSetFilter(column=column, values=tuple(values))


def _number(text: str, clause: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise QueryArgumentError(f"--where clause {clause!r}: {text!r} is not a number") from exc


def _looks_like_date(text: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", text))


def parse_date(text: str, *, end: bool, what: str) -> date:
    """YYYY, YYYY-MM or YYYY-MM-DD; a partial date means its first (or, for an end, last) day."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}", text):
            return date(int(text), 12, 31) if end else date(int(text), 1, 1)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            year, month = int(text[:4]), int(text[5:])
            day = calendar.monthrange(year, month)[1] if end else 1
            return date(year, month, day)
        return date.fromisoformat(text)
    except ValueError as exc:
        raise QueryArgumentError(
            f"{what}: {text!r} is not a date (use YYYY, YYYY-MM or YYYY-MM-DD)"
        ) from exc


def date_range_filter(
    dataset: str,
    group_by: tuple[GroupBy, ...],
    date_from: str | None,
    date_to: str | None,
    date_column: str | None,
) -> DateRangeFilter | None:
    """The --from/--to filter, on the time bucket's column unless --date-column says."""
    time_groups = [g for g in group_by if isinstance(g, GroupByTime)]
    if date_from is None and date_to is None:
        if time_groups:
            raise QueryArgumentError(
                f"grouping by {time_groups[0].column}:{time_groups[0].bucket.value} needs "
                "--from and --to (the buckets come from the query's own date range)"
            )
        return None
    if date_from is None or date_to is None:
        raise QueryArgumentError("give both --from and --to (a date range needs both ends)")
    column = date_column or (time_groups[0].column if time_groups else None)
    column = column or MAIN_DATE_COLUMN.get(dataset)
    if column is None:
        raise QueryArgumentError("--from/--to: name the date column with --date-column")
    start = parse_date(date_from, end=False, what="--from")
    end = parse_date(date_to, end=True, what="--to")
    if start > end:
        raise QueryArgumentError(f"--from {date_from} is after --to {date_to}")
    return DateRangeFilter(column=column, start=start, end=end)


def parse_privacy(rho: str | None, accuracy: float | None) -> PrivacyLoss:
    if (rho is None) == (accuracy is None):
        raise QueryArgumentError(
            "give exactly one of --rho R (privacy loss to spend) or --accuracy A (target "
            "half-width of each value's 95% interval)"
        )
    if rho is not None:
        try:
            value = Decimal(rho)
        except InvalidOperation as exc:
            raise QueryArgumentError(f"--rho {rho!r} is not a number") from exc
        if not value.is_finite() or value <= 0:
            raise QueryArgumentError(f"--rho must be a positive number, got {rho}")
        return PrivacyLoss(rho=value)
    assert accuracy is not None
    if not accuracy > 0 or accuracy == float("inf"):
        raise QueryArgumentError(f"--accuracy must be a positive number, got {accuracy}")
    return PrivacyLoss(accuracy=accuracy)


def parse_quantiles(text: str | None) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise QueryArgumentError(f"--quantiles {text!r}: give numbers like 0.5,0.9") from exc
    if not all(0 < v < 1 for v in values):
        raise QueryArgumentError("--quantiles must be probabilities strictly between 0 and 1")
    return values


def build_query(
    *,
    statistic: str,
    dataset: str,
    column: str | None,
    by: str | None = None,
    where: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    date_column: str | None = None,
    fiscal_year_start: int = 10,
    rho: str | None = None,
    accuracy: float | None = None,
    quantiles: str | None = None,
    items: str | None = None,
    value_intervals: bool = False,
    purpose: str,
    query_id: UUID | None = None,
) -> QuerySpec:
    """The QuerySpec the command line describes; QueryArgumentError names what is wrong."""
    try:
        kind = Statistic(statistic)
    except ValueError as exc:
        choices = ", ".join(s.value for s in Statistic)
        raise QueryArgumentError(f"statistic {statistic!r} is not one of {choices}") from exc
    if _dataset(dataset) is None:
        raise QueryArgumentError(
            unknown("dataset", dataset, PARTNERSHIP_SCHEMA.dataset_names) + " (see `npcs schema`)"
        )
    item_names = _items(items, dataset, kind)
    if item_names and column:
        raise QueryArgumentError("--items measures its items: leave out COLUMN")
    if kind is Statistic.COUNT and column:
        raise QueryArgumentError("count takes no COLUMN: it counts rows")
    if kind is not Statistic.COUNT and not column and not item_names:
        raise QueryArgumentError(f"{kind.value} needs a COLUMN to measure (or --items)")
    if not purpose.strip():
        raise QueryArgumentError("--purpose must say why you ask (it is kept in every ledger)")
    quantile_values = parse_quantiles(quantiles)
    if kind is Statistic.QUANTILES and not quantile_values:
        quantile_values = (0.5,)
    if value_intervals and kind is not Statistic.QUANTILES:
        raise QueryArgumentError("--value-intervals applies to quantiles only")
    group_by = parse_group_by(by, fiscal_year_start)
    filters = list(parse_where(where, dataset))
    date_filter = date_range_filter(dataset, group_by, date_from, date_to, date_column)
    if date_filter is not None:
        filters.append(date_filter)
    spec = QuerySpec(
        query_id=query_id or uuid4(),
        dataset=dataset,
        statistic=kind,
        column=column or None,
        quantiles=quantile_values,
        items=item_names,
        group_by=group_by,
        filters=tuple(filters),
        privacy=parse_privacy(rho, accuracy),
        purpose=purpose.strip(),
        quantile_count=value_intervals,
    )
    check_against_public_schema(spec)
    return spec


def _items(text: str | None, dataset: str, statistic: Statistic) -> tuple[str, ...]:
    schema = _dataset(dataset)
    assert schema is not None
    try:
        return parse_items(text, schema, statistic)
    except ItemsArgumentError as exc:
        raise QueryArgumentError(str(exc)) from exc


def check_against_public_schema(spec: QuerySpec) -> None:
    """Refuse, before any node is contacted, a query the partnership schema already rules out.

    This is the nodes' own validation (public schema only, no data). Queries naming a
    node-declared domain (county) are left to each node, which knows its own values; the
    per-query rho cap is node policy and is checked there too.
    """
    check_names(spec)
    named = {spec.column} | {g.column for g in spec.group_by} | {f.column for f in spec.filters}
    if named & NODE_DECLARED_COLUMNS:
        return
    try:
        validate_query(spec, PARTNERSHIP_SCHEMA, PUBLIC_LIMITS)
    except QueryValidationError as exc:
        raise QueryArgumentError(str(exc)) from exc


def queryable_columns(dataset: Dataset) -> tuple[str, ...]:
    return tuple(c.name for c in dataset.columns if c.kind is not ColumnKind.IDENTIFIER)


def check_names(spec: QuerySpec) -> None:
    """Unknown column and value names, with the closest known one suggested."""
    dataset = _dataset(spec.dataset)
    if dataset is None:
        return
    columns = queryable_columns(dataset)
    named = [("COLUMN", spec.column)] if spec.column else []
    named += [("--by", g.column) for g in spec.group_by]
    named += [("--where/--from", f.column) for f in spec.filters]
    for option, name in named:
        if name is not None and name not in columns:
            raise QueryArgumentError(
                f"{option}: {unknown(f'column of {dataset.name}', name, columns)} "
                "(see `npcs schema " + dataset.name + "`)"
            )
    for query_filter in spec.filters:
        domain = dataset.column(query_filter.column).domain
        if not isinstance(query_filter, InSetFilter) or domain is None:
            continue
        for value in query_filter.values:
            if isinstance(value, str) and value not in domain:
                raise QueryArgumentError(
                    f"--where {query_filter.column}: "
                    + unknown(f"value of {query_filter.column}", value, domain)
                )
