"""The result of one partnership query, as shown, stored and exported.

`build_report` turns the nodes' releases (and the reasons some nodes did not answer)
into per-node rows, pooled partnership rows, rates per 100,000 children and trends.
`Report` is the stable JSON document of `npcs query --format json` and
`npcs results show --format json` (schema "npcs.result.v1", docs/analyst-guide.md).
The `--dry-run` preview, which releases nothing, is `coordinator.preview`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from coordinator.denominators import NodePopulations, cell_denominator, rate_notes
from coordinator.display import clamp_for_display, upgrade_stored_row
from coordinator.errors import LEDGER_UNTRUSTED
from coordinator.intervals import IntervalKind
from coordinator.measures import column_bounds, discrete_names, never_negative
from coordinator.pooling import PooledValue, noise_variance, pool_cell, z_value
from coordinator.quantile_intervals import with_value_intervals
from coordinator.quantiles import monotone_quantiles
from coordinator.query_text import filters_text, spec_from_report_query
from coordinator.small_area import SmallAreaRow
from coordinator.suppression import Suppression, apply_suppression, without_hidden_points
from coordinator.trend import Point, bucket_position, weighted_slope
from privacy.population import PopulationTable
from privacy.query import ITEM_GROUP_COLUMN, GroupByTime, QuerySpec, Statistic
from privacy.release import Estimate, Release

REPORT_FORMAT: Literal["npcs.result.v1"] = "npcs.result.v1"
PARTNERSHIP_SOURCE = "partnership"
"""The `source` of pooled rows (node names cannot clash: they are checked names, and
a node called "partnership" would be refused by `npcs partnership add-node`)."""
RATE_BASE = 100_000

ReceiptState = Literal["verified", "unverified", "none"]


class FrozenModel(BaseModel):
    """Immutable and strict: the base of the JSON documents the coordinator writes."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeStatus(FrozenModel):
    """What happened at one node."""

    node: str
    answered: bool
    code: str | None = None
    """Why it did not answer, as a short code: UNREACHABLE, DEADLINE_EXCEEDED,
    RESOURCE_EXHAUSTED, PERMISSION_DENIED, INVALID_ARGUMENT, ... (None when answered)."""
    reason: str | None = None
    cost_units: int | None = None
    cost_rho: str | None = None
    receipt: ReceiptState = "none"
    receipt_problem: str | None = None
    entry_index: int | None = None
    checkpoint_size: int | None = None
    replayed: bool = False
    """The node answered from its ledger (a retry of a recorded query_id: no new charge)."""


class ValueRow(FrozenModel):
    """One released or pooled number for one cell (coordinator/display.py)."""

    source: str
    """Node name, or "partnership" for the pooled row."""
    key: tuple[str, ...]
    name: str
    value: float | None
    """The value to show: a count (or other never-negative value) is clamped at 0."""
    std: float | None
    """Standard deviation of the DP noise in the unbiased estimate (None when not additive)."""
    ci_low: float | None
    ci_high: float | None
    """The 95% interval, clamped like `value` (clamping keeps its coverage)."""
    unbiased_estimate: float | None = None
    """The released or pooled noisy value, not clamped: unbiased but possibly negative.
    Use it for arithmetic (sums, ratios, fits); never show it as a count."""
    clamped: bool = False
    """True when the unbiased estimate was below 0 and `value` shows 0 instead."""
    suppressed: bool = False
    """Hidden by a publication rule: every number that could reveal the value is null."""
    suppression: Suppression | None = None
    """Why: "node" (the node flagged its small count) or "complementary" (a pooled row that,
    minus the node rows shown, would give a node-suppressed value back)."""
    approximate: bool = False
    rank_error: float | None = None  # quantiles: the released 95% rank error, in rows
    population: int | None = None
    rate_per_100k: float | None = None
    """The display rate per 100,000 (clamped at 0 like `value`)."""
    rate_ci_low: float | None = None
    rate_ci_high: float | None = None
    unbiased_rate_per_100k: float | None = None
    """The unbiased estimate per 100,000: for arithmetic, like `unbiased_estimate`."""

    @model_validator(mode="before")
    @classmethod
    def _upgrade_stored(cls, data: object) -> object:
        return upgrade_stored_row(data)


class TrendRow(FrozenModel):
    """Slope per year of one series (one source, one non-time key, one value name)."""

    source: str
    key: tuple[str, ...]
    """The cell key without its time bucket."""
    name: str
    slope_per_year: float
    std: float
    ci_low: float
    ci_high: float
    points: int


