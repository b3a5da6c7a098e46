"""The noise OpenDP adds matches what each release claims (fixed alpha = 0.001).

Each check repeats a real plan + release over a small Parquet file: no seeding, no mocks.
Both routes are checked: OpenDP's full plan and the fast route (exact aggregate, OpenDP's
measurement; privacy/fast_release.py).
"""

from __future__ import annotations

import math
import statistics
import uuid
from decimal import Decimal
from pathlib import Path
from statistics import NormalDist

import pytest
from support_data import TEST_SCHEMA as SCHEMA
from support_data import write_snapshot

from privacy.budget import rho_to_units_ceil
from privacy.plan import plan_query
from privacy.query import GroupByColumn, PrivacyLoss, QuerySpec
from privacy.query_route import QueryRoute
from privacy.release import Release
from privacy.validate import QueryLimits, validate_query

pytestmark = pytest.mark.slow

ALPHA = 0.001
RELEASES = 400
LIMITS = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(Decimal(1_000_000)))
TRUE_COUNTS = {"adams": 37, "baker": 5, "clark": 0}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dataset = SCHEMA.dataset("reports")
    rows = [{"county": county} for county, n in TRUE_COUNTS.items() for _ in range(n)]
    return write_snapshot(tmp_path_factory.mktemp("noise") / "reports.parquet", dataset, rows)


def _release(path: Path, rho: Decimal, route: QueryRoute = QueryRoute.OPENDP) -> Release:
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="reports",
        statistic="count",
        group_by=(GroupByColumn(column="county"),),
        privacy=PrivacyLoss(rho=rho),
        purpose="noise calibration test",
    )
    plan = plan_query(validate_query(spec, SCHEMA, LIMITS), SCHEMA, path, route)
    return plan.release(node="n", snapshot_id="s")


def _chi_square_quantile(p: float, dof: int) -> float:
    """Wilson-Hilferty approximation (accurate to well under 1% at 400 degrees of freedom)."""
    z = NormalDist().inv_cdf(p)
    h = 2 / (9 * dof)
    return float(dof * (1 - h + z * math.sqrt(h)) ** 3)


@pytest.fixture(scope="module", params=list(QueryRoute))
def noisy_releases(snapshot: Path, request: pytest.FixtureRequest) -> list[Release]:
    return [_release(snapshot, Decimal("0.08"), request.param) for _ in range(RELEASES)]


def test_noise_standard_deviation_matches_the_claimed_scale(noisy_releases: list[Release]) -> None:
    errors = [
        estimate.value - TRUE_COUNTS[cell.key[0]]
        for release in noisy_releases
        for cell in release.cells
        if cell.key == ("adams",)
        for estimate in cell.estimates
    ]
    scale = noisy_releases[0].cells[0].estimates[0].scale
    assert scale == pytest.approx(8 / math.sqrt(2 * 0.08), rel=1e-6)  # reports: 8 rows/child
    dof = len(errors) - 1
    statistic = dof * statistics.variance(errors) / scale**2
    assert (
        _chi_square_quantile(ALPHA / 2, dof)
        <= statistic
        <= _chi_square_quantile(1 - ALPHA / 2, dof)
    )
    # unbiased: the mean error is within a z-test band
    z = NormalDist().inv_cdf(1 - ALPHA / 2)
    assert abs(statistics.fmean(errors)) <= z * scale / math.sqrt(len(errors))


def test_95_percent_intervals_cover_the_truth_about_95_percent(
    noisy_releases: list[Release],
) -> None:
    covered = trials = 0
    for release in noisy_releases:
        for cell in release.cells:
            (estimate,) = cell.estimates
            trials += 1
            covered += estimate.ci_low <= TRUE_COUNTS[cell.key[0]] <= estimate.ci_high
    z = NormalDist().inv_cdf(1 - ALPHA)
    band = z * math.sqrt(trials * 0.95 * 0.05)
    # never below the claim (one-sided), and not so wide that the claim is meaningless
    assert covered >= 0.95 * trials - band
    assert covered <= 0.99 * trials


@pytest.mark.parametrize("route", list(QueryRoute))
def test_huge_budget_releases_the_true_counts_exactly(snapshot: Path, route: QueryRoute) -> None:
    for _ in range(20):
        release = _release(snapshot, Decimal(1_000_000), route)
        released = {cell.key[0]: cell.estimates[0].value for cell in release.cells}
        assert released == {county: float(n) for county, n in TRUE_COUNTS.items()}
