"""Suppression means hidden: a flagged cell appears in no output, nor by subtraction."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

from test_coordinator_pooling import gaussian, release, yearly_spec

from coordinator.cli.render import render_report
from coordinator.report import PARTNERSHIP_SOURCE, NodeStatus, Report, ValueRow, build_report
from coordinator.suppression import HIDDEN_FIELDS
from privacy.release import Estimate

HIDDEN_VALUE = 7.0
YEARS = ("2020", "2021", "2022")


def flagged(value: float) -> Estimate:
    return gaussian("count", value, 2.0).model_copy(update={"suppressed": True})


def report_with_a_suppressed_cell() -> Report:
    big: dict[tuple[str, ...], list[Estimate]] = {
        (y,): [gaussian("count", 1200 + i, 2.0)] for i, y in enumerate(YEARS)
    }
    tiny: dict[tuple[str, ...], list[Estimate]] = {
        (y,): [gaussian("count", 40 + i, 2.0)] for i, y in enumerate(YEARS)
    }
    tiny[("2021",)] = [flagged(HIDDEN_VALUE)]
    releases = {"big": release("big", big), "tiny": release("tiny", tiny)}
    return build_report(
        spec=yearly_spec().model_copy(update={"query_id": uuid.UUID(int=0)}),
        result_id="r",
        created_at="2024-01-01T00:00:00+00:00",
        partnership="demo",
        statuses=[NodeStatus(node=n, answered=True, receipt="verified") for n in releases],
        releases=releases,
        populations={n: dict.fromkeys(YEARS, 50000) for n in releases},
    )


def row(report: Report, source: str, year: str) -> ValueRow:
    return next(r for r in report.rows if r.source == source and r.key == (year,))


def test_the_suppressed_cell_keeps_no_number_that_could_reveal_it() -> None:
    hidden = row(report_with_a_suppressed_cell(), "tiny", "2021")
    assert hidden.suppressed
    assert hidden.suppression == "node"
    for field in HIDDEN_FIELDS:
        assert getattr(hidden, field) is None, field


def test_the_pooled_row_that_would_reveal_it_by_subtraction_is_hidden_too() -> None:
    report = report_with_a_suppressed_cell()
    pooled = row(report, PARTNERSHIP_SOURCE, "2021")
    assert pooled.suppressed
    assert pooled.suppression == "complementary"
    assert all(getattr(pooled, field) is None for field in HIDDEN_FIELDS)
    # the other years are untouched
    assert row(report, PARTNERSHIP_SOURCE, "2020").unbiased_estimate == 1200 + 40


def test_trends_through_a_hidden_point_are_left_out() -> None:
    """The slope and the shown points would pin the hidden value down."""
    sources = {trend.source for trend in report_with_a_suppressed_cell().trends}
    assert sources == {"big"}


def test_the_json_output_holds_no_value_for_the_suppressed_cell() -> None:
    document = json.loads(render_report(report_with_a_suppressed_cell(), "json"))
    rows = [r for r in document["rows"] if r["key"] == ["2021"] and r["source"] != "big"]
    assert len(rows) == 2
    for hidden in rows:
        assert hidden["suppressed"] is True
        assert all(hidden[field] is None for field in HIDDEN_FIELDS)
    assert HIDDEN_VALUE not in _numbers(document)


def _numbers(node: object) -> list[float]:
    if isinstance(node, dict):
        return [n for value in node.values() for n in _numbers(value)]
    if isinstance(node, list):
        return [n for value in node for n in _numbers(value)]
    if isinstance(node, int | float) and not isinstance(node, bool):
        return [float(node)]
    return []


def test_the_csv_output_holds_no_value_for_the_suppressed_cell() -> None:
    lines = csv.DictReader(io.StringIO(render_report(report_with_a_suppressed_cell(), "csv")))
    hidden = [line for line in lines if line["key"] == "2021" and line["source"] != "big"]
    assert [line["suppression"] for line in hidden] == ["node", "complementary"]
    for line in hidden:
        assert all(line[field] == "" for field in HIDDEN_FIELDS), line


def test_the_table_shows_suppressed_and_no_number_or_interval() -> None:
    table = render_report(report_with_a_suppressed_cell(), "table", rates=True)
    hidden = [line for line in table.splitlines() if "2021" in line and "big" not in line]
    assert len(hidden) == 2
    for line in hidden:
        assert "suppressed" in line
        assert not any(ch.isdigit() for ch in line.replace("2021", "")), line
    assert "complementary" in table


def test_the_chart_draws_no_point_for_the_suppressed_cell_and_marks_it(tmp_path: Path) -> None:
    from coordinator.charts import panel_points, write_chart

    report = report_with_a_suppressed_cell()
    for source in ("tiny", PARTNERSHIP_SOURCE):
        points = panel_points(report, source, "count", rates=True)
        hidden = [p for p in points if p.label == "2021"]
        assert [(p.suppressed, p.value, p.low, p.high) for p in hidden] == [
            (True, None, None, None)
        ]
    svg = write_chart(report, tmp_path / "chart.svg", rates=True).read_text()
    assert ">S<" in svg
