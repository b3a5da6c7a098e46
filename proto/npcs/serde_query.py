"""Queries on the wire: Query, QueryRequest (with its SignedRequest), Preview.

Parsing raises `WireError(field, message)` naming the first field that is wrong (a
dotted path such as ``query.filters[1].date_range.end``).

Signing note: the analyst signs `QuerySpec.canonical_bytes()` of the query *as the node
will parse it*. `normalize_spec` gives exactly that (for instance an in-set value True
travels as "true" and comes back as True), so a client signs `normalize_spec(spec)`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from uuid import UUID

from pydantic import ValidationError

from kernel.messages import ExpectedValue, PreviewResult, QueryCall
from kernel.signing import SignedRequest
from npcs.errors import WireError
from npcs.v1 import node_pb2 as pb
from privacy.budget import BudgetValueError, format_rho, parse_rho_text
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

DEFAULT_FISCAL_YEAR_START_MONTH = 10
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE, _FALSE = "true", "false"

# ---------------------------------------------------------------------------------
# Enums

_STATISTIC_TO_PROTO: dict[Statistic, int] = {
    Statistic.COUNT: pb.STATISTIC_COUNT,
    Statistic.SUM: pb.STATISTIC_SUM,
    Statistic.MEAN: pb.STATISTIC_MEAN,
    Statistic.QUANTILES: pb.STATISTIC_QUANTILES,
    Statistic.HISTOGRAM: pb.STATISTIC_HISTOGRAM,
}
_STATISTIC_FROM_PROTO = {number: statistic for statistic, number in _STATISTIC_TO_PROTO.items()}

_BUCKET_TO_PROTO: dict[TimeBucket, int] = {
    TimeBucket.YEAR: pb.TIME_BUCKET_YEAR,
    TimeBucket.FISCAL_YEAR: pb.TIME_BUCKET_FISCAL_YEAR,
    TimeBucket.QUARTER: pb.TIME_BUCKET_QUARTER,
    TimeBucket.MONTH: pb.TIME_BUCKET_MONTH,
}
_BUCKET_FROM_PROTO = {number: bucket for bucket, number in _BUCKET_TO_PROTO.items()}


# ---------------------------------------------------------------------------------
# Queries: domain -> proto


def query_to_proto(spec: QuerySpec) -> pb.Query:
    message = pb.Query(
        query_id=str(spec.query_id),
        dataset=spec.dataset,
        statistic=_STATISTIC_TO_PROTO[spec.statistic],  # type: ignore[arg-type]
        quantiles=list(spec.quantiles),
        bins=list(spec.bins),
        items=list(spec.items),
        quantile_count=spec.quantile_count,
        group_by=[_group_by_to_proto(group) for group in spec.group_by],
        filters=[_filter_to_proto(item) for item in spec.filters],
        purpose=spec.purpose,
    )
    if spec.column is not None:
        message.column = spec.column
    if spec.privacy.rho is not None:
        message.rho = str(spec.privacy.rho)
    elif spec.privacy.accuracy is not None:
        message.accuracy = spec.privacy.accuracy
    return message


def _group_by_to_proto(group: GroupBy) -> pb.GroupBy:
    if isinstance(group, GroupByColumn):
        return pb.GroupBy(column=pb.GroupByColumn(column=group.column))
    return pb.GroupBy(
        time=pb.GroupByTime(
            column=group.column,
            bucket=_BUCKET_TO_PROTO[group.bucket],  # type: ignore[arg-type]
            fiscal_year_start_month=group.fiscal_year_start_month,
        )
    )


def _filter_to_proto(item: Filter) -> pb.Filter:
    if isinstance(item, InSetFilter):
        values = [_in_set_value_to_text(value) for value in item.values]
        return pb.Filter(in_set=pb.InSetFilter(column=item.column, values=values))
    if isinstance(item, DateRangeFilter):
        return pb.Filter(
            date_range=pb.DateRangeFilter(
                column=item.column, start=item.start.isoformat(), end=item.end.isoformat()
            )
        )
    numeric = pb.NumericRangeFilter(column=item.column)
    if item.low is not None:
        numeric.low = item.low
    if item.high is not None:
        numeric.high = item.high
    return pb.Filter(numeric_range=numeric)


def _in_set_value_to_text(value: str | bool) -> str:
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    return value


# ---------------------------------------------------------------------------------
# Queries: proto -> domain


def query_from_proto(message: pb.Query, *, path: str = "query") -> QuerySpec:
    """Parse a Query message; WireError names the first field that is wrong."""
    query_id = _parse_uuid(message.query_id, f"{path}.query_id")
    statistic = _STATISTIC_FROM_PROTO.get(message.statistic)
    if statistic is None:
        raise WireError(
            f"{path}.statistic",
            f"unknown statistic {message.statistic}: use one of "
            f"{', '.join(s.value for s in Statistic)}",
        )
    column = message.column if message.HasField("column") else None
    quantiles = _finite_doubles(message.quantiles, f"{path}.quantiles")
    bins = _finite_doubles(message.bins, f"{path}.bins")
    group_by = tuple(
        _group_by_from_proto(group, f"{path}.group_by[{index}]")
        for index, group in enumerate(message.group_by)
    )
    filters = tuple(
        _filter_from_proto(item, f"{path}.filters[{index}]")
        for index, item in enumerate(message.filters)
    )
    privacy = _privacy_from_proto(message, path)
    try:
        return QuerySpec(
            query_id=query_id,
            dataset=message.dataset,
            statistic=statistic,
            column=column,
            quantiles=quantiles,
            bins=bins,
            items=tuple(message.items),
            quantile_count=message.quantile_count,
            group_by=group_by,
            filters=filters,
            privacy=privacy,
            purpose=message.purpose,
        )
    except ValidationError as exc:
        raise _wire_error_from_validation(exc, path) from exc


def normalize_spec(spec: QuerySpec) -> QuerySpec:
    """The spec exactly as a node parses it off the wire: sign *this* one's bytes.

    A fan-out signs one spec object for every node: the last one normalized is kept, by
    identity (that object, not an equal one; QuerySpec is frozen)."""
    last = _LAST_NORMALIZED.pair
    if last is not None and last[0] is spec:
        return last[1]
    normalized = query_from_proto(query_to_proto(spec))
    _LAST_NORMALIZED.pair = (spec, normalized)
    return normalized


class _LastNormalized:
    pair: tuple[QuerySpec, QuerySpec] | None = None


_LAST_NORMALIZED = _LastNormalized()


def _parse_uuid(text: str, path: str) -> UUID:
    try:
        return UUID(text)
    except ValueError as exc:
        raise WireError(path, f"{text[:64]!r} is not a UUID: choose a fresh uuid4") from exc


def _finite_doubles(values: Iterable[float], path: str) -> tuple[float, ...]:
    result = tuple(values)
    for index, value in enumerate(result):
        if not math.isfinite(value):
            raise WireError(f"{path}[{index}]", f"must be a finite number, got {value}")
    return result


def _group_by_from_proto(message: pb.GroupBy, path: str) -> GroupBy:
    kind = message.WhichOneof("kind")
    if kind == "column":
        return GroupByColumn(column=message.column.column)
    if kind == "time":
        time = message.time
        bucket = _BUCKET_FROM_PROTO.get(time.bucket)
        if bucket is None:
            raise WireError(
                f"{path}.time.bucket",
                f"unknown time bucket {time.bucket}: use one of "
                f"{', '.join(b.value for b in TimeBucket)}",
            )
        month = (
            time.fiscal_year_start_month
            if time.HasField("fiscal_year_start_month")
            else DEFAULT_FISCAL_YEAR_START_MONTH
        )
        if not 1 <= month <= 12:
            raise WireError(
                f"{path}.time.fiscal_year_start_month", f"must be a month 1-12, got {month}"
            )
        return GroupByTime(column=time.column, bucket=bucket, fiscal_year_start_month=month)
    raise WireError(path, "a group-by needs either a column or a time bucket")


def _filter_from_proto(message: pb.Filter, path: str) -> Filter:
    kind = message.WhichOneof("kind")
    if kind == "in_set":
        values = tuple(_in_set_value_from_text(value) for value in message.in_set.values)
        return InSetFilter(column=message.in_set.column, values=values)
    if kind == "date_range":
        item = message.date_range
        return DateRangeFilter(
            column=item.column,
            start=_parse_date(item.start, f"{path}.date_range.start"),
            end=_parse_date(item.end, f"{path}.date_range.end"),
        )
    if kind == "numeric_range":
        numeric = message.numeric_range
        low = numeric.low if numeric.HasField("low") else None
        high = numeric.high if numeric.HasField("high") else None
        for name, value in (("low", low), ("high", high)):
            if value is not None and not math.isfinite(value):
                raise WireError(
                    f"{path}.numeric_range.{name}",
                    f"must be a finite number or unset (open end), got {value}",
                )
        return NumericRangeFilter(column=numeric.column, low=low, high=high)
    raise WireError(path, "a filter needs one of in_set, date_range or numeric_range")


def _in_set_value_from_text(text: str) -> str | bool:
    if text == _TRUE:
        return True
    if text == _FALSE:
        return False
    return text


def _parse_date(text: str, path: str) -> date:
    if not text:
        raise WireError(path, "a date range needs both ends, as YYYY-MM-DD")
    if not _ISO_DATE.fullmatch(text):
        raise WireError(path, f"{text[:32]!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise WireError(path, f"{text!r} is not a calendar date") from exc


def _privacy_from_proto(message: pb.Query, path: str) -> PrivacyLoss:
    kind = message.WhichOneof("privacy")
    if kind == "rho":
        return PrivacyLoss(rho=_parse_rho(message.rho, f"{path}.rho"))
    if kind == "accuracy":
        accuracy = message.accuracy
        if not math.isfinite(accuracy) or accuracy <= 0:
            raise WireError(
                f"{path}.accuracy",
                f"target accuracy must be a finite positive number, got {accuracy}",
            )
        return PrivacyLoss(accuracy=accuracy)
    raise WireError(f"{path}.privacy", "give either rho or a target accuracy")


def _parse_rho(text: str, path: str) -> Decimal:
    try:
        return parse_rho_text(text)
    except BudgetValueError as exc:
        raise WireError(path, str(exc)) from exc


def _wire_error_from_validation(exc: ValidationError, path: str) -> WireError:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    target = f"{path}.{location}" if location else path
    return WireError(target, str(first["msg"]))


# ---------------------------------------------------------------------------------
# Signed requests


def signed_request_to_proto(signed: SignedRequest) -> pb.SignedRequest:
    return pb.SignedRequest(
        envelope=signed.envelope_bytes,
        signature=signed.signature,
        public_key=signed.signer_public_key,
    )


def signed_request_from_proto(message: pb.SignedRequest) -> SignedRequest:
    return SignedRequest(
        envelope_bytes=message.envelope,
        signature=message.signature,
        signer_public_key=message.public_key,
    )


def query_request_to_proto(spec: QuerySpec, signed: SignedRequest) -> pb.QueryRequest:
    return pb.QueryRequest(query=query_to_proto(spec), signed=signed_request_to_proto(signed))


def query_request_from_proto(message: pb.QueryRequest) -> QueryCall:
    if not message.HasField("query"):
        raise WireError("query", "the request carries no query")
    if not message.HasField("signed"):
        raise WireError("signed", "a query must carry the analyst's signed request")
    return QueryCall(
        spec=query_from_proto(message.query), signed=signed_request_from_proto(message.signed)
    )


def preview_request_from_proto(message: pb.PreviewRequest) -> QuerySpec:
    if not message.HasField("query"):
        raise WireError("query", "the request carries no query")
    return query_from_proto(message.query)


# ---------------------------------------------------------------------------------
# Preview


def preview_to_proto(preview: PreviewResult) -> pb.PreviewResponse:
    return pb.PreviewResponse(
        cost_units=preview.cost_units,
        cost_rho=format_rho(preview.cost_units),
        expected=[
            pb.ExpectedValue(
                name=value.name,
                distribution=value.distribution,
                scale=value.scale,
                ci_half_width=value.ci_half_width,
            )
            for value in preview.expected
        ],
        remaining_units=preview.remaining_units,
    )


def preview_from_proto(message: pb.PreviewResponse) -> PreviewResult:
    return PreviewResult(
        cost_units=message.cost_units,
        expected=tuple(
            ExpectedValue(
                name=value.name,
                distribution=value.distribution,
                scale=value.scale,
                ci_half_width=value.ci_half_width,
            )
            for value in message.expected
        ),
        remaining_units=message.remaining_units,
    )
