"""Coordinator reports built from releases written by hand, as if every node answered."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from coordinator.report import NodeStatus, Report, build_report
from privacy.population import PopulationTable
from privacy.query import QuerySpec
from privacy.release import Cell, Release


def answered_report(
    spec: QuerySpec,
    cells_by_node: Mapping[str, Sequence[Cell]],
    *,
    populations: Mapping[str, Mapping[str, int]] | None = None,
    group_populations: Mapping[str, PopulationTable] | None = None,
) -> Report:
    """The report of `spec` in which each node answered with its cells, in the given order."""
    releases = {
        node: Release(
            query_id=str(spec.query_id),
            node=node,
            dataset=spec.dataset,
            statistic=spec.statistic.value,
            group_columns=tuple(group.column for group in spec.group_by),
            cells=tuple(cells),
            cost_units=10_000,
            snapshot_id="s",
            opendp_version="0.16.0",
        )
        for node, cells in cells_by_node.items()
    }
    return build_report(
        spec=spec,
        result_id=str(uuid.uuid4()),
        created_at="2026-01-01T00:00:00+00:00",
        partnership="p",
        statuses=[NodeStatus(node=node, answered=True) for node in releases],
        releases=releases,
        populations=populations,
        group_populations=group_populations,
    )
