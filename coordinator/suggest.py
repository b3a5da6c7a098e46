"""Did-you-mean for names a user types: datasets, columns and public values.

difflib's ratio finds near misses ("incident" -> "incidents", "sex=femal" -> "female");
a suggestion is offered only when one candidate is clearly close.
"""

from __future__ import annotations

from collections.abc import Iterable

CUTOFF = 0.6


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The known name closest to `name`, when one is close enough (case-insensitive)."""
    import difflib  # only a mistyped name needs it: kept off every command's start-up

    options = list(choices)
    lowered = {option.lower(): option for option in options}
    if name.lower() in lowered:
        return lowered[name.lower()]
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=CUTOFF)
    return lowered[matches[0]] if matches else None


def unknown(what: str, name: str, choices: Iterable[str]) -> str:
    """ "unknown column 'sexx'; did you mean 'sex'? Known: a, b, c" (the list shortened)."""
    options = list(choices)
    message = f"unknown {what} {name!r}"
    suggestion = closest(name, options)
    if suggestion is not None:
        message += f"; did you mean {suggestion!r}?"
    shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f"{message} Known: {shown}" if options else message
