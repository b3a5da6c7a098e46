"""Which route a node releases an answer by: OpenDP's full plan, or the fast route.

* `opendp`: OpenDP's engine runs the whole plan (filter, identifier truncation to the
  contribution bounds, group-by, noisy aggregate): it enforces the bounds itself.
* `fast`: on a snapshot verified at ingest to satisfy the dataset's bounds, Polars
  computes the exact aggregate and OpenDP's measurement adds the noise at the same scale
  (privacy/fast_release.py, docs/privacy-model.md "The fast route").

Either way the charge is the privacy map of OpenDP's full plan. Which queries have a
fast form is decided here from the public query and schema alone. Pure: no Polars.
"""

from __future__ import annotations

from enum import StrEnum

from privacy.query import Statistic
from privacy.schema import ColumnKind
from privacy.validate import ValidatedQuery

_FAST_STATISTICS = frozenset(
    {Statistic.COUNT, Statistic.HISTOGRAM, Statistic.SUM, Statistic.MEAN, Statistic.QUANTILES}
)


class QueryRoute(StrEnum):
    OPENDP = "opendp"
    FAST = "fast"


def has_fast_form(query: ValidatedQuery) -> bool:
    """Whether every output of `query` has an exact fast form (public query only).

    Multi-item queries and quantiles with their count of known values (these extra
    outputs have no fast form yet) and float columns keep the full route. Floats: OpenDP
    sums floats in its own order and charges for that summation's rounding, which a
    Polars sum would not reproduce bit for bit.
    """
    if query.statistic not in _FAST_STATISTICS or query.items or query.spec.quantile_count:
        return False
    measured = query.measured
    return measured is None or measured.kind is ColumnKind.INTEGER
