"""The manifest's record that a snapshot satisfies its dataset's contribution bounds.

Ingest truncates each person's rows to the schema's bounds (node/truncation.py) and
rejects values outside a numeric column's public bounds (node/row_validation.py);
before the snapshot is stored, the kept rows are checked again, independently of how
they were made: no person has more than `max_rows_per_unit` rows, nor more than a period
bound's rows in any one calendar period (rows without a date count as one period), and
every known value of a bounded numeric column lies within its bounds. When every check
holds, the manifest records what was verified (`bounds_verified`: the privacy unit, the
period column, the total and per-period numbers, each numeric column's bounds). The
node serves a snapshot only while its file has the manifest's sha256
(node/snapshot_checks.py), so the record describes the bytes being served.

The counts are the longest runs of equal keys in rows ordered by (person, period date):
ingest hands over its kept rows in that order (node/person_rules.py), and the check
verifies the order row by row before relying on it (and sorts when it does not hold).

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
    if not within_contribution_bounds(dataset, frame) or not within_value_bounds(dataset, frame):
        return None
    return declared_bounds(dataset)


def within_contribution_bounds(dataset: Dataset, frame: pl.DataFrame) -> bool:
    """No person has more rows than the total bound, nor more in one calendar period than
    a period bound (rows without a date count as one period).

    Counted as the longest run of equal keys in rows sorted by (person, period date),
    where each person's and each period's rows are contiguous. A frame already in that
    order (checked: no missing key, each row's keys at or after the previous row's) is
    not sorted again.
    """
    import polars as pl

    unit = dataset.privacy_unit
    period = dataset.contribution_period
    keys = [unit] if period is None else [unit, period]
    ordered = frame if _sorted_by(frame, keys) else frame.select(keys).sort(keys)
    if _longest_run(ordered, [pl.col(unit)]) > dataset.max_rows_per_unit:
        return False
    for bound in dataset.max_rows_per_period:
        assert period is not None
        code = period_code(pl.col(period), bound.period).alias("__period")
        if _longest_run(ordered, [pl.col(unit), code]) > bound.max_rows:
            return False
    return True


def within_value_bounds(dataset: Dataset, frame: pl.DataFrame) -> bool:
    """Every known value of a bounded numeric column lies within its bounds."""
    import polars as pl

    for column in _bounded_columns(dataset):
        outside = frame.filter(
            (pl.col(column.name) < column.lower) | (pl.col(column.name) > column.upper)
        )
        if outside.height:
            return False
    return True


def _sorted_by(frame: pl.DataFrame, keys: list[str]) -> bool:
    """Every row's keys are at or after the previous row's, and none is missing."""
    import polars as pl

    if frame.select(pl.sum_horizontal(pl.col(keys).null_count())).item():
        return False
    first, *rest = (pl.col(key) for key in keys)
    in_order = first.shift(1) <= first
    if rest:
        [second] = rest
        in_order = (first.shift(1) < first) | (
            (first.shift(1) == first) & (second.shift(1) <= second)
        )
    return bool(frame.select(in_order.fill_null(True).all()).item())


def _longest_run(frame: pl.DataFrame, keys: list[pl.Expr]) -> int:
    """The most consecutive rows with equal `keys` (0 for an empty frame)."""
    import polars as pl

    runs = (keys[0] if len(keys) == 1 else pl.struct(keys)).rle().struct.field("len")
    longest = frame.select(runs.max()).item()
    return 0 if longest is None else int(longest)


def _bounded_columns(dataset: Dataset) -> list[Column]:
    return [
        column
        for column in dataset.columns
        if column.kind in NUMERIC_KINDS and column.lower is not None and column.upper is not None
    ]


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
