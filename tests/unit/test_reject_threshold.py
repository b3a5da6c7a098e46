"""The reject threshold compares shares exactly and explains itself to the operator."""

from __future__ import annotations

from decimal import Decimal

import pytest

from node.reject_threshold import RejectThreshold


def test_the_default_threshold_is_strict() -> None:
    strict = RejectThreshold()
    assert not strict.exceeded(0, 1_000_000)
    assert strict.exceeded(1, 1_000_000)


def test_a_share_exactly_at_the_threshold_is_allowed_and_one_more_row_is_not() -> None:
    # 0.1 is not a binary float: exact rational comparison must put 1 of 10 at the limit.
    threshold = RejectThreshold(Decimal("0.1"))
    assert not threshold.exceeded(1, 10)
    assert not threshold.exceeded(100_000, 1_000_000)
    assert threshold.exceeded(100_001, 1_000_000)


def test_everything_may_be_rejected_only_at_one() -> None:
    assert not RejectThreshold(Decimal(1)).exceeded(5, 5)
    assert RejectThreshold(Decimal("0.999999")).exceeded(5, 5)


@pytest.mark.parametrize("value", ["-0.01", "1.5"])
def test_a_fraction_outside_zero_to_one_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        RejectThreshold(Decimal(value))


def test_the_explanation_names_the_counts_the_setting_and_what_to_do() -> None:
    message = RejectThreshold(Decimal("0.01")).explain(3, 100)
    assert "3 of 100 rows (3%) were rejected" in message
    assert "at most 1% rejected" in message
    assert "ingest.max_rejected_fraction" in message
    assert "current snapshot is unchanged" in message
