"""The manifest's record that a snapshot satisfies its dataset's contribution bounds.

Ingest truncates each person's rows to the schema's bounds (node/truncation.py) and
rejects values outside a numeric column's public bounds (node/row_validation.py);
before the snapshot is stored, the kept rows are checked again, independently of how
they were made: no person has more than `max_rows_per_unit` rows, nor more than a period
bound's rows in any one calendar period (rows without a date count as one period), and
every known value of a bounded numeric column lies within its bounds. When every check
holds, the manifest records what was verified (`bounds_verified`: the privacy unit, the
period column, the total and per-period numbers, each numeric column's bounds). The node serves a
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
from privacy.schema import NUMERIC_KINDS, Column, Dataset

if TYPE_CHECKING:
    import polars as pl

MANIFEST_KEY = "bounds_verified"


def declared_bounds(dataset: Dataset) -> dict[str, Any]:
    """The dataset's contribution bounds and numeric value bounds as the manifest records
    them (JSON-ready)."""
    return {
        "value_bounds": {
            column.name: [column.lower, column.upper] for column in _bounded_columns(dataset)
        },
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
    for column in _bounded_columns(dataset):
        outside = frame.filter(
            (pl.col(column.name) < column.lower) | (pl.col(column.name) > column.upper)
        )
        if outside.height:
            return None
    return declared_bounds(dataset)


def _bounded_columns(dataset: Dataset) -> list[Column]:
    return [
        column
        for column in dataset.columns
        if column.kind in NUMERIC_KINDS and column.lower is not None and column.upper is not None
    ]


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
