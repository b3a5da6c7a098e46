"""The planner's per-shape cache (privacy.plan `_unit_cost`) never serves a stale plan.

Planning caches, per query shape, OpenDP's cost and scales of the measurement at scale
1. A new snapshot (new rows, a node's new county list) or a changed contribution bound
must plan exactly as planning with every cache cleared. Real OpenDP, real Parquet.
Releases use a huge rho (noise scale far below 0.5) so released counts round to the truth.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

from support_data import TEST_SCHEMA, write_snapshot

from privacy.budget import rho_to_units_ceil
from privacy.plan import QueryPlan, clear_shape_caches, plan_query
from privacy.query import GroupByColumn, PrivacyLoss, QuerySpec
from privacy.release import Release
from privacy.schema import Schema
from privacy.validate import QueryLimits, validate_query

HUGE_RHO = Decimal(1_000_000)
LIMITS = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(HUGE_RHO))


def by_county(rho: Decimal = HUGE_RHO) -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic="count",
        group_by=(GroupByColumn(column="county"),),
        privacy=PrivacyLoss(rho=rho),
        purpose="unit test",
    )


def plan(spec: QuerySpec, schema: Schema, path: Path) -> QueryPlan:
    return plan_query(validate_query(spec, schema, LIMITS), schema, path)


def cold_plan(spec: QuerySpec, schema: Schema, path: Path) -> QueryPlan:
    clear_shape_caches()
    return plan(spec, schema, path)


def counts(release: Release) -> dict[tuple[str, ...], int]:
    return {cell.key: round(cell.estimates[0].value) for cell in release.cells}


def rows(counties: dict[str, int]) -> list[dict[str, object]]:
    return [
        {"county": county, "incident_type": "fatality", "child_age_months": 12}
        for county, count in counties.items()
        for _ in range(count)
    ]


def test_a_new_snapshot_with_new_counties_plans_and_releases_afresh(tmp_path: Path) -> None:
    path = tmp_path / "incidents.parquet"
    first_schema = TEST_SCHEMA.with_local_domains({"county": ("adams", "baker")})
    write_snapshot(path, first_schema.dataset("incidents"), rows({"adams": 3, "baker": 1}))
    first = plan(by_county(), first_schema, path)
    assert counts(first.release(node="n", snapshot_id="s1")) == {("adams",): 3, ("baker",): 1}

    # the same path now holds a new snapshot, published with a third county
    second_schema = TEST_SCHEMA.with_local_domains({"county": ("adams", "baker", "clark")})
    write_snapshot(path, second_schema.dataset("incidents"), rows({"adams": 1, "clark": 4}))
    warm = plan(by_county(), second_schema, path)
    cold = cold_plan(by_county(), second_schema, path)
    assert warm.cost_units == cold.cost_units
    assert warm.expected == cold.expected
    released = counts(warm.release(node="n", snapshot_id="s2"))
    assert released == {("adams",): 1, ("baker",): 0, ("clark",): 4}
    assert released == counts(cold.release(node="n", snapshot_id="s2"))


def test_a_changed_contribution_bound_changes_the_scale_as_a_cold_plan_does(
    tmp_path: Path,
) -> None:
    path = tmp_path / "incidents.parquet"
    incidents = TEST_SCHEMA.dataset("incidents")
    write_snapshot(path, incidents, rows({"adams": 2}))
    rho = Decimal("0.5")
    before = plan(by_county(rho), TEST_SCHEMA, path)

    looser = incidents.model_copy(update={"max_rows_per_unit": 4 * incidents.max_rows_per_unit})
    datasets = tuple(looser if d.name == "incidents" else d for d in TEST_SCHEMA.datasets)
    loosened_schema = TEST_SCHEMA.model_copy(update={"datasets": datasets})
    warm = plan(by_county(rho), loosened_schema, path)
    cold = cold_plan(by_county(rho), loosened_schema, path)
    # a stale scale-1 cost would keep the old scale (and charge more than the rho asked)
    assert warm.expected[0].scale > before.expected[0].scale
    assert warm.expected == cold.expected
    assert warm.cost_units == cold.cost_units == before.cost_units


def test_queries_of_one_shape_at_other_rhos_charge_as_cold_plans(tmp_path: Path) -> None:
    path = write_snapshot(
        tmp_path / "incidents.parquet", TEST_SCHEMA.dataset("incidents"), rows({"adams": 1})
    )
    plan(by_county(Decimal("0.5")), TEST_SCHEMA, path)  # caches this shape
    for rho in (Decimal("0.01"), Decimal("0.3"), Decimal(2)):
        warm = plan(by_county(rho), TEST_SCHEMA, path)
        cold = cold_plan(by_county(rho), TEST_SCHEMA, path)
        assert warm.cost_units == cold.cost_units <= rho_to_units_ceil(rho)
        assert warm.expected == cold.expected
