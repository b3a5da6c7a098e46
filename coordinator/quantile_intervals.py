"""Value intervals for released quantiles, from their rank errors and a released count.

A node releases each quantile by OpenDP's noisy selection among public candidates, with
a 95% `rank_error` e in rows (privacy/plan.py): the released candidate c's rank score
|(1 - p) #(x < c) - p #(x > c)| is within e of the best candidate's. With n the number
of known values and F their distribution function, that means (ties counted as the
score counts them) F(c-) <= p + d and F(c) >= p - d, d = e / n: c lies between the
true quantiles at p - d and p + d. So a released c_i bounds the true quantile at p_j:

* from below when p_i + d_i < p_j (every value below c_i has F < p_j);
* from above when p_i - d_i >= p_j (F(c_i) >= p_j).

The value interval of the quantile at p_j is therefore [the largest released c_i that
bounds it from below, the smallest that bounds it from above], else the column's bounds
(the interval shown before). n is private: the query releases it as one more DP output
(`--value-intervals`, QuerySpec.quantile_count, charged by OpenDP's map and shown in
`--dry-run`), and its 95% lower limit stands in for n, which only widens d. The
interval is read off the released set: post-processing, and the more probabilities
asked (say 0.1, 0.25, 0.5, 0.75, 0.9), the tighter. The estimate itself is kept inside.
Each bound rests on one released quantile's rank error (95%, conservative) and on the
count's lower limit; tests/statistical/test_quantile_value_interval_coverage.py measures the
coverage of the true quantile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from coordinator.quantiles import quantile_probability

if TYPE_CHECKING:
    from coordinator.report import ValueRow


def quantile_value_bounds(
    released: Sequence[tuple[float, float, float]],
    count_lower: float,
    bounds: tuple[float, float],
) -> list[tuple[float, float]]:
    """[(low, high)] per (probability, released value, rank error), in the given order."""
    if count_lower <= 0:
        return [bounds for _ in released]
    spread = [(p, value, error / count_lower) for p, value, error in released]
    intervals: list[tuple[float, float]] = []
    for p_j, _, _ in spread:
        below = [value for p, value, d in spread if p + d < p_j]
        above = [value for p, value, d in spread if p - d >= p_j]
        intervals.append((max(below, default=bounds[0]), min(above, default=bounds[1])))
    return intervals


def with_value_intervals(rows: Sequence[ValueRow]) -> list[ValueRow]:
    """Quantile rows with value intervals where their cell also released a count."""
    cells: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    counts: dict[tuple[str, tuple[str, ...]], ValueRow] = {}
    for index, row in enumerate(rows):
        if row.name == "count":
            counts[row.source, row.key] = row
        elif quantile_probability(row.name) is not None and row.rank_error is not None:
            cells.setdefault((row.source, row.key), []).append(index)
    out = list(rows)
    for cell, indexes in cells.items():
        count = counts.get(cell)
        if count is None or count.suppressed or count.ci_low is None:
            continue
        quantiles = [rows[i] for i in indexes]
        if any(_missing(row) for row in quantiles):
            continue
        released = [_released(row) for row in quantiles]
        bounds = (min(r.ci_low or 0.0 for r in quantiles), max(r.ci_high or 0.0 for r in quantiles))
        intervals = quantile_value_bounds(released, count.ci_low, bounds)
        for index, row, (low, high) in zip(indexes, quantiles, intervals, strict=True):
            assert row.value is not None
            update = {"ci_low": min(low, row.value), "ci_high": max(high, row.value)}
            out[index] = row.model_copy(update=update)
    return out


def _missing(row: ValueRow) -> bool:
    return row.value is None or row.unbiased_estimate is None or row.ci_low is None


def _released(row: ValueRow) -> tuple[float, float, float]:
    probability = quantile_probability(row.name)
    assert probability is not None
    assert row.unbiased_estimate is not None
    assert row.rank_error is not None
    return probability, row.unbiased_estimate, row.rank_error