class Report(FrozenModel):
    format: Literal["npcs.result.v1"] = REPORT_FORMAT
    result_id: str
    query_id: str
    created_at: str
    partnership: str
    dataset: str
    statistic: str
    column: str | None
    group_columns: tuple[str, ...]
    time_group_index: int | None
    """Index in `key` of the time bucket, when the query groups by one."""
    purpose: str
    filters: str = ""
    """The query's filters in `--where` syntax ("none" when unfiltered), so an export
    never loses what its numbers are of (rebuilt from `query` for older results)."""
    confidence: float
    query: dict[str, object]
    """The QuerySpec as JSON (privacy.query.QuerySpec.model_dump(mode="json"))."""
    nodes: tuple[NodeStatus, ...]
    pooled_nodes: tuple[str, ...]
    """The nodes whose answers the partnership rows add up."""
    rows: tuple[ValueRow, ...]
    trends: tuple[TrendRow, ...]
    rate_notes: tuple[str, ...] = ()
    """Where a count has no rate and why (coordinator/denominators.py)."""
    interval: IntervalKind = "dp"  # what intervals cover (coordinator/intervals.py)
    small_area: tuple[SmallAreaRow, ...] = ()  # --small-area (coordinator/small_area.py)

    @model_validator(mode="before")
    @classmethod
    def _filters_of_stored(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("filters"):
            spec = spec_from_report_query(data.get("query") or {})
            return {**data, "filters": "unknown" if spec is None else filters_text(spec)}
        return data

    @property
    def all_answered(self) -> bool:
        return all(status.answered for status in self.nodes)

    @property
    def untrusted_nodes(self) -> tuple[str, ...]:
        """Nodes whose answer was withheld: their ledger went back on the remembered one."""
        return tuple(s.node for s in self.nodes if s.code == LEDGER_UNTRUSTED)

    @property
    def unverified_nodes(self) -> tuple[str, ...]:
        return tuple(s.node for s in self.nodes if s.answered and s.receipt != "verified")


# --- building -----------------------------------------------------------------------


def time_group_index(spec: QuerySpec) -> int | None:
    for index, group in enumerate(spec.group_by):
        if isinstance(group, GroupByTime):
            return index
    return None


def group_column_labels(spec: QuerySpec) -> tuple[str, ...]:
    """The key columns of the query's cells: its group-bys, then the item of a multi-item
    query (each item is its own cell, so it is pooled on its own)."""
    labels = tuple(
        f"{g.column}:{g.bucket.value}" if isinstance(g, GroupByTime) else g.column
        for g in spec.group_by
    )
    return (*labels, ITEM_GROUP_COLUMN) if spec.items else labels


def build_report(
    *,
    spec: QuerySpec,
    result_id: str,
    created_at: str,
    partnership: str,
    statuses: Sequence[NodeStatus],
    releases: Mapping[str, Release],
    populations: Mapping[str, Mapping[str, int]] | None = None,
    group_populations: Mapping[str, PopulationTable] | None = None,
) -> Report:
    """Per-node and pooled rows (with rates and trends) for the nodes that answered.

    `releases` maps node name to its release, in the order nodes should be listed;
    `populations` maps node name to its public child population by year, and
    `group_populations` to its populations by year and group (coordinator/denominators.py).
    """
    published = {
        node: NodePopulations(
            by_year=(populations or {}).get(node, {}),
            by_group=(group_populations or {}).get(node),
        )
        for node in releases
    }
    no_rate: dict[str, set[str]] = {}
    confidence = _confidence(releases)
    time_index = time_group_index(spec)
    counts = spec.statistic in (Statistic.COUNT, Statistic.HISTOGRAM)
    mean_bounds = column_bounds(spec)
    discrete = discrete_names(spec, _value_names(releases))
    rows: list[ValueRow] = []
    for key, per_node in _cells_by_key(releases).items():
        denominators = {
            node: cell_denominator(spec, key, time_index, published[node]) for node in releases
        }
        year_populations = {node: d.population for node, d in denominators.items()}
        if counts:
            for node, denominator in denominators.items():
                if denominator.reason is not None:
                    no_rate.setdefault(node, set()).add(denominator.reason)
        for node, estimates in per_node.items():
            rows += [
                _node_row(node, key, e, year_populations[node] if counts else None)
                for e in estimates
            ]
        if len(per_node) != len(releases):
            continue  # a node lacks this cell: a partial sum would understate the total
        pooled_population = _pooled_population(year_populations, per_node) if counts else None
        rows += [
            _pooled_row(key, value, pooled_population)
            for value in pool_cell(list(per_node.values()), confidence, mean_bounds, discrete)
        ]
    rows = [clamp_for_display(row) if never_negative(spec, row.name) else row for row in rows]
    rows = with_value_intervals(monotone_quantiles(rows))
    trends = compute_trends(rows, time_index, confidence)
    rows = apply_suppression(rows, PARTNERSHIP_SOURCE)
    return Report(
        result_id=result_id,
        query_id=str(spec.query_id),
        created_at=created_at,
        partnership=partnership,
        dataset=spec.dataset,
        statistic=spec.statistic.value,
        column=spec.column,
        group_columns=group_column_labels(spec),
        time_group_index=time_index,
        purpose=spec.purpose,
        filters=filters_text(spec),
        confidence=confidence,
        query=spec.model_dump(mode="json"),
        nodes=tuple(statuses),
        pooled_nodes=tuple(releases),
        rows=tuple(rows),
        trends=tuple(without_hidden_points(trends, rows, time_index)),
        rate_notes=rate_notes(no_rate),
    )


def _value_names(releases: Mapping[str, Release]) -> set[str]:
    return {e.name for r in releases.values() for cell in r.cells for e in cell.estimates}


def _confidence(releases: Mapping[str, Release]) -> float:
    levels = {release.confidence for release in releases.values()}
    return levels.pop() if len(levels) == 1 else 0.95


def _cells_by_key(
    releases: Mapping[str, Release],
) -> dict[tuple[str, ...], dict[str, tuple[Estimate, ...]]]:
    cells: dict[tuple[str, ...], dict[str, tuple[Estimate, ...]]] = {}
    for node, release in releases.items():
        for cell in release.cells:
            cells.setdefault(cell.key, {})[node] = cell.estimates
    return cells


def _node_row(
    node: str, key: tuple[str, ...], estimate: Estimate, population: int | None
) -> ValueRow:
    variance = noise_variance(estimate)
    row = ValueRow(
        source=node,
        key=key,
        name=estimate.name,
        value=estimate.value,
        unbiased_estimate=estimate.value,
        std=None if variance is None else math.sqrt(variance),
        ci_low=estimate.ci_low,
        ci_high=estimate.ci_high,
        suppressed=estimate.suppressed,
        rank_error=estimate.rank_error,
    )
    return _with_rate(row, population) if variance is not None else row


def _pooled_row(key: tuple[str, ...], value: PooledValue, population: int | None) -> ValueRow:
    finite = math.isfinite(value.value)
    row = ValueRow(
        source=PARTNERSHIP_SOURCE,
        key=key,
        name=value.name,
        value=value.value if finite else None,
        unbiased_estimate=value.value if finite else None,
        std=value.std,
        ci_low=value.ci_low if math.isfinite(value.ci_low) else None,
        ci_high=value.ci_high if math.isfinite(value.ci_high) else None,
        approximate=value.approximate,
    )
    return _with_rate(row, population) if value.name != "mean" else row


def _with_rate(row: ValueRow, population: int | None) -> ValueRow:
    if not population or population <= 0 or row.value is None:
        return row
    factor = RATE_BASE / population
    return row.model_copy(
        update={
            "population": population,
            "rate_per_100k": row.value * factor,
            "unbiased_rate_per_100k": row.value * factor,
            "rate_ci_low": None if row.ci_low is None else row.ci_low * factor,
            "rate_ci_high": None if row.ci_high is None else row.ci_high * factor,
        }
    )


def _pooled_population(
    year_populations: Mapping[str, int | None], per_node: Mapping[str, object]
) -> int | None:
    needed = [year_populations.get(node) for node in per_node]
    if not needed or any(p is None for p in needed):
        return None
    return sum(p for p in needed if p is not None)


def compute_trends(
    rows: Sequence[ValueRow], time_index: int | None, confidence: float = 0.95
) -> list[TrendRow]:
    """WLS slope per year for each (source, non-time key, name) series with noise known.

    Fitted to the unbiased estimates: clamped display values would bias the slope.
    """
    if time_index is None:
        return []
    series: dict[tuple[str, tuple[str, ...], str], list[Point]] = {}
    for row in rows:
        position = bucket_position(row.key[time_index])
        value = row.unbiased_estimate
        if value is None or row.std is None or row.std <= 0 or position is None:
            continue
        rest = row.key[:time_index] + row.key[time_index + 1 :]
        series.setdefault((row.source, rest, row.name), []).append(
            Point(x=position, y=value, variance=row.std**2)
        )
    trends: list[TrendRow] = []
    for (source, rest, name), points in series.items():
        slope = weighted_slope(points, confidence)
        if slope is None:
            continue
        trends.append(
            TrendRow(
                source=source,
                key=rest,
                name=name,
                slope_per_year=slope.per_year,
                std=slope.std,
                ci_low=slope.ci_low,
                ci_high=slope.ci_high,
                points=slope.points,
            )
        )
    return trends


__all__ = [
    "PARTNERSHIP_SOURCE",
    "FrozenModel",
    "NodeStatus",
    "Report",
    "TrendRow",
    "ValueRow",
    "build_report",
    "compute_trends",
    "z_value",
]
