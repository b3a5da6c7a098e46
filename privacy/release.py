"""What a node releases: noisy values, each with its noise and its 95% interval.

A release is the answer to one query at one node. Its cells cover every public group
key (noisy zeros included). Each released number records the noise distribution and
scale OpenDP added, so the coordinator can pool nodes exactly (sums of Gaussians are
Gaussian) and anyone can recompute the interval.
"""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class NoiseDistribution(StrEnum):
    GAUSSIAN = "gaussian"
    """Additive Gaussian noise with standard deviation `scale` (counts, sums under zCDP)."""
    LAPLACE = "laplace"
    """Additive Laplace noise with scale `scale`."""
    NONE = "none"
    """Post-processed from other released values (e.g. a mean = noisy sum / noisy count)."""
    RANK = "rank"
    """A quantile chosen by a score-based mechanism; `scale` is the score noise scale and
    the interval is in the column's units."""


class Estimate(BaseModel):
    """One released number."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """What it estimates: "count", "sum", "mean", "q0.5", "bin[0,12)" ..."""
    value: float
    distribution: NoiseDistribution
    scale: float
    ci_low: float
    ci_high: float
    suppressed: bool = False
    """True when small-count suppression (post-processing) hid the value in display."""
    rank_error: float | None = None
    """RANK values only: with 95% probability the released candidate's rank score,
    |(1 - p) * #(rows below it) - p * #(rows above it)|, exceeds the best candidate's by
    at most this many rows (privacy/plan.py derives it from the public noise scale and
    candidate grid). None for every other value; omitted from the bytes when None."""


class Cell(BaseModel):
    """The released numbers for one group key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: tuple[str, ...]
    """Group-key values as text, in the query's group-by order (empty when ungrouped)."""
    estimates: tuple[Estimate, ...]


class Release(BaseModel):
    """A node's whole answer to one query."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query_id: str
    node: str
    dataset: str
    statistic: str
    group_columns: tuple[str, ...]
    cells: tuple[Cell, ...]
    cost_units: int
    """What the ledger charged, in micro-rho (privacy/budget.py)."""
    confidence: float = 0.95
    snapshot_id: str
    opendp_version: str

    def to_bytes(self) -> bytes:
        """Canonical bytes: stored in the ledger and returned byte-identical on retry."""
        # exclude_none: releases without the optional rank_error keep their exact bytes
        body = self.model_dump(mode="json", exclude_none=True)
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Release:
        return cls.model_validate_json(data)

    def mechanism_summary(self) -> str:
        """JSON list of (cell key, value name, distribution, scale) for the ledger."""
        rows = [
            {
                "key": list(cell.key),
                "name": estimate.name,
                "distribution": estimate.distribution.value,
                "scale": estimate.scale,
            }
            for cell in self.cells
            for estimate in cell.estimates
        ]
        return json.dumps(rows, sort_keys=True, separators=(",", ":"))
