"""The query specification: what an analyst may ask a node.

Queries are structured values, never SQL. A query names one statistic over one dataset,
optional items (several flags counted, or several bounded items averaged, at once),
optional group-by columns (categorical, or time buckets of a date column), filters, the
privacy loss to spend (rho) or a target accuracy, and a purpose. Group keys always come
from public information: the schema's domains and the time buckets of the query's own
date range.

`canonical_bytes` is the byte string that is hashed, signed and stored in the ledger; a
retry with the same `query_id` must produce the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

MAX_PURPOSE_CHARS = 500
ITEM_GROUP_COLUMN = "item"
"""The key column of a multi-item release: which item a cell is about (its last key)."""


class Statistic(StrEnum):
    COUNT = "count"
    SUM = "sum"
    MEAN = "mean"
    QUANTILES = "quantiles"
    HISTOGRAM = "histogram"


class TimeBucket(StrEnum):
    YEAR = "year"
    FISCAL_YEAR = "fiscal_year"
    QUARTER = "quarter"
    MONTH = "month"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GroupByColumn(_Frozen):
    """Group by a categorical or boolean column; keys are its public domain."""

    kind: Literal["column"] = "column"
    column: str


class GroupByTime(_Frozen):
    """Group by time buckets of a date column; keys are the buckets of the query's
    date range on that column (which the query must give, with both ends)."""

    kind: Literal["time"] = "time"
    column: str
    bucket: TimeBucket
    fiscal_year_start_month: Annotated[int, Field(ge=1, le=12)] = 10
    """Month a fiscal year starts (10 = October, the US federal fiscal year); a fiscal
    year is labelled by the calendar year it ends in."""


GroupBy = Annotated[GroupByColumn | GroupByTime, Field(discriminator="kind")]


class InSetFilter(_Frozen):
    """Keep rows whose column value is one of `values` (values from the public domain)."""

    kind: Literal["in"] = "in"
    column: str
    values: tuple[str | bool, ...]


class DateRangeFilter(_Frozen):
    """Keep rows whose date column lies in [start, end], both ends inclusive."""

    kind: Literal["date_range"] = "date_range"
    column: str
    start: date
    end: date


class NumericRangeFilter(_Frozen):
    """Keep rows whose numeric column lies in [low, high], both ends inclusive."""

    kind: Literal["numeric_range"] = "numeric_range"
    column: str
    low: float | None = None
    high: float | None = None


Filter = Annotated[InSetFilter | DateRangeFilter | NumericRangeFilter, Field(discriminator="kind")]


class PrivacyLoss(_Frozen):
    """How much privacy to spend: exactly one of `rho` (zCDP) or `accuracy`.

    `accuracy` is the target half-width of the 95% interval of each released value; the
    node spends the rho that achieves it.
    """

    rho: Decimal | None = None
    accuracy: float | None = None


class QuerySpec(_Frozen):
    """One differentially private question of one dataset at one node."""

    query_id: UUID
    dataset: str
    statistic: Statistic
    column: str | None = None
    """The measured column (sum, mean, quantiles, histogram); none for count."""
    quantiles: tuple[float, ...] = ()
    """Probabilities in (0, 1) for the quantiles statistic."""
    bins: tuple[float, ...] = ()
    """Histogram bin edges (increasing); empty means edges from the column's bounds."""
    items: tuple[str, ...] = ()
    """Multi-item query: the columns counted (boolean flags, count) or averaged (bounded
    numeric items, mean) in one release, one charge; the measured `column` stays empty.
    Each item is released as its own cell, keyed by ITEM_GROUP_COLUMN after the group
    keys. Empty for an ordinary query."""
    group_by: tuple[GroupBy, ...] = ()
    filters: tuple[Filter, ...] = ()
    privacy: PrivacyLoss
    purpose: str
    quantile_count: bool = False
    """Quantiles: also release each cell's count of known values (one more DP output,
    charged by OpenDP's map), from which the coordinator turns the released rank errors
    into value intervals (coordinator/quantile_intervals.py). False for every other query."""

    def canonical_bytes(self) -> bytes:
        """Deterministic bytes of the whole query: hashed, signed and kept in the ledger."""
        body = self.model_dump(mode="json")
        if not self.items:
            # Queries without items keep the bytes (and hashes) they had before items existed.
            del body["items"]
        if not self.quantile_count:
            del body["quantile_count"]  # likewise for queries without a quantile count
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def query_hash(self) -> str:
        """SHA-256 (hex) of the canonical bytes."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    @classmethod
    def from_canonical_bytes(cls, data: bytes) -> QuerySpec:
        return cls.model_validate_json(data)
