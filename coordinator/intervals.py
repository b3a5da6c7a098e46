"""What an interval covers: the DP noise only, or the DP noise and Poisson variation.

`dp` (the default): the interval covers the jurisdiction's *actual* count (or rate) in
the period: the only uncertainty is the noise the node added. This answers "how many
children did this jurisdiction count?".

`dp+poisson`: the interval covers the *underlying* expected count (the Poisson mean
lambda, and lambda / population for a rate), as epidemiologists quote for rare events:
this year's count is one draw of a Poisson variable, so even a noise-free count of 3
says only that lambda is somewhere in [0.62, 8.77]. Construction, for a count released
with discrete Gaussian noise (one node's scale, or the pooled nodes' scales):

1. the noise interval at level 1 - alpha/2 bounds the actual count X:
   [x_low, x_high] = [y - H, y + H] (H exact for the summed discrete noise,
   coordinator/discrete.py), floored at 0;
2. Garwood's exact Poisson limits at level 1 - alpha/2 (coordinator/gamma.py) are
   taken at those ends: [lower(x_low), upper(x_high)].

The limits are monotone in the count, so if X lies in [x_low, x_high] and lambda lies
in Garwood's interval for X, lambda lies in the combined one; by the union bound the
combined interval covers lambda with probability >= 1 - alpha. It is conservative
(both parts are); a variance sum on the square-root scale would be narrower but only
approximate, and under-covers exactly where readers ask this question: small counts.

Only counts (count, histogram) have a Poisson model; a sum or mean keeps `dp`.
Post-processing of released numbers: nothing is charged, and a stored result can be
shown either way (`npcs results show --interval`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, get_args

from coordinator.discrete import discrete_sum_half_width
from coordinator.gamma import garwood_limits
from coordinator.measures import is_count_name

if TYPE_CHECKING:
    from coordinator.report import Report, ValueRow

IntervalKind = Literal["dp", "dp+poisson"]
INTERVAL_KINDS: tuple[IntervalKind, ...] = get_args(IntervalKind)
POISSON_STATISTICS = frozenset({"count", "histogram"})


class IntervalError(ValueError):
    """An interval kind that does not apply to a result, with what to do instead."""


def poisson_mean_interval(
    noisy_count: float, scales: Sequence[float], confidence: float = 0.95
) -> tuple[float, float]:
    """Interval for the Poisson mean behind a count released with these noise scales."""
    part = 1 - (1 - confidence) / 2
    half_width = discrete_sum_half_width(scales, part)
    low_count = max(0, math.ceil(noisy_count - half_width - 1e-9))
    high_count = max(0, math.floor(noisy_count + half_width + 1e-9))
    low, _ = garwood_limits(low_count, part)
    _, high = garwood_limits(high_count, part)
    return low, high


def with_interval(report: Report, kind: IntervalKind) -> Report:
    """The report with its count intervals covering `kind` (rows and rates)."""
    if kind == report.interval:
        return report
    if kind == "dp":
        raise IntervalError(
            "this result was made with --interval dp+poisson; show the stored result "
            "(`npcs results show ID`) for the DP-only intervals"
        )
    if report.statistic not in POISSON_STATISTICS:
        raise IntervalError(
            f"--interval dp+poisson applies to counts (count, histogram), not to a "
            f"{report.statistic}: a {report.statistic} has no Poisson model; use --interval dp"
        )
    node_scales = {
        (row.key, row.name, row.source): row.std
        for row in report.rows
        if row.source in report.pooled_nodes
    }
    rows = [_widened(row, report, node_scales) for row in report.rows]
    return report.model_copy(update={"rows": tuple(rows), "interval": kind})


def _widened(
    row: ValueRow,
    report: Report,
    node_scales: dict[tuple[tuple[str, ...], str, str], float | None],
) -> ValueRow:
    if row.suppressed or row.unbiased_estimate is None or not is_count_name(row.name):
        return row
    if row.source in report.pooled_nodes:
        scales = [row.std]
    else:
        scales = [node_scales.get((row.key, row.name, node)) for node in report.pooled_nodes]
    known = [s for s in scales if s is not None and s > 0]
    if len(known) != len(scales):
        return row
    low, high = poisson_mean_interval(row.unbiased_estimate, known, report.confidence)
    update: dict[str, object] = {"ci_low": low, "ci_high": high}
    if row.population:
        from coordinator.report import RATE_BASE

        factor = RATE_BASE / row.population
        update |= {"rate_ci_low": low * factor, "rate_ci_high": high * factor}
    return row.model_copy(update=update)


def interval_label(kind: IntervalKind) -> str:
    """What an interval covers, in a few words for titles and captions."""
    return "DP noise + Poisson variation" if kind == "dp+poisson" else "DP noise"
