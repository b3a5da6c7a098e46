"""The fast route: same charge as the full plan, chosen only where it is allowed.

* every bench query costs exactly OpenDP's map of the full bounded plan on either route;
* a node set to `fast` uses it only on a snapshot whose manifest records the dataset's
  current bounds, and only for queries with a fast form (from the public query alone);
* both routes release every public cell with the same noise description;
* the charge and scales of every bench query stay those recorded (BENCH_CHARGES).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from bench_query import LIMITS, QUERIES, SCHEMA, build_snapshot

from node.bounds_record import declared_bounds, route_for, verified_bounds
from privacy.budget import rho_to_units_ceil
from privacy.opendp_setup import opendp
from privacy.plan import person_distance, plan_query
from privacy.query import QuerySpec
from privacy.query_route import QueryRoute, has_fast_form
from privacy.schema import ColumnKind, PeriodBound
from privacy.validate import validate_query

INCIDENTS = SCHEMA.dataset("incidents")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fast") / "incidents.parquet"
    build_snapshot(path, 3_000)
    return path


@pytest.mark.parametrize("name", list(QUERIES))
def test_every_bench_query_costs_the_full_plans_privacy_map_on_both_routes(
    name: str, snapshot: Path
) -> None:
    make_spec: Callable[[], QuerySpec] = QUERIES[name]
    query = validate_query(make_spec(), SCHEMA, LIMITS)
    full = plan_query(query, SCHEMA, snapshot, QueryRoute.OPENDP)
    fast = plan_query(query, SCHEMA, snapshot, QueryRoute.FAST)
    assert fast.route is QueryRoute.FAST
    opendp_map = full._measurement.map(person_distance(opendp()))
    assert fast.cost_units == full.cost_units == rho_to_units_ceil(opendp_map)
    assert fast.expected == full.expected


BENCH_CHARGES = {
    "count by year x county": (500_000, (("count", 2.000000002),)),
    "count by primary_cause": (500_000, (("count", 2.000000002),)),
    "sum of child_age_months": (500_000, (("sum", 430.00000043000006),)),
    "mean of child_age_months": (
        500_000,
        (("centred_sum", 271.28002958876766), ("count", 3.305783307173706), ("mean", 0.0)),
    ),
    "median of child_age_months": (500_000, (("q0.5", 2.000000002),)),
}
"""Charge (micro-rho) and noise scales of every bench query, as main planned them before
the fast route's measurements were cached per scale (commit 5c6305f): unchanged."""


@pytest.mark.parametrize("name", list(QUERIES))
def test_every_bench_query_keeps_its_charge_and_scales_on_both_routes(
    name: str, snapshot: Path
) -> None:
    query = validate_query(QUERIES[name](), SCHEMA, LIMITS)
    for route in QueryRoute:
        plan = plan_query(query, SCHEMA, snapshot, route)
        charged = (plan.cost_units, tuple((e.name, e.scale) for e in plan.expected))
        assert charged == BENCH_CHARGES[name]


@pytest.mark.parametrize("name", list(QUERIES))
def test_both_routes_release_every_cell_with_the_same_noise_description(
    name: str, snapshot: Path
) -> None:
    query = validate_query(QUERIES[name](), SCHEMA, LIMITS)
    releases = [
        plan_query(query, SCHEMA, snapshot, route).release(node="n", snapshot_id="s")
        for route in QueryRoute
    ]
    full, fast = releases
    assert [cell.key for cell in fast.cells] == [cell.key for cell in full.cells]
    assert len(fast.cells) == len(query.cell_keys())
    for fast_cell, full_cell in zip(fast.cells, full.cells, strict=True):
        described = [(e.name, e.distribution, e.scale) for e in fast_cell.estimates]
        assert described == [(e.name, e.distribution, e.scale) for e in full_cell.estimates]
    assert fast.mechanism_summary() == full.mechanism_summary()


