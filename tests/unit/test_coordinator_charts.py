"""Charts are real PNG/SVG files (magic bytes, XML root), with small multiples."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_coordinator_pooling import three_node_report

from coordinator.charts import (
    ChartError,
    ChartPoint,
    panel_points,
    shared_limits,
    shares_y,
    write_chart,
)


def test_png_chart_is_written_with_png_magic_bytes(tmp_path: Path) -> None:
    path = write_chart(three_node_report(), tmp_path / "trend.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_svg_chart_is_well_formed_xml_with_svg_root(tmp_path: Path) -> None:
    path = write_chart(three_node_report(), tmp_path / "trend.svg", rates=True)
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")


def test_other_suffixes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ChartError, match=r"\.png or \.svg"):
        write_chart(three_node_report(), tmp_path / "trend.pdf")


def _svg_text(path: Path) -> str:
    return " ".join(element.text or "" for element in ET.parse(path).getroot().iter())


def test_every_panel_has_axis_labels_and_the_caption_names_filters_and_purpose(
    tmp_path: Path,
) -> None:
    report = three_node_report()
    text = _svg_text(write_chart(report, tmp_path / "chart.svg"))
    assert text.count("incident_date:year") == 4  # x label on the pooled and 3 node panels
    assert text.count("count") >= 4
    assert "Filters: incident_date=2020-01-01..2022-12-31" in text
    assert "Purpose: test" in text


def test_rates_share_one_y_scale_and_counts_do_not_unless_asked() -> None:
    report = three_node_report()
    assert shares_y(report, rates=True, y_scale="auto")
    assert not shares_y(report, rates=False, y_scale="auto")
    assert shares_y(report, rates=False, y_scale="shared")
    assert not shares_y(report, rates=True, y_scale="free")


def test_a_shared_scale_cuts_one_panels_huge_interval_instead_of_squashing_the_rest() -> None:
    def point(value: float, half_width: float) -> ChartPoint:
        return ChartPoint(
            label="2021",
            series="",
            value=value,
            low=value - half_width,
            high=value + half_width,
            clamped=False,
            suppressed=False,
            slope_point=None,
        )

    limits = shared_limits([[point(20.0, 2.0)], [point(24.0, 3.0)], [point(30.0, 200.0)]])
    assert limits is not None
    low, high = limits
    assert high < 30 + 200  # the tribe's +/-200 is cut (and marked) ...
    assert high >= 30 + 10  # ... while every value and small bar fits
    assert low <= 18
    assert low >= 0  # nothing here can be negative


def test_slopes_are_shown_for_rates_too(tmp_path: Path) -> None:
    text = _svg_text(write_chart(three_node_report(), tmp_path / "rates.svg", rates=True))
    assert text.count("slope") == 4


def test_a_clamped_value_is_marked_in_the_chart_points() -> None:
    from test_coordinator_display import report_with_a_negative_count

    points = panel_points(report_with_a_negative_count(), "tiny", "count", rates=False)
    assert [(p.value, p.clamped) for p in points] == [(0.0, True)]


def test_without_matplotlib_the_error_names_the_charts_extra_and_how_to_redraw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules is how Python spells "this module cannot be imported".
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    report = three_node_report()
    path = tmp_path / "trend.png"
    with pytest.raises(ChartError) as raised:
        write_chart(report, path)
    message = str(raised.value)
    assert 'pip install "npcs-federation[charts]"' in message
    assert f"npcs results show {report.result_id} --plot {path}" in message
    assert not path.exists()
