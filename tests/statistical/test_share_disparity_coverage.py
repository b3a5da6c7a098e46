"""Shares, rate ratios and disproportionality indices cover the truth 95% +/- 1.5%.

Three nodes hold small `reports` snapshots (Parquet). Each node's query (count of
reports in 2023 by race_ethnicity and recurrence_12m) is planned and released once by
OpenDP, which gives the noise scale the node reports. The truth is computed from the
snapshots with Polars. Each trial then re-draws every node's cells with OpenDP's own
discrete Gaussian sampler at that scale (the same mechanism the node's count uses; one
release per trial through the planner would take hours), builds the report exactly as
`npcs query` does (pooled rows, group populations), and computes the shares and the
disparity measures from it.

Checked, per node and for the partnership: the recurrence share among one group's
victims, and one group's rate ratio to the reference group and its disproportionality
index (a small group, so small counts are covered). 12 checks at N = 8,000 trials:
a check fails by chance when its observed coverage is more than 1.5 points from 95%,
i.e. 6 standard errors: below 1e-8 per check.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

import polars as pl
import pytest
from support_data import TEST_SCHEMA, write_snapshot

from coordinator.disparity import compute_disparity
from coordinator.report import PARTNERSHIP_SOURCE, NodeStatus, Report, build_report
from coordinator.shares import compute_shares
from privacy.budget import rho_to_units_ceil
from privacy.opendp_setup import opendp
from privacy.plan import plan_query
from privacy.population import PopulationTable, build_table
from privacy.query import DateRangeFilter, GroupByColumn, PrivacyLoss, QuerySpec, Statistic
from privacy.release import Cell, Estimate, Release
from privacy.schema import PARTNERSHIP_SCHEMA
from privacy.validate import QueryLimits, validate_query

pytestmark = pytest.mark.slow

TRIALS = 8000
BAND = 0.015
RHO = Decimal("0.5")
GROUP = "aian"
"""The group checked: few reports at every node, so its counts are small."""
REFERENCE = "white"
RACES = ("white", "black", "hispanic", "aian", "asian")
NODES: Mapping[str, Mapping[str, tuple[int, int]]] = {
    # node -> race -> (reports without recurrence, with recurrence)
    "north": {"white": (300, 30), "black": (140, 25), "hispanic": (90, 9), "aian": (40, 8),
              "asian": (25, 2)},
    "south": {"white": (120, 10), "black": (160, 30), "hispanic": (60, 12), "aian": (24, 5),
              "asian": (10, 1)},
    "tribe": {"white": (40, 3), "black": (3, 1), "hispanic": (4, 1), "aian": (40, 9),
              "asian": (1, 0)},
}  # fmt: skip
POPULATIONS: Mapping[str, Mapping[str, int]] = {
    "north": {"white": 90_000, "black": 25_000, "hispanic": 30_000, "aian": 2_000,
              "asian": 8_000},
    "south": {"white": 40_000, "black": 30_000, "hispanic": 20_000, "aian": 1_500,
              "asian": 3_000},
    "tribe": {"white": 1_500, "black": 300, "hispanic": 600, "aian": 6_000, "asian": 100},
}  # fmt: skip


def _spec() -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="reports",
        statistic=Statistic.COUNT,
        group_by=(GroupByColumn(column="race_ethnicity"), GroupByColumn(column="recurrence_12m")),
        filters=(
            DateRangeFilter(column="report_date", start=date(2023, 1, 1), end=date(2023, 12, 31)),
        ),
        privacy=PrivacyLoss(rho=RHO),
        purpose="coverage of shares and disparities",
    )


def _rows(counts: Mapping[str, tuple[int, int]]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for race, (without, with_recurrence) in counts.items():
        for index in range(without + with_recurrence):
            rows.append(
                {
                    "report_date": date(2023, 1 + index % 12, 1 + index % 28),
                    "race_ethnicity": race,
                    "recurrence_12m": index < with_recurrence,
                }
            )
    return rows


def _table(node: str) -> PopulationTable:
    return build_table(
        "test census",
        [("2023", "race_ethnicity", race, str(p)) for race, p in POPULATIONS[node].items()],
    )


class Federation:
    def __init__(self, spec: QuerySpec, releases: dict[str, Release], truth: pl.DataFrame):
        self.spec = spec
        self.releases = releases
        self.truth = truth
        self.tables = {node: _table(node) for node in releases}

    def truth_count(self, node: str | None, race: str, recurrence: bool | None = None) -> int:
        frame = self.truth.filter(pl.col("race_ethnicity") == race)
        if node is not None:
            frame = frame.filter(pl.col("node") == node)
        if recurrence is not None:
            frame = frame.filter(pl.col("recurrence_12m") == recurrence)
        return int(frame["n"].sum())

    def population(self, node: str | None, race: str) -> int:
        nodes = [node] if node is not None else list(self.releases)
        return sum(POPULATIONS[n][race] for n in nodes)

    def report(self, noisy: dict[str, list[int]]) -> Report:
        releases = {
            node: release.model_copy(update={"cells": _with_values(release, noisy[node])})
            for node, release in self.releases.items()
        }
        return build_report(
            spec=self.spec,
            result_id="coverage",
            created_at="2026-01-01T00:00:00+00:00",
            partnership="test",
            statuses=[NodeStatus(node=node, answered=True) for node in releases],
            releases=releases,
            populations={node: {"2023": 200_000} for node in releases},
            group_populations=self.tables,
        )


def _with_values(release: Release, values: list[int]) -> tuple[Cell, ...]:
    cells = []
    for cell, value in zip(release.cells, values, strict=True):
        (estimate,) = cell.estimates
        cells.append(cell.model_copy(update={"estimates": (_moved(estimate, value),)}))
    return tuple(cells)


def _moved(estimate: Estimate, value: int) -> Estimate:
    half = estimate.ci_high - estimate.value
    return estimate.model_copy(
        update={"value": float(value), "ci_low": value - half, "ci_high": value + half}
    )


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Federation:
    directory = tmp_path_factory.mktemp("snapshots")
    dataset = PARTNERSHIP_SCHEMA.dataset("reports")
    spec = _spec()
    limits = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(Decimal(1)))
    releases: dict[str, Release] = {}
    frames = []
    for node, counts in NODES.items():
        path = write_snapshot(directory / f"{node}.parquet", dataset, _rows(counts))
        plan = plan_query(validate_query(spec, TEST_SCHEMA, limits), TEST_SCHEMA, path)
        releases[node] = plan.release(node=node, snapshot_id=node)
        frames.append(
            pl.read_parquet(path)
            .group_by("race_ethnicity", "recurrence_12m")
            .len(name="n")
            .with_columns(pl.lit(node).alias("node"))
        )
    return Federation(spec, releases, pl.concat(frames))


def _truth_cells(federation: Federation, node: str) -> list[int]:
    out = []
    for cell in federation.releases[node].cells:
        race, recurrence = cell.key
        flag = {"true": True, "false": False}.get(recurrence)
        out.append(0 if flag is None else federation.truth_count(node, race, flag))
    return out


@pytest.fixture(scope="module")
def coverage(federation: Federation) -> dict[tuple[str, str], float]:
    """Observed coverage per (measure, source) over TRIALS re-drawn releases."""
    dp = opendp()
    draws: dict[str, list[list[int]]] = {}
    for node, release in federation.releases.items():
        scale = release.cells[0].estimates[0].scale
        truths = _truth_cells(federation, node)
        measurement = dp.m.make_gaussian(
            dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=scale
        )
        flat: list[int] = measurement(truths * TRIALS)
        width = len(truths)
        draws[node] = [flat[i * width : (i + 1) * width] for i in range(TRIALS)]
    sources = [*federation.releases, PARTNERSHIP_SOURCE]
    truth = {source: _true_measures(federation, source) for source in sources}
    hits = dict.fromkeys(((m, s) for m in ("share", "ratio", "index") for s in sources), 0)
    for trial in range(TRIALS):
        report = federation.report({node: draws[node][trial] for node in federation.releases})
        for row in compute_shares(report, "recurrence_12m").rows:
            if row.key == (GROUP,):
                hits["share", row.source] += _covers(row.ci_low, row.ci_high, truth[row.source][0])
        for drow in compute_disparity(report, reference=REFERENCE).rows:
            if drow.group != GROUP or drow.key != ("false",):
                continue
            expected = truth[drow.source]
            hits["ratio", drow.source] += _covers(
                drow.rate_ratio_low, drow.rate_ratio_high, expected[1]
            )
            hits["index", drow.source] += _covers(drow.index_low, drow.index_high, expected[2])
    return {key: count / TRIALS for key, count in hits.items()}


def _covers(low: float | None, high: float | None, truth: float) -> bool:
    return (low if low is not None else 0.0) <= truth <= (high if high is not None else 1e300)


def _true_measures(federation: Federation, source: str) -> tuple[float, float, float]:
    """Truth for GROUP at `source`: recurrence share, rate ratio and index (all reports)."""
    node = None if source == PARTNERSHIP_SOURCE else source
    recurrences = federation.truth_count(node, GROUP, True)
    reports = federation.truth_count(node, GROUP)
    # Disparity is of the count by race *within* each recurrence_12m value: check "false".
    events = {race: federation.truth_count(node, race, False) for race in RACES}
    rates = {race: events[race] / federation.population(node, race) for race in RACES}
    share_of_events = events[GROUP] / sum(events.values())
    share_of_children = federation.population(node, GROUP) / sum(
        federation.population(node, race) for race in RACES
    )
    return (
        recurrences / reports,
        rates[GROUP] / rates[REFERENCE],
        share_of_events / share_of_children,
    )


@pytest.mark.parametrize("measure", ["share", "ratio", "index"])
def test_coverage_is_95_percent_per_node_and_pooled(
    coverage: dict[tuple[str, str], float], measure: str
) -> None:
    observed = {source: value for (m, source), value in coverage.items() if m == measure}
    assert len(observed) == len(NODES) + 1
    for source, value in observed.items():
        assert abs(value - 0.95) <= BAND, (measure, source, value)