def test_a_query_without_a_fast_form_takes_the_full_route(snapshot: Path) -> None:
    query = validate_query(QUERIES["sum of child_age_months"](), SCHEMA, LIMITS)
    assert query.measured is not None
    as_float = query.measured.model_copy(update={"kind": ColumnKind.FLOAT})
    float_query = dataclasses.replace(query, measured=as_float)
    assert has_fast_form(query)
    assert not has_fast_form(float_query)
    assert plan_query(query, SCHEMA, snapshot, QueryRoute.FAST).route is QueryRoute.FAST
    # a mean whose centred sum fits Int64 (OpenDP builds it) but whose plain sum over
    # max_length rows could overflow (the fast route sums plainly): OpenDP's own plan
    mean = validate_query(QUERIES["mean of child_age_months"](), SCHEMA, LIMITS)
    assert mean.measured is not None
    wide = dataclasses.replace(mean, measured=mean.measured.model_copy(update={"upper": 1e10}))
    assert plan_query(mean, SCHEMA, snapshot, QueryRoute.FAST).route is QueryRoute.FAST
    assert plan_query(wide, SCHEMA, snapshot, QueryRoute.FAST).route is QueryRoute.OPENDP
    items = ("io_policy", "io_practice")
    multi_item = validate_query(
        QUERIES["count by primary_cause"]().model_copy(update={"items": items}), SCHEMA, LIMITS
    )
    plan = plan_query(multi_item, SCHEMA, snapshot, QueryRoute.FAST)
    assert plan.route is QueryRoute.OPENDP
    assert len(plan.release(node="n", snapshot_id="s").cells) == 12 * len(items)  # cause x item


def test_quantiles_with_their_count_of_known_values_take_the_full_route(snapshot: Path) -> None:
    """The count released for value intervals has no fast form: a node set to `fast` must
    not plan it there (it did, and the release then failed after its charge)."""
    spec = QUERIES["median of child_age_months"]().model_copy(update={"quantile_count": True})
    query = validate_query(spec, SCHEMA, LIMITS)
    assert not has_fast_form(query)
    plan = plan_query(query, SCHEMA, snapshot, QueryRoute.FAST)
    assert plan.route is QueryRoute.OPENDP
    release = plan.release(node="n", snapshot_id="s")
    assert all("count" in [e.name for e in cell.estimates] for cell in release.cells)


def test_the_fast_route_needs_the_manifest_to_record_the_declared_bounds() -> None:
    recorded = declared_bounds(INCIDENTS)
    assert route_for(QueryRoute.FAST, recorded, INCIDENTS) is QueryRoute.FAST
    assert route_for(QueryRoute.OPENDP, recorded, INCIDENTS) is QueryRoute.OPENDP
    assert route_for(QueryRoute.FAST, None, INCIDENTS) is QueryRoute.OPENDP
    looser = INCIDENTS.model_copy(update={"max_rows_per_unit": 3})
    assert route_for(QueryRoute.FAST, recorded, looser) is QueryRoute.OPENDP
    tighter = INCIDENTS.model_copy(
        update={"max_rows_per_period": (PeriodBound(period="year", max_rows=1),)}
    )
    assert route_for(QueryRoute.FAST, recorded, tighter) is QueryRoute.OPENDP


def _reports_rows(days: int, age: int = 10) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"child_id": "c", "report_date": date(2020, 1, day), "child_age_months": age}
            for day in range(1, days + 1)
        ]
    )


def test_the_manifest_records_only_bounds_every_row_satisfies() -> None:
    reports = SCHEMA.dataset("reports")  # at most 2 rows a month, 4 a year, 8 in total
    assert verified_bounds(reports, _reports_rows(2)) == declared_bounds(reports)
    assert verified_bounds(reports, _reports_rows(3)) is None  # 3 in one month
    assert verified_bounds(reports, _reports_rows(2, age=216)) is None  # above [0, 215]
    assert verified_bounds(reports, _reports_rows(2, age=-1)) is None
    assert declared_bounds(reports)["value_bounds"]["child_age_months"] == [0, 215]
