"""A monotone set of quantiles per cell (post-processing).

Each quantile is released by its own noisy selection, so one node's median can come out
above its 90th percentile. Sorting the released values within a cell (the monotone
rearrangement of the quantile curve) restores the order without looking at any data,
and never moves the set further from the true quantiles: for any true non-decreasing
quantiles, the sorted set is at least as close in every l^p distance. The value each
node released is kept as `unbiased_estimate` (for quantiles simply "as released").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coordinator.report import ValueRow

QUANTILE_PREFIX = "q"


def quantile_probability(name: str) -> float | None:
    """0.5 for "q0.5"; None for any other value name."""
    if not name.startswith(QUANTILE_PREFIX):
        return None
    try:
        return float(name.removeprefix(QUANTILE_PREFIX))
    except ValueError:
        return None


def monotone_quantiles(rows: Sequence[ValueRow]) -> list[ValueRow]:
    """Rows with each (source, key)'s quantile values sorted by probability."""
    cells: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for index, row in enumerate(rows):
        if quantile_probability(row.name) is not None and row.value is not None:
            cells.setdefault((row.source, row.key), []).append(index)
    out = list(rows)
    for indexes in cells.values():
        by_probability = sorted(indexes, key=lambda i: quantile_probability(rows[i].name) or 0.0)
        values = sorted(value for i in by_probability if (value := rows[i].value) is not None)
        for index, value in zip(by_probability, values, strict=True):
            row = rows[index]
            out[index] = row.model_copy(update={"value": value, "unbiased_estimate": row.value})
    return out
