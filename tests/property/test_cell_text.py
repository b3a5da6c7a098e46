"""A whole identifier column canonicalised at once equals the rule cell by cell.

`node.cell_text.canonical_identifiers` lowers ASCII cells with Arrow's `ascii_lower` and
sends every other cell through the rule's polars expression (`canonical_identifier`:
trimmed, NFC, lower case). On generated columns mixing plain ASCII ids, upper case,
surrounding and inner whitespace, blanks, missing cells, composed and decomposed
accents, the Kelvin sign (NFC maps it to ASCII K), dotted capital I and final sigma
(lower case differs from per-character mapping), both give the same cell everywhere.
"""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from node.cell_text import canonical_identifier, canonical_identifiers, trimmed_text

PIECES = ["C0001", "kz", "KZ", " ", "\t", "-", "Ç", "C\u0327", "\u212a", "İ", "ΟΔΟΣ", "ß", "ﬁ", "Å"]


def by_the_rule(column: pl.Series) -> pl.Series:
    return column.to_frame().select(canonical_identifier(column.name, column.dtype)).to_series()


cells = st.one_of(
    st.none(),
    st.lists(st.sampled_from(PIECES), max_size=4).map("".join),
    st.text(max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(cells, max_size=60))
def test_a_column_at_once_equals_the_rule_cell_by_cell(values: list[str | None]) -> None:
    column = pl.Series("child_id", values, dtype=pl.String)
    assert canonical_identifiers(trimmed_text(column)).to_list() == by_the_rule(column).to_list()


def test_identifiers_that_are_not_text_are_read_as_text() -> None:
    column = pl.Series("child_id", [12, None, 7], dtype=pl.Int64)
    assert canonical_identifiers(trimmed_text(column)).to_list() == ["12", None, "7"]
    assert by_the_rule(column).to_list() == ["12", None, "7"]


def test_a_column_in_several_chunks() -> None:
    column = pl.concat(
        [pl.Series("id", ["AB", " Ç "]), pl.Series("id", ["\u212a1", None])], rechunk=False
    )
    assert column.n_chunks() == 2
    assert canonical_identifiers(trimmed_text(column)).to_list() == ["ab", "ç", "k1", None]
