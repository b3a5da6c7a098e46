"""Centred means: the public centre of a bounded column and the rho split of a mean.

A mean is released as a noisy sum and a noisy count. Summing `value - centre` over
[lower - centre, upper - centre] instead of `value` over [min(lower, 0), max(upper, 0)]
shrinks the sum's sensitivity from max(|lower|, |upper|) to about half the range (2
instead of 5 for a 1-5 survey item), and the mean is `centre + centred sum / count`.

The centre is the midpoint of the public bounds, rounded down to a whole number for an
integer column (so the centred values stay integers and keep OpenDP's integer noise).

Rho split (data-free): with the centred mean m unknown, the mean's variance is about
(sigma_sum^2 + m^2 sigma_count^2) / n^2, and each sigma^2 is sensitivity^2 / (2 rho).
The sum's sensitivity is h times the count's (h = the largest |bound - centre|). Taking
m^2 at its average h^2 / 3 over the bounds (no data), the variance is smallest when
rho_sum / rho_count = sqrt(3): the sum gets sqrt(3) / (1 + sqrt(3)) = 63.4% of rho.

A plain sum is not centred: sum = centred sum + centre * count would need a count as
well, and for bounds with 0 <= lower the best split of the two costs exactly what the
uncentred sum does, so centring cannot help it.

Pure: standard library only (the coordinator pools centred sums with it).
"""

from __future__ import annotations

import math

from privacy.schema import Column, ColumnKind

SUM_SHARE_OF_MEAN_RHO = math.sqrt(3) / (1 + math.sqrt(3))
"""The sum's share of a mean's rho (module docstring); the count gets the rest."""
CENTRED_SUM = "centred_sum"
"""Estimate name of a mean's numerator: the noisy sum of value - centre."""


def mean_centre(column: Column) -> int | float:
    """The public centre a mean of `column` is computed around."""
    assert column.lower is not None
    assert column.upper is not None
    midpoint = (column.lower + column.upper) / 2
    if column.kind is ColumnKind.INTEGER:
        return math.floor(midpoint)
    return midpoint


def centred_bounds(column: Column) -> tuple[int | float, int | float]:
    """The clipping bounds of `value - centre`."""
    assert column.lower is not None
    assert column.upper is not None
    centre = mean_centre(column)
    if column.kind is ColumnKind.INTEGER:
        return int(column.lower) - int(centre), int(column.upper) - int(centre)
    return column.lower - centre, column.upper - centre
