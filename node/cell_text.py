"""Cells read as text: trimmed, blank as missing, and identifiers in canonical form.

`as_text` is how ingest reads any cell as text (CSV writes a missing cell as ''), and
`canonical_identifier` states IDENTIFIER_RULE as one polars expression: trimmed text,
Unicode NFC, then lower case. Cell by cell, NFC and lower case cost about 0.3 s per
million cells, and ingest canonicalises three identifier columns, so
`canonical_identifiers` does a whole column at once: most identifiers are plain ASCII,
where NFC changes nothing and lower case changes only the letters A-Z; Arrow's
`ascii_lower` does exactly that over the column's text buffer in one pass (the bytes A-Z
never occur inside a multi-byte UTF-8 character). Cells with any other character take
the expression, so every cell gets exactly what the rule gives it
(tests/property/test_cell_text.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

IDENTIFIER_RULE = "surrounding whitespace removed, Unicode NFC, then lower case"
"""How ingest canonicalises identifier columns (documented in the deploy guide)."""


def as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """The raw cell as trimmed text, with empty text as null (CSV writes missing as '')."""
    import polars as pl

    text = pl.col(name) if dtype == pl.String else pl.col(name).cast(pl.String)
    text = text.str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def canonical_identifier(name: str, dtype: pl.DataType) -> pl.Expr:
    """The canonical identifier (IDENTIFIER_RULE): trimmed, Unicode NFC, lower case.

    One child exported as "KZ" in one system and " kz" in another is one privacy unit:
    two spellings counted as two people would let one person contribute past the bound.
    """
    return _canonical(as_text(name, dtype))


def trimmed_text(raw: pl.Series) -> pl.Series:
    """`as_text` of a whole column."""
    return raw.to_frame().select(as_text(raw.name, raw.dtype).alias(raw.name)).to_series()


def canonical_identifiers(text: pl.Series) -> pl.Series:
    """`canonical_identifier` of a column already read by `trimmed_text`, computed a
    whole column at a time where the cells are ASCII."""
    import polars as pl
    import pyarrow.compute as pc

    lowered = pl.from_arrow(pc.ascii_lower(text.to_arrow()))
    assert isinstance(lowered, pl.Series)
    lowered = lowered.alias(text.name)
    not_ascii = (text.str.len_bytes() != text.str.len_chars()).fill_null(False)
    if not not_ascii.any():
        return lowered
    positions = not_ascii.arg_true()
    others = text.gather(positions)
    general = others.to_frame().select(_canonical(pl.col(text.name))).to_series()
    return lowered.scatter(positions, general)


def _canonical(text: pl.Expr) -> pl.Expr:
    return text.str.normalize("NFC").str.to_lowercase()
