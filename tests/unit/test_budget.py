"""Exact budget arithmetic: costs round up, bad rho values are refused by name."""

from decimal import Decimal
from fractions import Fraction

import pytest

from privacy.budget import (
    MAX_RHO_UNITS,
    BudgetValueError,
    format_rho,
    rho_to_units_ceil,
    units_to_rho,
)


@pytest.mark.parametrize(
    ("rho", "units"),
    [
        ("0.5", 500_000),
        (Decimal("0.0000011"), 2),  # 1.1 micro-rho rounds up, never down
        (Fraction(1, 3), 333_334),
        (0, 0),
        ("1e-12", 1),
    ],
)
def test_rho_converts_to_micro_rho_rounding_up(rho: object, units: int) -> None:
    assert rho_to_units_ceil(rho) == units  # type: ignore[arg-type]


def test_a_float_cost_is_never_under_charged() -> None:
    """0.1 as a float is slightly above 1/10, so it costs one unit more than 0.1 exactly."""
    assert rho_to_units_ceil(0.1) >= Fraction(1, 10) * 1_000_000
    assert units_to_rho(rho_to_units_ceil(0.1)) >= Fraction(0.1)


@pytest.mark.parametrize(
    ("rho", "message"),
    [
        ("nan", "finite"),
        (float("inf"), "finite"),
        (Decimal("-Infinity"), "finite"),
        ("-0.1", "negative"),
        ("abc", "not a number"),
        (Decimal("1e30"), "larger than the maximum"),
    ],
)
def test_bad_rho_values_are_refused_with_a_reason(rho: object, message: str) -> None:
    with pytest.raises(BudgetValueError, match=message):
        rho_to_units_ceil(rho)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("units", "text"),
    [
        (1500, "0.0015"),
        (10**12, "1000000"),
        (0, "0"),
        (1, "0.000001"),
        (MAX_RHO_UNITS, "1000000000"),
    ],
)
def test_units_format_as_plain_decimals(units: int, text: str) -> None:
    assert format_rho(units) == text
