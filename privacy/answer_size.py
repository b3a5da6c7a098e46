"""An upper bound on the size of a release, from the public query alone.

A node charges before it replies, so an answer too large to send would be charged and
never delivered. Validation therefore bounds the bytes of `Release.to_bytes()` before
any charge: every cell (group key, and item of a multi-item query: the item's name is
then one more key dimension, and the cells count every item) carries the same
estimates, and every estimate is a
JSON object whose numbers are Python float reprs (at most 24 characters each). The
bound uses only public facts (the released key labels, the statistic, the number of
quantiles) and is never smaller than the real release; `tests/unit/test_answer_size.py`
checks it against real releases.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from privacy.query import Statistic

MAX_FLOAT_CHARS = 24
"""Longest repr of a Python float, e.g. -2.2250738585072014e-308."""
MAX_ESTIMATE_NAME_CHARS = 64
"""Longest estimate name: "count", "q0.975" or a histogram bin "bin[-1.5e+06,2.5e+06)"."""

_FLOAT = "9" * MAX_FLOAT_CHARS
ESTIMATE_BYTES_MAX = len(
    json.dumps(
        {
            "ci_high": _FLOAT,
            "ci_low": _FLOAT,
            "distribution": "gaussian",
            "name": "n" * MAX_ESTIMATE_NAME_CHARS,
            "rank_error": _FLOAT,
            "scale": _FLOAT,
            "suppressed": "false",
            "value": _FLOAT,
        },
        separators=(",", ":"),
    )
)
"""Bytes of one estimate at most, plus a separating comma (quoted placeholders over-count)."""

RELEASE_HEADER_BYTES_MAX = 4096
"""The release's fields other than its cells: ids, names, version (each short and public)."""


def estimates_per_cell(statistic: Statistic, quantiles: int, quantile_count: bool = False) -> int:
    """How many values each cell releases (histogram bins are counted as cells)."""
    if statistic is Statistic.MEAN:
        return 3  # sum, count and their post-processed ratio
    if statistic is Statistic.QUANTILES:
        return quantiles + quantile_count
    return 1


def release_bytes_bound(
    labels_per_dimension: Sequence[Sequence[str]], cells: int, per_cell: int
) -> int:
    """At least the bytes of a release with `cells` cells of `per_cell` estimates each,
    keyed by the cartesian product of `labels_per_dimension` (the released key texts)."""
    key_bytes = sum(
        max((len(json.dumps(label)) for label in labels), default=2) + 1
        for labels in labels_per_dimension
    )
    cell_bytes = len('{"estimates":[],"key":[]},') + key_bytes + per_cell * (ESTIMATE_BYTES_MAX + 1)
    return RELEASE_HEADER_BYTES_MAX + cells * cell_bytes
