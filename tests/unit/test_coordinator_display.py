"""No negative count is shown; the unbiased value stays available under its own name."""

from __future__ import annotations

import csv
import io
import json
import uuid

from test_coordinator_pooling import gaussian, release, yearly_spec

from coordinator.cli.render import render_report
from coordinator.report import PARTNERSHIP_SOURCE, NodeStatus, Report, ValueRow, build_report


def report_with_a_negative_count() -> Report:
    releases = {
        "big": release("big", {("2020",): [gaussian("count", 120, 2.0)]}),
        "tiny": release("tiny", {("2020",): [gaussian("count", -16, 2.0)]}),
    }
    # a fixed query id: a random one could itself contain "-16" in the table's title
    spec = yearly_spec().model_copy(update={"query_id": uuid.UUID(int=0)})
    return build_report(
        spec=spec,
        result_id="r",
        created_at="2024-01-01T00:00:00+00:00",
        partnership="demo",
        statuses=[NodeStatus(node=n, answered=True, receipt="verified") for n in releases],
        releases=releases,
        populations={n: {"2020": 50_000} for n in releases},
    )


def rows_by_source(report: Report) -> dict[str, ValueRow]:
    return {row.source: row for row in report.rows}


def test_a_negative_noisy_count_is_shown_as_zero_and_flagged_clamped() -> None:
    rows = rows_by_source(report_with_a_negative_count())
    tiny = rows["tiny"]
    assert tiny.value == 0.0
    assert tiny.clamped
    assert tiny.unbiased_estimate == -16
    assert tiny.ci_low == 0.0
    assert tiny.rate_per_100k == 0.0
    assert tiny.unbiased_rate_per_100k == -16 * 2


def test_pooling_uses_the_unbiased_values_not_the_clamped_ones() -> None:
    pooled = rows_by_source(report_with_a_negative_count())[PARTNERSHIP_SOURCE]
    assert pooled.unbiased_estimate == 120 - 16
    assert pooled.value == 104
    assert not pooled.clamped


def test_no_negative_count_appears_in_the_table_or_the_csv_display_columns() -> None:
    report = report_with_a_negative_count()
    table = render_report(report, "table", rates=True)
    assert "-16" not in table
    assert "-32" not in table
    for line in csv.DictReader(io.StringIO(render_report(report, "csv"))):
        for column in ("value", "ci_low", "rate_per_100k", "rate_ci_low"):
            assert line[column] == "" or float(line[column]) >= 0, (column, line)


def test_json_carries_the_display_value_next_to_the_unbiased_estimate() -> None:
    rows = json.loads(render_report(report_with_a_negative_count(), "json"))["rows"]
    tiny = next(row for row in rows if row["source"] == "tiny")
    assert (tiny["value"], tiny["unbiased_estimate"], tiny["clamped"]) == (0.0, -16.0, True)


def test_results_stored_before_the_display_form_are_upgraded_when_read() -> None:
    """Older reports kept the unbiased value in `value`: it moves, and the count clamps."""
    stored = {
        "source": "tiny",
        "key": ["2020"],
        "name": "count",
        "value": -16.0,
        "std": 2.0,
        "ci_low": -20.0,
        "ci_high": -12.0,
        "rate_per_100k": -32.0,
    }
    row = ValueRow.model_validate(stored)
    assert (row.value, row.unbiased_estimate, row.clamped) == (0.0, -16.0, True)
    assert (row.ci_low, row.ci_high, row.rate_per_100k) == (0.0, 0.0, 0.0)
    assert row.unbiased_rate_per_100k == -32.0


def test_the_table_marks_a_clamped_value_and_explains_the_mark() -> None:
    table = render_report(report_with_a_negative_count(), "table", rates=True)
    assert "0.0*" in table
    assert "shown as 0" in table


def test_csv_carries_the_unbiased_estimate_and_the_clamped_flag() -> None:
    lines = list(csv.DictReader(io.StringIO(render_report(report_with_a_negative_count(), "csv"))))
    tiny = next(line for line in lines if line["source"] == "tiny")
    assert (tiny["value"], tiny["unbiased_estimate"], tiny["clamped"]) == ("0.0", "-16.0", "true")
