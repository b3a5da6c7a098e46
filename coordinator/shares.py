"""Shares as statistics: the part of a count result's events that have one value of a column.

A count grouped by a boolean or category column (for example incidents by
`incident_type,sleep_related`) releases, in ONE query, every cell of that column. The
share of one value within the other group columns' cell (the sleep-related share of
fatalities) divides that cell's count by the sum of the column's cells: numerator and
denominator both come from the release, so the share costs no further privacy budget.

Per node and for the partnership (from the pooled counts, whose noises add up). The
interval is Fieller's (coordinator/fieller.py) on the unbiased noisy counts: honest when
counts are small, inside [0, 1], and the whole [0, 1] when the noisy total is not clearly
above zero. A share whose cells include a suppressed one is hidden (its numbers, with the
other cells shown, would give the hidden one back).
"""

from __future__ import annotations

from collections.abc import Sequence

from coordinator.errors import CoordinatorError
from coordinator.fieller import NoisyValue, share_interval, sum_of
from coordinator.measures import COUNT
from coordinator.report import FrozenModel, Report, ValueRow

BOOLEAN_PART = "true"
"""The value whose share is shown when the column is a flag and no value is named."""


class ShareError(CoordinatorError, ValueError):
    """The result cannot give the share asked for; the message says what to ask instead."""


class ShareRow(FrozenModel):
    """One share: `part` of `of_column` among all events in `key` at `source`."""

    source: str
    key: tuple[str, ...]
    """The cell's other group values (its key without the `of_column` value)."""
    part: str
    events: float | None
    """The part's count as shown (clamped at 0); None when hidden."""
    total: float | None
    """The count of all the cell's events as shown (clamped at 0); None when hidden."""
    share: float | None
    """events / total from the unbiased estimates, clipped to [0, 1]; None when hidden or
    when the noisy total is not positive."""
    ci_low: float | None
    ci_high: float | None
    bounded: bool = True
    """False when the noisy total is too close to 0 for any narrower interval than [0, 1]."""
    suppressed: bool = False


class SharesResult(FrozenModel):
    """`npcs results share --format json` (schema "npcs.shares.v1")."""

    format: str = "npcs.shares.v1"
    result_id: str
    dataset: str
    filters: str
    purpose: str
    of_column: str
    key_columns: tuple[str, ...]
    method: str = "Fieller interval on the unbiased noisy counts (coordinator/fieller.py)"
    rows: tuple[ShareRow, ...]


def column_index(report: Report, column: str, what: str) -> int:
    """Where `column` sits in the report's keys; a clear error when it is not grouped."""
    if report.statistic != COUNT:
        raise ShareError(
            f"{what} needs a count result, and {report.result_id[:8]} is a {report.statistic}: "
            f"ask `npcs query count {report.dataset} --by ...,{column}`"
        )
    names = [label.split(":", 1)[0] for label in report.group_columns]
    if column not in names:
        grouped = ", ".join(report.group_columns) or "nothing"
        raise ShareError(
            f"{what} of {column!r} needs the count grouped by it, but result "
            f"{report.result_id[:8]} is grouped by {grouped}: ask again with "
            f"--by {','.join([*report.group_columns, column])}"
        )
    return names.index(column)


def cells_by_group(
    report: Report, index: int
) -> dict[tuple[str, tuple[str, ...]], dict[str, ValueRow]]:
    """Count rows by (source, key without position `index`), then by the value there."""
    groups: dict[tuple[str, tuple[str, ...]], dict[str, ValueRow]] = {}
    for row in report.rows:
        if row.name != COUNT:
            continue
        rest = row.key[:index] + row.key[index + 1 :]
        groups.setdefault((row.source, rest), {})[row.key[index]] = row
    return groups


def noisy_count(row: ValueRow) -> NoisyValue | None:
    """The row's unbiased count and noise variance (None when hidden or not additive)."""
    if row.suppressed or row.unbiased_estimate is None or row.std is None:
        return None
    return NoisyValue(row.unbiased_estimate, row.std**2)


def compute_shares(
    report: Report, of_column: str, part: str | None = None, confidence: float = 0.95
) -> SharesResult:
    """The share of `part` (every value when None; "true" for a flag) of `of_column`."""
    index = column_index(report, of_column, "a share")
    groups = cells_by_group(report, index)
    values = list(dict.fromkeys(v for cells in groups.values() for v in cells))
    if part is None and BOOLEAN_PART in values:
        part = BOOLEAN_PART
    if part is not None and part not in values:
        raise ShareError(f"{of_column} has no value {part!r} in this result; it has {values}")
    parts = [part] if part is not None else values
    rows = [
        _share_row(source, key, name, cells, confidence)
        for (source, key), cells in groups.items()
        for name in parts
        if name in cells
    ]
    keys = [c for i, c in enumerate(report.group_columns) if i != index]
    return SharesResult(
        result_id=report.result_id,
        dataset=report.dataset,
        filters=report.filters,
        purpose=report.purpose,
        of_column=of_column,
        key_columns=tuple(keys),
        rows=tuple(rows),
    )


def _share_row(
    source: str, key: tuple[str, ...], part: str, cells: dict[str, ValueRow], confidence: float
) -> ShareRow:
    noisy = [noisy_count(row) for row in cells.values()]
    part_value = noisy_count(cells[part])
    present = [value for value in noisy if value is not None]
    if part_value is None or len(present) != len(noisy):
        return ShareRow(
            source=source,
            key=key,
            part=part,
            events=None,
            total=None,
            share=None,
            ci_low=None,
            ci_high=None,
            suppressed=True,
        )
    total = sum_of(present)
    interval = share_interval(part_value, total, confidence)
    return ShareRow(
        source=source,
        key=key,
        part=part,
        events=max(part_value.value, 0.0),
        total=max(total.value, 0.0),
        share=interval.estimate,
        ci_low=interval.low,
        ci_high=interval.high,
        bounded=interval.bounded,
    )


def rows_for(rows: Sequence[ShareRow], source: str) -> list[ShareRow]:
    return [row for row in rows if row.source == source]
