"""Charts are real PNG/SVG files (magic bytes, XML root), with small multiples."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_coordinator_pooling import three_node_report

from coordinator.charts import ChartError, write_chart


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
