"""Exact privacy-budget arithmetic.

Budgets and costs are rho values of zero-concentrated DP, held as integers in
micro-rho units so that deciding whether a query fits never compares floats.
Converting an OpenDP cost (a float) to units always rounds *up*, so the ledger
never records less than OpenDP's own privacy map reports.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction

RHO_UNITS_PER_RHO = 1_000_000
"""Ledger resolution: one unit is one micro-rho."""

MAX_RHO_UNITS = 10**15
"""Upper bound on any single budget or cost (1e9 rho): keeps values inside SQLite's int64."""

MAX_RHO_TEXT_CHARS = 64
"""The longest rho text a request may carry."""
# Decimal accepts "1e999999999"; anything outside this exponent range is not a sane rho.
_RHO_EXPONENT_RANGE = range(-30, 16)


class BudgetValueError(ValueError):
    """A rho value that is not a finite, non-negative number within range."""


def rho_to_units_ceil(rho: float | Fraction | Decimal | str | int) -> int:
    """Convert a rho value to micro-rho units, rounding up (never under-charge)."""
    exact = _exact(rho)
    units = math.ceil(exact * RHO_UNITS_PER_RHO)
    if units > MAX_RHO_UNITS:
        raise BudgetValueError(f"rho {rho} is larger than the maximum {format_rho(MAX_RHO_UNITS)}")
    return units


def rho_to_units_floor(rho: str) -> int:
    """Whole units not exceeding decimal `rho`: a configured budget is never rounded up."""
    units = rho_to_units_ceil(rho)  # validates: finite, non-negative, in range
    return units if units_to_rho(units) <= _exact(rho) else units - 1


def parse_rho_text(text: str) -> Decimal:
    """An exact, finite, non-negative decimal rho from request text, or BudgetValueError."""
    if len(text) > MAX_RHO_TEXT_CHARS:
        raise BudgetValueError(f"rho is longer than {MAX_RHO_TEXT_CHARS} characters")
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise BudgetValueError(f"rho {text!r} is not a decimal number, e.g. '0.05'") from exc
    if not value.is_finite():
        raise BudgetValueError(f"rho must be a finite number, got {text!r}")
    if value < 0:
        raise BudgetValueError(f"rho must not be negative, got {text!r}")
    if value != 0 and value.adjusted() not in _RHO_EXPONENT_RANGE:
        raise BudgetValueError(f"rho {text!r} is out of range")
    return value


def units_to_rho(units: int) -> Fraction:
    """The exact rho value of a number of micro-rho units."""
    return Fraction(units, RHO_UNITS_PER_RHO)


def format_rho(units: int) -> str:
    """A readable decimal rendering of micro-rho units, e.g. 1500 -> '0.0015'."""
    return f"{Decimal(units).scaleb(-6).normalize():f}"


def _exact(rho: float | Fraction | Decimal | str | int) -> Fraction:
    if isinstance(rho, str):
        try:
            rho = Decimal(rho.strip())
        except InvalidOperation as exc:
            raise BudgetValueError(f"rho {rho!r} is not a number") from exc
    if isinstance(rho, Decimal):
        if not rho.is_finite():
            raise BudgetValueError(f"rho must be a finite number, got {rho}")
        rho = Fraction(rho)  # exact: every finite Decimal is a rational number
    if isinstance(rho, float) and not math.isfinite(rho):
        raise BudgetValueError(f"rho must be a finite number, got {rho}")
    exact = Fraction(rho)
    if exact < 0:
        raise BudgetValueError(f"rho must not be negative, got {rho}")
    return exact
