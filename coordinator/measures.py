"""What each released value name measures, as far as showing and pooling need to know.

Counts ("count" and histogram bins "bin[..]") are whole numbers that cannot be negative
and carry discrete Gaussian noise; a sum carries discrete noise when its column holds
integers and cannot be negative when its column's public lower bound is not; a mean
lies within its column's public bounds; quantiles carry rank noise. All of this follows
from the query and the public schema, never from the data.
"""

from __future__ import annotations

from privacy.centring import CENTRED_SUM
from privacy.query import QuerySpec, Statistic
from privacy.schema import PARTNERSHIP_SCHEMA, Column, ColumnKind

COUNT = "count"
BIN_PREFIX = "bin["


def is_count_name(name: str) -> bool:
    """True for counts of rows: "count" and histogram bins."""
    return name == COUNT or name.startswith(BIN_PREFIX)


def measured_column(spec: QuerySpec) -> Column | None:
    """The public schema's column the query measures, None for counts or unknown names.

    A multi-item mean measures its items, which share their kind and bounds (validation
    requires it), so its first item stands for all of them.
    """
    name = spec.column
    if name is None and spec.items and spec.statistic is Statistic.MEAN:
        name = spec.items[0]
    if name is None:
        return None
    try:
        return PARTNERSHIP_SCHEMA.dataset(spec.dataset).column(name)
    except KeyError:
        return None


def column_bounds(spec: QuerySpec) -> tuple[float, float] | None:
    """The measured column's public clipping bounds, which a mean cannot leave."""
    column = measured_column(spec)
    if column is None or column.lower is None or column.upper is None:
        return None
    return (column.lower, column.upper)


def discrete_names(spec: QuerySpec, names: set[str]) -> frozenset[str]:
    """The value names among `names` released with discrete (integer) Gaussian noise."""
    column = measured_column(spec)
    integer_sum = column is not None and column.kind is ColumnKind.INTEGER
    return frozenset(
        name
        for name in names
        if is_count_name(name) or (name in ("sum", CENTRED_SUM) and integer_sum)
    )


def never_negative(spec: QuerySpec, name: str) -> bool:
    """True when the value `name` cannot truly be negative, though its noisy form can.

    Counts, and sums of a column whose public lower bound is at least 0. (Means are
    already clipped to their column's bounds by the nodes.)
    """
    if is_count_name(name):
        return True
    column = measured_column(spec)
    return name == "sum" and column is not None and column.lower is not None and column.lower >= 0
