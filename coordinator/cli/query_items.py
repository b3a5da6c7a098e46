"""`npcs query --items`: the items of a multi-item count or mean, by name or glob.

    --items   ITEM[,ITEM...]   ITEM is a column name or a glob over the dataset's
                               columns ('io_*', 'mal_*', 'ssit_*'); a count takes
                               boolean flags, a mean bounded numeric items

Globs expand here, against the partnership schema, in schema order, so the query a node
receives and its ledger records names every item explicitly. Unknown names and globs
that match nothing are refused with the closest known item suggested.
"""

from __future__ import annotations

import fnmatch

from coordinator.suggest import unknown
from privacy.query import Statistic
from privacy.schema import Column, ColumnKind, Dataset

_GLOB_CHARACTERS = frozenset("*?[")


class ItemsArgumentError(ValueError):
    """An --items argument that names no usable item."""


def item_candidates(dataset: Dataset, statistic: Statistic) -> tuple[str, ...]:
    """The columns a multi-item `statistic` of `dataset` can take, in schema order."""
    return tuple(column.name for column in dataset.columns if _fits(column, statistic))


def _fits(column: Column, statistic: Statistic) -> bool:
    if statistic is Statistic.COUNT:
        return column.kind is ColumnKind.BOOLEAN
    return column.is_numeric and column.lower is not None and column.upper is not None


def parse_items(text: str | None, dataset: Dataset, statistic: Statistic) -> tuple[str, ...]:
    """The explicit item names an --items argument stands for (empty when not given)."""
    if text is None:
        return ()
    if statistic not in (Statistic.COUNT, Statistic.MEAN):
        raise ItemsArgumentError(
            f"--items applies to count (boolean flags) or mean (bounded items), not "
            f"{statistic.value}"
        )
    candidates = item_candidates(dataset, statistic)
    kind = "flag" if statistic is Statistic.COUNT else "bounded numeric item"
    what = f"{kind} of {dataset.name}"
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if _GLOB_CHARACTERS & set(part):
            matched = [name for name in candidates if fnmatch.fnmatchcase(name, part)]
            if not matched:
                raise ItemsArgumentError(
                    f"--items {part!r} matches no {what}; "
                    + unknown(what, part.strip("*?[]"), candidates)
                )
        elif part in candidates:
            matched = [part]
        else:
            raise ItemsArgumentError(f"--items: {unknown(what, part, candidates)}")
        names.extend(name for name in matched if name not in names)
    if not names:
        raise ItemsArgumentError("--items needs at least one item, e.g. --items 'io_*'")
    return tuple(names)
