"""A bucket's rows arrive in several chunks (Arrow scratch files read back); the given
`recurrence_12m` checked against the derived one must not depend on that layout (polars
1.36's `pl.format` panicked on columns chunked differently: found by
tests/property/test_person_rules.py in CI)."""

from __future__ import annotations

from datetime import date

import polars as pl

from node.recurrence import derive_recurrence


def _part(child: str, days: list[int], given: list[bool | None], first_row: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "__row": [first_row + index for index in range(len(days))],
            "child_id": [child] * len(days),
            "report_date": [date(2021, 1, 1 + day) for day in days],
            "disposition": ["substantiated"] * len(days),
            "recurrence_12m": given,
        },
        schema={
            "__row": pl.UInt32,
            "child_id": pl.String,
            "report_date": pl.Date,
            "disposition": pl.String,
            "recurrence_12m": pl.Boolean,
        },
    )


def test_wrong_given_values_are_rejected_whatever_the_chunks() -> None:
    # Sorted by (child, date); the second report of each child within 12 months recurs.
    parts = [
        _part("a", [0, 5], [False, False], 1),  # second is wrong: it recurs
        _part("b", [], [], 3),  # an empty chunk, as a read-back bucket can have
        _part("b", [0, 9], [None, True], 3),
        _part("c", [0, 3, 7], [True, True, True], 5),  # first is wrong: nothing before it
    ]
    chunked = pl.concat(parts, rechunk=False)
    assert chunked.n_chunks() > 1

    kept, rejects = derive_recurrence(chunked, "__row", "row")
    whole_kept, whole_rejects = derive_recurrence(chunked.rechunk(), "__row", "row")

    assert sorted(rejects.get_column("row").to_list()) == [2, 5]
    assert rejects.equals(whole_rejects)
    assert kept.equals(whole_kept)
    assert kept.get_column("recurrence_12m").to_list() == [False, False, True, True, True]
