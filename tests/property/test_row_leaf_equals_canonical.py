"""`row_leaf_data`, the fast re-encoding `ledger verify` hashes, is byte for byte the
entry's canonical JSON (`canonical_json`, the leaf data's definition), on generated rows
of the types a sound row holds and of the types a tampered SQLite row can hold."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.ledger.entry import ENTRY_COLUMNS, LedgerEntry, canonical_json
from privacy.ledger.row_leaf import (
    BYTES_COLUMNS,
    INTEGER_COLUMNS,
    NULLABLE_BYTES_COLUMNS,
    row_leaf_data,
)

TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
"""Any text SQLite can store (no lone surrogates), control characters and quotes included."""
INTEGERS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
BYTES = st.binary(max_size=64)


def sound_value(name: str) -> st.SearchStrategy[Any]:
    if name in INTEGER_COLUMNS:
        return INTEGERS
    if name in BYTES_COLUMNS:
        return BYTES
    if name in NULLABLE_BYTES_COLUMNS:
        return st.none() | BYTES
    return TEXT


SOUND_ROWS = st.tuples(*(sound_value(name) for name in ENTRY_COLUMNS))
ANY_VALUE = st.none() | INTEGERS | TEXT | BYTES | st.floats(allow_nan=False)
LEAF_HASH = b"\x00" * 32


def reference(row: tuple[Any, ...]) -> bytes:
    return canonical_json(dict(zip(ENTRY_COLUMNS, row, strict=True)))


@settings(max_examples=500)
@given(SOUND_ROWS)
def test_a_sound_row_encodes_to_its_canonical_json(row: tuple[Any, ...]) -> None:
    assert row_leaf_data((*row, LEAF_HASH)) == reference(row)


@settings(max_examples=500)
@given(SOUND_ROWS, st.sampled_from(range(len(ENTRY_COLUMNS))), ANY_VALUE)
def test_a_row_with_any_value_in_any_column_encodes_to_its_canonical_json(
    row: tuple[Any, ...], column: int, value: Any
) -> None:
    changed = (*row[:column], value, *row[column + 1 :])
    assert row_leaf_data((*changed, LEAF_HASH)) == reference(changed)


@given(SOUND_ROWS)
def test_the_encoding_is_the_leaf_data_the_writer_hashes(row: tuple[Any, ...]) -> None:
    entry = LedgerEntry(**dict(zip(ENTRY_COLUMNS, row, strict=True)))
    assert row_leaf_data((*row, LEAF_HASH)) == entry.canonical_bytes()
