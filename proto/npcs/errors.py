"""Errors on the wire: a message that cannot be parsed, and the details of a refusal.

Parsing a message from the network raises `WireError(field, message)` naming the
offending field (a dotted path such as ``query.filters[1].date_range.end``), which the
node answers with INVALID_ARGUMENT. Refusals carry their details in trailing metadata:
a `FieldViolation` on INVALID_ARGUMENT, a `BudgetExhausted` on RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kernel.messages import BudgetShortfall, FieldError
from npcs.v1 import node_pb2 as pb

BUDGET_METADATA_KEY = "npcs-budget-bin"
"""Trailing metadata carrying a serialised `BudgetExhausted` on RESOURCE_EXHAUSTED."""
FIELD_METADATA_KEY = "npcs-field-bin"
"""Trailing metadata carrying a serialised `FieldViolation` on INVALID_ARGUMENT."""


class WireError(FieldError):
    """A message that cannot become a domain value; `field` is a dotted path into it."""


def budget_metadata(shortfall: BudgetShortfall) -> tuple[tuple[str, bytes], ...]:
    detail = pb.BudgetExhausted(
        dataset=shortfall.dataset,
        scope=shortfall.scope,
        requested_units=shortfall.requested_units,
        remaining_units=shortfall.remaining_units,
    )
    return ((BUDGET_METADATA_KEY, detail.SerializeToString()),)


def field_metadata(field_path: str, description: str) -> tuple[tuple[str, bytes], ...]:
    detail = pb.FieldViolation(field=field_path, description=description)
    return ((FIELD_METADATA_KEY, detail.SerializeToString()),)


def budget_shortfall_from_metadata(
    metadata: Iterable[Any] | None,
) -> BudgetShortfall | None:
    raw = _metadata_value(metadata, BUDGET_METADATA_KEY)
    if raw is None:
        return None
    detail = pb.BudgetExhausted.FromString(raw)
    return BudgetShortfall(
        dataset=detail.dataset,
        scope=detail.scope,
        requested_units=detail.requested_units,
        remaining_units=detail.remaining_units,
    )


def field_violation_from_metadata(
    metadata: Iterable[Any] | None,
) -> tuple[str, str] | None:
    """(field, description) from INVALID_ARGUMENT trailing metadata, if present."""
    raw = _metadata_value(metadata, FIELD_METADATA_KEY)
    if raw is None:
        return None
    detail = pb.FieldViolation.FromString(raw)
    return detail.field, detail.description


def _metadata_value(metadata: Iterable[Any] | None, key: str) -> bytes | None:
    for name, value in metadata or ():
        if name == key:
            return value if isinstance(value, bytes) else value.encode()
    return None
