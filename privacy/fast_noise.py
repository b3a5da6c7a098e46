"""The fast route's noise: OpenDP's own measurements, built once per scale and reused.

An OpenDP `Measurement` is an immutable description of a mechanism (domain, metric,
scale); each call draws fresh noise from OpenDP's samplers. Building one
(`make_gaussian` with its vector domain, `make_noisy_max`) costs about 0.1 ms, as much
as a one-cell draw, so each is cached per (mechanism, scale). Reuse changes nothing
about the noise: the same mechanism at the same scale, called once per release.

* counts and sums: the integer (discrete) Gaussian over the vector of cells,
  `make_gaussian` on `vector_domain(atom_domain(i64))` with the L2 distance;
* quantiles: report-noisy-min (Gumbel), `make_noisy_max(negate=True)` over each cell's
  candidate scores (u64, L-infinity distance, zCDP).

The scale is the one OpenDP's full measurement reports for that output column; the
charge stays that full measurement's privacy map (privacy/plan.py).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from privacy.opendp_setup import opendp
from privacy.plan import quantile_candidates
from privacy.query import Statistic
from privacy.validate import ValidatedQuery

_CACHED_SCALES = 256
"""Scales kept per mechanism: a few per query shape (each rho of a shape has its own)."""


@functools.lru_cache(maxsize=_CACHED_SCALES)
def integer_gaussian(scale: float) -> Any:
    """OpenDP's integer Gaussian on a vector of i64 cells, at `scale`."""
    dp = opendp()
    return dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="i64"), scale
    )


@functools.lru_cache(maxsize=_CACHED_SCALES)
def noisy_min_index(scale: float) -> Any:
    """OpenDP's report-noisy-min on a vector of u64 scores, at `scale`: the index of the
    candidate with the smallest noisy score."""
    dp = opendp()
    return dp.m.make_noisy_max(
        dp.vector_domain(dp.atom_domain(T="u64")),
        dp.linf_distance(T="u64", monotonic=False),
        dp.zero_concentrated_divergence(),
        scale=scale,
        negate=True,
    )


def add_noise(
    query: ValidatedQuery, exact: pl.DataFrame, scales: Mapping[str, float]
) -> pl.DataFrame:
    """Each output column through OpenDP's measurement at its scale (one draw per cell)."""
    noisy = []
    for column, scale in scales.items():
        values = exact[column].to_list()
        if query.statistic is Statistic.QUANTILES:
            released: list[Any] = _noisy_candidates(query, values, scale)
        else:
            released = list(integer_gaussian(scale)(values)) if values else []
        noisy.append(pl.Series(column, released))
    # Eager column swaps: no query-engine run for a frame of a few cells.
    frame = exact.clone()
    for series in noisy:
        frame.replace_column(frame.get_column_index(series.name), series)
    return frame


def _noisy_candidates(
    query: ValidatedQuery, score_lists: Sequence[list[int]], scale: float
) -> list[int | float]:
    assert query.measured is not None
    candidates = quantile_candidates(query.measured)
    noisy_min = noisy_min_index(scale)
    return [candidates[noisy_min(scores)] for scores in score_lists]
