"""Disparity measures from a count grouped by race/ethnicity (or another population column).

For each group g, at each node and for the partnership:

* **rate ratio** RR_g = (events_g / population_g) / (events_ref / population_ref): the
  group's rate over the reference group's. Populations are the public ones the node
  publishes in Describe (the rows' rate denominators, coordinator/denominators.py).
* **disproportionality index** DI_g = (events_g / events) / (population_g / population):
  the group's share of the events over its share of the children, over the groups that
  have a published population ("unknown" race has none and is left out of both shares).

Both are ratios of noisy counts with public factors, so their intervals are Fieller's
(coordinator/fieller.py): exact for the Gaussian pivot, honest for small counts, and equal
to the log-scale interval (Fieller's set maps through log unchanged; the forest chart
draws it on a log axis). The delta method on log(RR) would need log(noisy count), which
small or negative noisy counts do not have.

Partnership figures come from the pooled counts and pooled populations: the partnership
rate ratio is the ratio of the partnership's rates, which is the number the goal "fewer
racial inequities" is about, and its noise is the sum of the nodes' noises. An
inverse-variance average of node log ratios would estimate a different quantity (an
average of jurisdictions' ratios), be biased when a node's counts are small, and
be undefined when a node's noisy count is not positive.

The default reference is "white" (non-Hispanic White, the usual reference in child
welfare disproportionality reporting) when the result has it, else the group with the
largest partnership population. Post-processing of released values only.
"""

from __future__ import annotations

from collections.abc import Mapping

from coordinator.fieller import NoisyValue, RatioInterval, ratio_interval, share_interval, sum_of
from coordinator.report import PARTNERSHIP_SOURCE, FrozenModel, Report, ValueRow
from coordinator.shares import ShareError, cells_by_group, column_index, noisy_count

DEFAULT_COLUMN = "race_ethnicity"
DEFAULT_REFERENCE = "white"


class DisparityRow(FrozenModel):
    """One group's disparity measures at one source (a node or the partnership)."""

    source: str
    key: tuple[str, ...]
    """The cell's other group values (its key without the group column)."""
    group: str
    reference: bool
    """True for the reference group's own row (its rate ratio is 1 by definition)."""
    events: float | None
    """The group's count as shown (clamped at 0); None when hidden."""
    population: int | None
    rate_per_100k: float | None
    rate_ratio: float | None
    rate_ratio_low: float | None
    rate_ratio_high: float | None
    event_share: float | None
    population_share: float | None
    index: float | None
    """Disproportionality index: event share / population share."""
    index_low: float | None
    index_high: float | None
    suppressed: bool = False


class DisparityResult(FrozenModel):
    """`npcs results disparity --format json` (schema "npcs.disparity.v1")."""

    format: str = "npcs.disparity.v1"
    result_id: str
    dataset: str
    filters: str
    purpose: str
    column: str
    reference: str
    key_columns: tuple[str, ...]
    method: str = (
        "Fieller intervals (equal to the log-scale interval) on the unbiased noisy counts; "
        "partnership from pooled counts and pooled public populations"
    )
    rows: tuple[DisparityRow, ...]


def default_reference(report: Report, index: int) -> str:
    """ "white" when the result has it, else the group with the largest pooled population."""
    populations: dict[str, int] = {}
    for row in report.rows:
        if row.source == PARTNERSHIP_SOURCE and row.population is not None:
            group = row.key[index]
            populations[group] = populations.get(group, 0) + row.population
    if DEFAULT_REFERENCE in populations or not populations:
        return DEFAULT_REFERENCE
    return max(populations, key=lambda group: populations[group])


def compute_disparity(
    report: Report,
    column: str = DEFAULT_COLUMN,
    reference: str | None = None,
    confidence: float = 0.95,
) -> DisparityResult:
    """Rate ratios to `reference` and disproportionality indices, per node and pooled."""
    index = column_index(report, column, "a disparity measure")
    chosen = reference or default_reference(report, index)
    groups = cells_by_group(report, index)
    known = {value for cells in groups.values() for value in cells}
    if chosen not in known:
        raise ShareError(
            f"reference group {chosen!r} is not a value of {column} in this result; "
            f"choose --reference from {sorted(known)}"
        )
    rows = [
        row
        for (source, key), cells in groups.items()
        for row in _cell_rows(source, key, cells, chosen, confidence)
    ]
    return DisparityResult(
        result_id=report.result_id,
        dataset=report.dataset,
        filters=report.filters,
        purpose=report.purpose,
        column=column,
        reference=chosen,
        key_columns=tuple(c for i, c in enumerate(report.group_columns) if i != index),
        rows=tuple(rows),
    )


def _cell_rows(
    source: str,
    key: tuple[str, ...],
    cells: Mapping[str, ValueRow],
    reference: str,
    confidence: float,
) -> list[DisparityRow]:
    """The rows of one (source, other key): groups that have a published population."""
    counted = {g: row for g, row in cells.items() if row.population}
    noisy = {g: noisy_count(row) for g, row in counted.items()}
    complete = all(value is not None for value in noisy.values())
    events = sum_of([v for v in noisy.values() if v is not None]) if complete else None
    children = sum(row.population or 0 for row in counted.values())
    ref_value = noisy.get(reference)
    ref_row = counted.get(reference)
    out = []
    for group, row in counted.items():
        value = noisy[group]
        population = row.population or 0
        ratio = None
        if group == reference and value is not None:
            ratio = RatioInterval(1.0, 1.0, 1.0, bounded=True)  # by definition, no noise
        elif value is not None and ref_value is not None and ref_row is not None:
            ratio = ratio_interval(value, ref_value, 1 / population, 1 / (ref_row.population or 1))
        share = None
        if value is not None and events is not None:
            share = share_interval(value, events, confidence)
        out.append(
            _row(
                source=source,
                key=key,
                group=group,
                is_reference=group == reference,
                row=row,
                value=value,
                ratio=ratio,
                share=share,
                children=children,
            )
        )
    return out


def _row(
    *,
    source: str,
    key: tuple[str, ...],
    group: str,
    is_reference: bool,
    row: ValueRow,
    value: NoisyValue | None,
    ratio: RatioInterval | None,
    share: RatioInterval | None,
    children: int,
) -> DisparityRow:
    population = row.population or 0
    population_share = population / children if children else None
    factor = 1 / population_share if population_share else None
    return DisparityRow(
        source=source,
        key=key,
        group=group,
        reference=is_reference,
        events=None if value is None else max(value.value, 0.0),
        population=row.population,
        rate_per_100k=None if value is None else row.rate_per_100k,
        rate_ratio=None if ratio is None else ratio.estimate,
        rate_ratio_low=None if ratio is None else ratio.low,
        rate_ratio_high=None if ratio is None or not ratio.bounded else ratio.high,
        event_share=None if share is None else share.estimate,
        population_share=population_share,
        index=_scaled(share.estimate if share else None, factor),
        index_low=_scaled(share.low if share else None, factor),
        index_high=_scaled(share.high if share else None, factor),
        suppressed=value is None,
    )


def _scaled(value: float | None, factor: float | None) -> float | None:
    return None if value is None or factor is None else value * factor
