"""`npcs query --dry-run`: what a query would cost and how accurate it would be.

Nothing is released and nothing is charged. Each node states its cost and the noise
distribution and scale of each value; the partnership's expected accuracy follows from
the summed noise variances. `PreviewReport` is the JSON document of `npcs query --dry-run
--format json` (schema "npcs.preview.v1", docs/analyst-guide.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from coordinator.pooling import half_width_for_std
from coordinator.report import PARTNERSHIP_SOURCE, FrozenModel, NodeStatus

PREVIEW_FORMAT: Literal["npcs.preview.v1"] = "npcs.preview.v1"


class ExpectedRow(FrozenModel):
    """`--dry-run`: the expected 95% half-width of one value at one node (or pooled)."""

    source: str
    name: str
    distribution: str
    scale: float | None
    ci_half_width: float | None


class PreviewReport(FrozenModel):
    format: Literal["npcs.preview.v1"] = PREVIEW_FORMAT
    query_id: str
    partnership: str
    dataset: str
    statistic: str
    query: dict[str, object]
    nodes: tuple[NodeStatus, ...]
    remaining_units: dict[str, int]
    expected: tuple[ExpectedRow, ...]

    @property
    def all_answered(self) -> bool:
        return all(status.answered for status in self.nodes)


def pooled_expected(rows: Sequence[ExpectedRow], confidence: float = 0.95) -> list[ExpectedRow]:
    """The partnership's expected half-width per value name, from summed noise variances."""
    names: dict[str, list[ExpectedRow]] = {}
    for row in rows:
        names.setdefault(row.name, []).append(row)
    pooled: list[ExpectedRow] = []
    for name, group in names.items():
        variances = [_expected_variance(row) for row in group]
        if any(v is None for v in variances):
            continue
        std = math.sqrt(math.fsum(v for v in variances if v is not None))
        pooled.append(
            ExpectedRow(
                source=PARTNERSHIP_SOURCE,
                name=name,
                distribution="gaussian" if len(group) > 1 else group[0].distribution,
                scale=std,
                ci_half_width=half_width_for_std(std, confidence),
            )
        )
    return pooled


def _expected_variance(row: ExpectedRow) -> float | None:
    if row.scale is None:
        return None
    if row.distribution == "gaussian":
        return row.scale**2
    if row.distribution == "laplace":
        return 2 * row.scale**2
    return None
