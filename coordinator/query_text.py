"""A query's filters and purpose in words, for titles, captions and exports.

A number read without its filters misleads ("fatalities" vs "fatalities of infants in
2022"), so every chart caption, table title and CSV/JSON export carries this text. The
filters are written in `--where` syntax, so a reader can ask the same question again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privacy.query import DateRangeFilter, Filter, InSetFilter, QuerySpec


def filter_text(query_filter: Filter) -> str:
    """One filter as a `--where` clause: sex=female,male; age=0..11; date=2020-01-01..2020-12-31."""
    if isinstance(query_filter, InSetFilter):
        values = ",".join(_value_text(v) for v in query_filter.values)
        return f"{query_filter.column}={values}"
    if isinstance(query_filter, DateRangeFilter):
        return f"{query_filter.column}={query_filter.start}..{query_filter.end}"
    low = "" if query_filter.low is None else f"{query_filter.low:g}"
    high = "" if query_filter.high is None else f"{query_filter.high:g}"
    return f"{query_filter.column}={low}..{high}"


def _value_text(value: str | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else value


def filters_text(spec: QuerySpec) -> str:
    """All filters joined by "; ", or "none"."""
    return "; ".join(filter_text(f) for f in spec.filters) or "none"


def spec_from_report_query(query: Mapping[str, Any]) -> QuerySpec | None:
    """The QuerySpec a report stored as JSON; None if it no longer parses."""
    try:
        return QuerySpec.model_validate(query)
    except ValueError:
        return None
