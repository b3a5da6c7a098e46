"""Free text from analysts is stored in the ledger and shown on operators' terminals.

So it must not carry characters that act on a terminal or reorder what it shows: C0 and
C1 control characters (ESC starts terminal escape sequences; newlines and tabs are
refused too, a purpose is one line), DEL, line and paragraph separators, and the Unicode
bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) that can
make text read differently from what it is ("Trojan Source", CVE-2021-42574).
The node refuses such text (`unsafe_character`); every rendering also passes stored
text through `printable`, so entries recorded before this rule show harmlessly.
"""

from __future__ import annotations

import unicodedata

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f"
    + "".join(chr(code) for code in range(0x202A, 0x202F))
    + "".join(chr(code) for code in range(0x2066, 0x206A))
)
SEPARATORS = frozenset("\u2028\u2029")


def is_unsafe(character: str) -> bool:
    """True for control characters, bidi controls and line/paragraph separators."""
    return (
        unicodedata.category(character) in ("Cc", "Cs")
        or character in BIDI_CONTROLS
        or character in SEPARATORS
    )


def unsafe_character(text: str) -> tuple[int, str] | None:
    """(position, "U+XXXX") of the first unsafe character of `text`, or None."""
    for position, character in enumerate(text):
        if is_unsafe(character):
            return position, f"U+{ord(character):04X}"
    return None


def printable(text: str) -> str:
    """`text` with every unsafe character shown as a visible escape such as <U+001B>."""
    if unsafe_character(text) is None:
        return text
    return "".join(f"<U+{ord(c):04X}>" if is_unsafe(c) else c for c in text)
