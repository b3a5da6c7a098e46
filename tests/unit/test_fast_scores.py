"""One-cell quantile scores counted with bincount equal OpenDP's candidate scores, values
outside the public bounds included (they count as below, or above, every candidate)."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from bench_query import LIMITS, QUERIES, SCHEMA

from privacy import fast_scores
from privacy.opendp_setup import opendp
from privacy.plan import quantile_candidates
from privacy.validate import validate_query

MEDIAN = validate_query(QUERIES["median of child_age_months"](), SCHEMA, LIMITS)
AGE = SCHEMA.dataset("incidents").column("child_age_months")


def _opendp_scores(values: list[int]) -> list[int]:
    dp = opendp()
    score = dp.t.make_quantile_score_candidates(
        dp.vector_domain(dp.atom_domain(T="i64")),
        dp.symmetric_distance(),
        [int(c) for c in quantile_candidates(AGE)],
        0.5,
    )
    return [int(value) for value in score(values)]


@pytest.mark.parametrize(
    "values",
    [
        [],
        [0],
        [215, 215, 215],
        [0, 1, 2, 3, 107, 108, 214, 215],
        [-5, -1, 0, 215, 216, 400],
        [-(10**12), 10**12, 50, 50, 51],
        list(range(0, 216, 3)) * 7 + [None, None],
    ],
)
@pytest.mark.parametrize("chunk", [3, 1 << 20])
def test_one_cell_scores_equal_opendps(
    values: list[int | None], chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chunk` 3: the values are clipped and counted over several passes."""
    monkeypatch.setattr(fast_scores, "_BINCOUNT_CHUNK", chunk)
    data = pl.LazyFrame({"child_age_months": pl.Series(values, dtype=pl.Int64)})
    frame = fast_scores.score_frame(MEDIAN, data)
    assert frame.height == 1
    known = [value for value in values if value is not None]
    assert frame["__q0"][0].to_list() == _opendp_scores(known)
