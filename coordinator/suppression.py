"""Suppression means hidden: a flagged cell shows nothing, and no pooled row gives it away.

A node may flag small noisy counts as suppressed (its `suppress_counts_below` setting).
That is a publication rule applied on top of differential privacy, not a privacy
mechanism: the noisy value is already safe to release, and the coordinator received it.
But a rule that hides a number must hide it everywhere, so a suppressed row keeps its key
and name and loses its value, unbiased estimate, interval and rates in every output
(table, CSV, JSON, chart).

A partnership row minus the node rows shown beside it would give the hidden value back.
So a pooled row is hidden too ("complementary" suppression) whenever any node's row it
adds up is suppressed. Pooling itself still uses every node's released value, so the
rows that are shown stay unbiased. Trends whose series contain a hidden point are left
out for the same reason (the slope and the shown points would pin the hidden one down).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from coordinator.report import TrendRow, ValueRow

Suppression = Literal["node", "complementary"]

HIDDEN_FIELDS = (
    "value",
    "unbiased_estimate",
    "ci_low",
    "ci_high",
    "rate_per_100k",
    "rate_ci_low",
    "rate_ci_high",
    "unbiased_rate_per_100k",
)


def hidden(row: ValueRow, reason: Suppression) -> ValueRow:
    """The row with every number that could reveal its value removed."""
    update: dict[str, object] = dict.fromkeys(HIDDEN_FIELDS)
    update |= {"suppressed": True, "suppression": reason, "clamped": False}
    return row.model_copy(update=update)


def apply_suppression(rows: Sequence[ValueRow], pooled_source: str) -> list[ValueRow]:
    """Hide node-suppressed rows, and pooled rows that would reveal them by subtraction."""
    flagged = {
        (row.key, row.name) for row in rows if row.suppressed and row.source != pooled_source
    }
    out: list[ValueRow] = []
    for row in rows:
        if row.source != pooled_source and row.suppressed:
            out.append(hidden(row, "node"))
        elif row.source == pooled_source and (row.key, row.name) in flagged:
            out.append(hidden(row, "complementary"))
        else:
            out.append(row)
    return out


def without_hidden_points(
    trends: Sequence[TrendRow], rows: Sequence[ValueRow], time_index: int | None
) -> list[TrendRow]:
    """Drop each trend whose series has a suppressed point (the slope would reveal it)."""
    if time_index is None:
        return list(trends)
    hidden = {
        (row.source, row.key[:time_index] + row.key[time_index + 1 :], row.name)
        for row in rows
        if row.suppressed
    }
    return [t for t in trends if (t.source, t.key, t.name) not in hidden]
