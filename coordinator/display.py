"""A value's display form next to its unbiased form.

DP noise makes a released count negative now and then. The noisy value is unbiased and
is what arithmetic must use (pooling, fits, shares): clamping it would bias every sum.
People, though, should never read "-16 children". So each report row carries both:

* `unbiased_estimate` (and `unbiased_rate_per_100k`): the released or pooled value as it
  is, possibly negative, for programs;
* `value` (and `rate_per_100k`): the display value, clamped at 0 for values that cannot
  truly be negative, with `clamped` set when clamping changed it. The interval is
  clamped the same way, which keeps its coverage (the truth is never below 0).

Tables and charts show the display value; CSV and JSON carry both, under names nobody
mistakes for one another. Post-processing of released values only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coordinator.measures import is_count_name

if TYPE_CHECKING:
    from coordinator.report import ValueRow


def clamp_for_display(row: ValueRow) -> ValueRow:
    """The row with its value, interval and rate clamped at 0 (unbiased forms untouched)."""
    if row.value is None:
        return row
    return row.model_copy(
        update={
            "value": max(row.value, 0.0),
            "clamped": row.value < 0,
            "ci_low": _at_least_zero(row.ci_low),
            "ci_high": _at_least_zero(row.ci_high),
            "rate_per_100k": _at_least_zero(row.rate_per_100k),
            "rate_ci_low": _at_least_zero(row.rate_ci_low),
            "rate_ci_high": _at_least_zero(row.rate_ci_high),
        }
    )


def _at_least_zero(value: float | None) -> float | None:
    return None if value is None else max(value, 0.0)


def upgrade_stored_row(data: Any) -> Any:
    """Rows stored before the display form existed: their `value` was the unbiased one.

    Fills `unbiased_estimate` (and the unbiased rate) from it and clamps a count's
    display value, so results saved by older versions show no negative count either;
    a row they stored as suppressed loses its numbers, as new ones do.
    """
    if not isinstance(data, dict) or "unbiased_estimate" in data:
        return data
    if data.get("suppressed"):
        return _hidden_stored_row(data)
    upgraded = dict(data)
    upgraded["unbiased_estimate"] = data.get("value")
    upgraded["unbiased_rate_per_100k"] = data.get("rate_per_100k")
    value = data.get("value")
    if is_count_name(str(data.get("name", ""))) and isinstance(value, int | float):
        upgraded["clamped"] = value < 0
        for field in ("value", "ci_low", "ci_high", "rate_per_100k", "rate_ci_low", "rate_ci_high"):
            if isinstance(data.get(field), int | float):
                upgraded[field] = max(float(data[field]), 0.0)
    return upgraded


def _hidden_stored_row(data: dict[str, Any]) -> dict[str, Any]:
    from coordinator.suppression import HIDDEN_FIELDS

    reason = "complementary" if data.get("source") == "partnership" else "node"
    return {**data, **dict.fromkeys(HIDDEN_FIELDS), "suppression": reason}
