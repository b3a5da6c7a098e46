"""The manifest's record that a snapshot satisfies its dataset's contribution bounds.

Ingest truncates each person's rows to the schema's bounds (node/truncation.py); before
the snapshot is stored, the kept rows are checked again, independently of how they were
cut: no person has more than `max_rows_per_unit` rows, nor more than a period bound's
rows in any one calendar period (rows without a date count as one period). When every
check holds, the manifest records which bounds were verified (`bounds_verified`: the
privacy unit, the period column, the total and per-period numbers). The node serves a
snapshot only while its file has the manifest's sha256 (node/snapshot_checks.py), so the
record describes the bytes being served.

The fast route (privacy/fast_release.py) is allowed only when the record equals the
bounds the dataset declares now; a snapshot without it (written before this record
existed, or over a bound) is answered by OpenDP's full plan, which truncates itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from node.truncation import period_code
from privacy.query_route import QueryRoute
from privacy.schema import Dataset

if TYPE_CHECKING:
    import polars as pl

MANIFEST_KEY = "bounds_verified"


def declared_bounds(dataset: Dataset) -> dict[str, Any]:
    """The dataset's contribution bounds as the manifest records them (JSON-ready)."""
    return {
        "privacy_unit": dataset.privacy_unit,
        "contribution_period": dataset.contribution_period,
        "max_rows_per_unit": dataset.max_rows_per_unit,
        "max_rows_per_period": [
            {"period": bound.period.value, "max_rows": bound.max_rows}
            for bound in dataset.max_rows_per_period
        ],
    }


def verified_bounds(dataset: Dataset, frame: pl.DataFrame) -> dict[str, Any] | None:
    """`declared_bounds(dataset)` if every person in `frame` is within them, else None."""
    import polars as pl

    unit = dataset.privacy_unit
    if _most_rows(frame, [pl.col(unit)]) > dataset.max_rows_per_unit:
        return None
    for bound in dataset.max_rows_per_period:
        assert dataset.contribution_period is not None
        period = period_code(pl.col(dataset.contribution_period), bound.period).alias("__period")
        if _most_rows(frame, [pl.col(unit), period]) > bound.max_rows:
            return None
    return declared_bounds(dataset)


def _most_rows(frame: pl.DataFrame, keys: list[pl.Expr]) -> int:
    """The most rows sharing one value of `keys` (0 for an empty frame)."""
    most = frame.group_by(keys).len()["len"].max()
    return 0 if most is None else int(most)  # type: ignore[arg-type]


def satisfies_declared_bounds(recorded: Mapping[str, Any] | None, dataset: Dataset) -> bool:
    """Whether a manifest's record shows the snapshot within the dataset's current bounds."""
    return recorded is not None and dict(recorded) == declared_bounds(dataset)


def route_for(
    configured: QueryRoute, recorded: Mapping[str, Any] | None, dataset: Dataset
) -> QueryRoute:
    """The node's configured route, or the full one on a snapshot whose manifest does not
    record the bounds `dataset` declares (public facts only: manifest and schema)."""
    if configured is QueryRoute.FAST and satisfies_declared_bounds(recorded, dataset):
        return QueryRoute.FAST
    return QueryRoute.OPENDP
