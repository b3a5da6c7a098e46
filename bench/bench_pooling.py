"""Pooled partnership count error against its theoretical minimum, from real node releases.

Builds a few node folders with synthetic `incidents` data (different sizes), and releases
a count by county and year at every node many times, in-process: each release is planned
and run by the node's own code (validate_query -> plan_query -> QueryPlan.release: the
OpenDP measurement over the node's Parquet snapshot), without gRPC or the ledger, so that
thousands of releases take a minute. The releases are pooled by the coordinator's
production code (coordinator.pooling.pool_cell) and compared with true counts computed
from the same snapshots.

The theoretical minimum error of a pooled count is the standard deviation of the sum of
the independent per-node noises, sqrt(sum sigma_i^2), with sigma_i the scale OpenDP
reports for node i. Reported: empirical RMS error / that minimum (DESIGN.md section 10
target: <= 1.05), the coverage of the pooled 95% interval, the mean error (bias), and the
width of the pooled interval next to the naive one (sum of the nodes' half-widths).

Two scenarios: "uniform" (every node spends the same rho, as `npcs query` asks) and
"mixed" (different rho per node, so the pooled variance adds unequal terms).

Prints the ratios and writes bench/results/pooling.json. Not a test.

    python bench/bench_pooling.py [--rounds 3000] [--nodes 4]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import polars as pl
from support_node import COUNTIES, FIRST_YEAR, LAST_YEAR, make_node_world

from coordinator.pooling import half_width_for_std, pool_cell
from node.layout import NodePaths
from node.node_ledger import budget_policy
from node.settings import load_settings
from node.store import DataStore, Snapshot, node_schema
from privacy.plan import plan_query
from privacy.query import (
    DateRangeFilter,
    GroupByColumn,
    GroupByTime,
    PrivacyLoss,
    QuerySpec,
    Statistic,
    TimeBucket,
)
from privacy.release import Estimate, Release
from privacy.schema import Schema
from privacy.validate import QueryLimits, validate_query

RESULTS = Path(__file__).with_name("results") / "pooling.json"
TARGET_RATIO = 1.05
NODE_CHILDREN = (20_000, 50_000, 120_000, 300_000, 80_000, 10_000)
SCENARIOS: dict[str, tuple[str, ...]] = {
    "uniform": ("0.01",),
    "mixed": ("0.002", "0.01", "0.05", "0.2"),
}


@dataclass(frozen=True)
class BenchNode:
    """One node's query path, in-process: its schema, limits and current snapshot."""

    name: str
    schema: Schema
    limits: QueryLimits
    snapshot: Snapshot

    def release(self, rho: str) -> Release:
        """Validate, plan and release one count, exactly as the node's engine does."""
        validated = validate_query(count_by_county_and_year(rho), self.schema, self.limits)
        plan = plan_query(validated, self.schema, self.snapshot.path)
        return plan.release(node=self.name, snapshot_id=self.snapshot.snapshot_id)


def count_by_county_and_year(rho: str) -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        group_by=(
            GroupByColumn(column="county"),
            GroupByTime(column="incident_date", bucket=TimeBucket.YEAR),
        ),
        filters=(
            DateRangeFilter(
                column="incident_date",
                start=date(FIRST_YEAR, 1, 1),
                end=date(LAST_YEAR, 12, 31),
            ),
        ),
        privacy=PrivacyLoss(rho=Decimal(rho)),
        purpose="benchmark",
    )


def open_node(root: Path) -> BenchNode:
    settings = load_settings(root)
    schema = node_schema(settings)
    snapshot = DataStore(NodePaths(root), schema).current("incidents")
    assert snapshot is not None, f"node {root} has no incidents snapshot"
    return BenchNode(
        name=settings.name,
        schema=schema.with_local_domains({"county": tuple(settings.counties)}),
        limits=QueryLimits(
            max_rho_units_per_query=budget_policy(settings.budget).max_units_per_query
        ),
        snapshot=snapshot,
    )


def true_counts(snapshot: Snapshot) -> dict[tuple[str, ...], int]:
    """Exact counts by (county, year) over the snapshot: what the release estimates."""
    frame = (
        pl.scan_parquet(snapshot.path)
        .filter(pl.col("incident_date").is_between(date(FIRST_YEAR, 1, 1), date(LAST_YEAR, 12, 31)))
        .group_by(pl.col("county"), pl.col("incident_date").dt.year().alias("year"))
        .len()
        .collect()
    )
    counts = {(row["county"], str(row["year"])): int(row["len"]) for row in frame.to_dicts()}
    return {
        (county, str(year)): counts.get((county, str(year)), 0)
        for county in COUNTIES
        for year in range(FIRST_YEAR, LAST_YEAR + 1)
    }


@dataclass
class Tally:
    """Pooled errors and interval hits, and each node's own errors in units of its sigma."""

    errors: list[float] = field(default_factory=list)
    covered: int = 0
    node_z: list[float] = field(default_factory=list)
    reported_std_over_theory: list[float] = field(default_factory=list)


