"""How many rejected rows an ingest or a refresh tolerates before it keeps the old snapshot.

A reporting replica that suddenly sends half its rows with a broken date format should
not quietly become the data the partnership queries. Over the threshold, the valid rows
are not stored: the reject report is written, the current snapshot stays current and the
command fails. The default is strict: a single rejected row keeps the old snapshot.

Exact arithmetic: the fraction is a decimal from node.toml, compared as a rational number.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction


@dataclass(frozen=True)
class RejectThreshold:
    """The largest share of rows (0 to 1) that may be rejected while the rest is stored."""

    max_rejected_fraction: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.max_rejected_fraction <= Decimal(1):
            raise ValueError(
                f"max_rejected_fraction must be between 0 and 1, not {self.max_rejected_fraction}"
            )

    def exceeded(self, rejected: int, total: int) -> bool:
        """More than the allowed share of `total` rows was rejected."""
        if total <= 0:
            return rejected > 0
        return Fraction(rejected, total) > Fraction(self.max_rejected_fraction)

    def explain(self, rejected: int, total: int) -> str:
        """Why the snapshot was kept, for the operator."""
        allowed = (
            "no rejected rows"
            if self.max_rejected_fraction == 0
            else f"at most {_percent(Fraction(self.max_rejected_fraction))} rejected"
        )
        return (
            f"{rejected} of {total} rows ({_percent(Fraction(rejected, max(total, 1)))}) were "
            f"rejected, but node.toml allows {allowed} (ingest.max_rejected_fraction); the "
            "current snapshot is unchanged. Fix the rows listed in the reject report, or "
            "raise the threshold if these rows should be dropped."
        )


def _percent(share: Fraction) -> str:
    return f"{float(share) * 100:.4g}%"
