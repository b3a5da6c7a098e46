"""The node's plan cache: a cached plan charges and releases exactly as planning afresh.

Real OpenDP plans over a real Parquet snapshot. Releases use a huge rho (noise scale far
below 0.5) so released counts round to the truth and two releases can be compared.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from support_data import TEST_SCHEMA as SCHEMA
from support_data import write_snapshot

from node.plan_cache import PlanCache, PlanKey
from privacy.budget import rho_to_units_ceil
from privacy.opendp_setup import opendp
from privacy.plan import QueryPlan, person_distance, plan_query
from privacy.query import GroupByColumn, PrivacyLoss, QuerySpec
from privacy.release import Release
from privacy.validate import QueryLimits, validate_query

INCIDENTS = SCHEMA.dataset("incidents")
HUGE_RHO = Decimal(1_000_000)
LIMITS = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(HUGE_RHO))
ROWS = [
    {"county": county, "incident_type": "fatality", "child_age_months": months}
    for county, months in [("adams", 3), ("adams", 10), ("baker", 5), ("baker", 7), ("adams", 1)]
]


class Builds:
    """Counts how often the cache asked for a real plan."""

    def __init__(self, spec: QuerySpec, path: Path) -> None:
        self.spec, self.path, self.calls = spec, path, 0

    def __call__(self) -> QueryPlan:
        self.calls += 1
        return plan_query(validate_query(self.spec, SCHEMA, LIMITS), SCHEMA, self.path)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    return write_snapshot(tmp_path / "incidents.parquet", INCIDENTS, ROWS)


def by_county(rho: Decimal = HUGE_RHO) -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic="count",
        group_by=(GroupByColumn(column="county"),),
        privacy=PrivacyLoss(rho=rho),
        purpose="unit test",
    )


def key(spec: QuerySpec, snapshot_id: str = "snap-1") -> PlanKey:
    return PlanKey(spec.query_hash(), snapshot_id)


def counts(release: Release) -> dict[tuple[str, ...], int]:
    return {cell.key: round(cell.estimates[0].value) for cell in release.cells}


def test_cached_plan_charges_and_releases_exactly_as_planning_afresh(snapshot: Path) -> None:
    spec = by_county()
    build = Builds(spec, snapshot)
    cache = PlanCache()
    previewed = cache.plan(key(spec), build)
    queried = cache.plan(key(spec), build)
    fresh = build()
    assert build.calls == 2  # the preview's plan and the fresh one: the query reused it
    assert cache.stats.hits == 1
    assert cache.stats.misses == 1
    assert queried.cost_units == fresh.cost_units == previewed.cost_units
    assert queried.expected == fresh.expected
    assert queried.query == fresh.query
    d_in = person_distance(opendp())  # one person, as every plan is charged
    assert queried._measurement.map(d_in) == fresh._measurement.map(d_in)
    cached_release = queried.release(node="n", snapshot_id="snap-1")
    fresh_release = fresh.release(node="n", snapshot_id="snap-1")
    assert counts(cached_release) == counts(fresh_release)
    assert counts(cached_release) == {("adams",): 3, ("baker",): 2, ("clark",): 0}
    assert cached_release.cost_units == fresh_release.cost_units
    assert [cell.key for cell in cached_release.cells] == [cell.key for cell in fresh_release.cells]


def test_every_lookup_is_an_unreleased_plan_and_never_a_release(snapshot: Path) -> None:
    spec = by_county()
    build = Builds(spec, snapshot)
    cache = PlanCache()
    first = cache.plan(key(spec), build)
    first.release(node="n", snapshot_id="snap-1")
    with pytest.raises(RuntimeError, match="already released"):
        first.release(node="n", snapshot_id="snap-1")
    second = cache.plan(key(spec), build)
    assert second is not first
    assert counts(second.release(node="n", snapshot_id="snap-1"))[("adams",)] == 3
    assert build.calls == 1


def test_plans_expire_after_the_ttl(snapshot: Path) -> None:
    spec = by_county()
    build = Builds(spec, snapshot)
    clock = FakeClock()
    cache = PlanCache(ttl_seconds=60, clock=clock)
    cache.plan(key(spec), build)
    clock.now += 59.9
    cache.plan(key(spec), build)
    assert build.calls == 1
    clock.now += 60
    cache.plan(key(spec), build)
    assert build.calls == 2


def test_the_cache_is_bounded_and_drops_the_least_recently_used(snapshot: Path) -> None:
    specs = [by_county() for _ in range(3)]
    builds = [Builds(spec, snapshot) for spec in specs]
    cache = PlanCache(max_entries=2)
    cache.plan(key(specs[0]), builds[0])
    cache.plan(key(specs[1]), builds[1])
    cache.plan(key(specs[0]), builds[0])  # 0 is now the most recently used
    cache.plan(key(specs[2]), builds[2])  # drops 1
    assert len(cache) == 2
    cache.plan(key(specs[0]), builds[0])
    cache.plan(key(specs[1]), builds[1])
    assert [build.calls for build in builds] == [1, 2, 1]


def test_a_new_snapshot_or_a_different_query_plans_afresh(snapshot: Path) -> None:
    spec = by_county()
    build = Builds(spec, snapshot)
    cache = PlanCache()
    cache.plan(key(spec, "snap-1"), build)
    cache.plan(key(spec, "snap-2"), build)
    cheaper = spec.model_copy(update={"privacy": PrivacyLoss(rho=Decimal("0.5"))})
    cheaper_build = Builds(cheaper, snapshot)
    plan = cache.plan(key(cheaper), cheaper_build)
    assert (build.calls, cheaper_build.calls) == (2, 1)
    assert plan.cost_units == 500_000


def test_planning_errors_are_not_cached(snapshot: Path) -> None:
    spec = by_county()
    cache = PlanCache()
    calls = 0

    def failing() -> QueryPlan:
        nonlocal calls
        calls += 1
        raise ValueError("planning failed")

    for _ in range(2):
        with pytest.raises(ValueError, match="planning failed"):
            cache.plan(key(spec), failing)
    assert calls == 2
    assert len(cache) == 0


def test_a_cache_needs_a_positive_size_and_ttl() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        PlanCache(max_entries=0)
    with pytest.raises(ValueError, match="ttl_seconds"):
        PlanCache(ttl_seconds=0)
