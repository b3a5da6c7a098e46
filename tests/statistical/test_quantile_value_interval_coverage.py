"""Quantile value intervals (rank errors + a released count) cover the true quantiles.

Real plans and releases of known data (no mocks, no seeding): each release asks five
quantiles with `quantile_count`, and coordinator/quantile_intervals.py turns them into
value intervals. The true quantile at p is min{x : F(x) >= p} of the data. Two data
sets: skewed ages with heavy ties (many infants), as child-fatality data has, and a
spread-out one. Fixed alpha = 0.001 against 95% coverage over 2,000 intervals each.
"""

from __future__ import annotations

import math
import uuid
from decimal import Decimal
from pathlib import Path
from statistics import NormalDist

import pytest
from support_data import write_snapshot

from coordinator.quantile_intervals import quantile_value_bounds
from privacy.budget import rho_to_units_ceil
from privacy.plan import plan_query
from privacy.query import PrivacyLoss, QuerySpec
from privacy.release import Estimate
from privacy.schema import PARTNERSHIP_SCHEMA
from privacy.validate import QueryLimits, validate_query

pytestmark = pytest.mark.slow

ALPHA = 0.001
RELEASES = 400
PROBABILITIES = (0.1, 0.25, 0.5, 0.75, 0.9)
INCIDENTS = PARTNERSHIP_SCHEMA.dataset("incidents")
COLUMN = INCIDENTS.column("child_age_months")
LIMITS = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(Decimal(1_000_000)))
DATA = {
    "tied": [0] * 600 + [1] * 200 + [3] * 150 + list(range(6, 216, 1)) * 4 + [200] * 100,
    "spread": [(i * 7) % 216 for i in range(1500)],
}


def _true_quantile(values: list[int], probability: float) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(probability * len(ordered)) - 1]


def _release(path: Path) -> tuple[Estimate, ...]:
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic="quantiles",
        column=COLUMN.name,
        quantiles=PROBABILITIES,
        privacy=PrivacyLoss(rho=Decimal("0.5")),
        purpose="quantile value interval test",
        quantile_count=True,
    )
    plan = plan_query(validate_query(spec, PARTNERSHIP_SCHEMA, LIMITS), PARTNERSHIP_SCHEMA, path)
    (cell,) = plan.release(node="n", snapshot_id="s").cells
    return cell.estimates


@pytest.mark.parametrize("name", sorted(DATA))
def test_value_intervals_cover_the_true_quantiles(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    values = DATA[name]
    path = write_snapshot(
        tmp_path_factory.mktemp(name) / "incidents.parquet",
        INCIDENTS,
        [{COLUMN.name: value} for value in values],
    )
    truths = [_true_quantile(values, p) for p in PROBABILITIES]
    bounds = (float(COLUMN.lower or 0), float(COLUMN.upper or 0))
    covered = trials = informative = 0
    for _ in range(RELEASES):
        *quantiles, count = _release(path)
        assert count.name == "count"
        released = [
            (p, e.value, e.rank_error or math.inf)
            for p, e in zip(PROBABILITIES, quantiles, strict=True)
        ]
        intervals = quantile_value_bounds(released, count.ci_low, bounds)
        for (low, high), truth in zip(intervals, truths, strict=True):
            trials += 1
            covered += low <= truth <= high
            informative += high - low < (bounds[1] - bounds[0]) / 2
    band = NormalDist().inv_cdf(1 - ALPHA) * math.sqrt(trials * 0.95 * 0.05)
    assert covered >= 0.95 * trials - band
    # the intervals say something: most are narrower than half the column's range
    assert informative > trials / 2
