"""Output columns of a multi-item query: one set of aggregates per item, one measurement.

A multi-item query (QuerySpec.items) counts several flags, or averages several bounded
items, in one OpenDP measurement: the aggregation holds each item's aggregates side by
side (`__count@0`, `__count@1`, ... for a count; `__sum@i` and `__count@i` for a mean),
and OpenDP composes them into one privacy map (privacy/plan.py charges that map once).
This module names those columns and reads one item's columns back under the plain
names (`__count`, `__sum`) the single-column code uses, so each item is packaged exactly
like a one-column answer and released as its own cell, keyed by the item's name.

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

_SEPARATOR = "@"

Value = TypeVar("Value")


def item_output_column(role: str, index: int) -> str:
    """The output column of aggregate `role` ("__count", "__sum") for item `index`."""
    return f"{role}{_SEPARATOR}{index}"


def output_role(column: str) -> str:
    """The aggregate an output column holds, whichever item it is for."""
    return column.partition(_SEPARATOR)[0]


def item_view(by_column: Mapping[str, Value], index: int) -> dict[str, Value]:
    """Item `index`'s entries of `by_column`, keyed by their plain role names."""
    wanted = str(index)
    view: dict[str, Value] = {}
    for column, value in by_column.items():
        role, separator, item = column.partition(_SEPARATOR)
        if separator and item == wanted:
            view[role] = value
    return view