def run_scenario(
    nodes: Sequence[BenchNode],
    truth: Sequence[dict[tuple[str, ...], int]],
    rhos: Sequence[str],
    rounds: int,
) -> dict[str, Any]:
    node_rho = [rhos[i % len(rhos)] for i in range(len(nodes))]
    tally = Tally()
    theory_std = math.nan
    naive_half_width = math.nan
    started = time.perf_counter()
    for _ in range(rounds):
        releases = [node.release(rho) for node, rho in zip(nodes, node_rho, strict=True)]
        cells = [{cell.key: cell.estimates for cell in release.cells} for release in releases]
        for key in cells[0]:
            per_node: list[Sequence[Estimate]] = [by_key[key] for by_key in cells]
            counts = [next(e for e in estimates if e.name == "count") for estimates in per_node]
            sigmas = [estimate.scale for estimate in counts]  # OpenDP's per-node noise scale
            theory_std = math.sqrt(math.fsum(s * s for s in sigmas))
            naive_half_width = math.fsum(e.ci_high - e.value for e in counts)
            for estimate, node_truth, sigma in zip(counts, truth, sigmas, strict=True):
                tally.node_z.append((estimate.value - node_truth[key]) / sigma)
            pooled = next(v for v in pool_cell(per_node) if v.name == "count")
            exact = sum(node_truth[key] for node_truth in truth)
            tally.errors.append(pooled.value - exact)
            tally.covered += pooled.ci_low <= exact <= pooled.ci_high
            assert pooled.std is not None
            tally.reported_std_over_theory.append(pooled.std / theory_std)
    elapsed = time.perf_counter() - started
    samples = len(tally.errors)
    rms = math.sqrt(math.fsum(e * e for e in tally.errors) / samples)
    ratio = rms / theory_std
    # For Gaussian errors the RMS has relative standard error ~ 1 / sqrt(2 n).
    ratio_se = ratio / math.sqrt(2 * samples)
    node_rms_z = math.sqrt(math.fsum(z * z for z in tally.node_z) / len(tally.node_z))
    return {
        "node_rho": node_rho,
        "rounds": rounds,
        "pooled_samples": samples,
        "theoretical_min_std": round(theory_std, 3),
        "empirical_rms_error": round(rms, 3),
        "ratio_rms_over_min": round(ratio, 4),
        "ratio_standard_error": round(ratio_se, 4),
        "meets_target": ratio <= TARGET_RATIO,
        "reported_std_over_min": round(max(tally.reported_std_over_theory), 6),
        "mean_error": round(statistics.fmean(tally.errors), 3),
        "mean_error_standard_error": round(rms / math.sqrt(samples), 3),
        "coverage_95": round(tally.covered / samples, 4),
        "coverage_standard_error": round(math.sqrt(0.95 * 0.05 / samples), 4),
        "per_node_rms_error_over_sigma": round(node_rms_z, 4),
        "pooled_half_width": round(half_width_for_std(theory_std), 3),
        "naive_half_width_sum_of_nodes": round(naive_half_width, 3),
        "releases_per_second": round(rounds * len(nodes) / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--nodes", type=int, default=4, choices=range(2, 7))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-pooling-") as scratch:
        started = time.perf_counter()
        nodes = [
            open_node(
                make_node_world(
                    Path(scratch) / f"p{i}", node_name=f"p{i}", children=NODE_CHILDREN[i]
                ).node.root
            )
            for i in range(args.nodes)
        ]
        truth = [true_counts(node.snapshot) for node in nodes]
        setup_s = time.perf_counter() - started
        scenarios = {
            name: run_scenario(nodes, truth, rhos, args.rounds) for name, rhos in SCENARIOS.items()
        }
        rows = [node.snapshot.rows for node in nodes]

    result: dict[str, Any] = {
        "benchmark": "pooled partnership count error vs sqrt(sum of per-node noise variances)",
        "query": "count of incidents by county (3) x year (5): 15 cells per release",
        "nodes": args.nodes,
        "rows_per_node": rows,
        "target_ratio": TARGET_RATIO,
        "scenarios": scenarios,
        "setup_s": round(setup_s, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{args.nodes} nodes, rows {rows}, {args.rounds} rounds x 15 cells")
    for name, numbers in scenarios.items():
        print(
            f"{name:8s} rho {','.join(numbers['node_rho'])}: "
            f"RMS {numbers['empirical_rms_error']:.2f}"
            f" / min {numbers['theoretical_min_std']:.2f} = {numbers['ratio_rms_over_min']:.4f}"
            f" (+/- {numbers['ratio_standard_error']:.4f}; target <= {TARGET_RATIO}), "
            f"95% coverage {numbers['coverage_95']:.4f}, bias {numbers['mean_error']:+.2f}, "
            f"half-width pooled {numbers['pooled_half_width']:.1f} vs naive "
            f"{numbers['naive_half_width_sum_of_nodes']:.1f}"
        )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
