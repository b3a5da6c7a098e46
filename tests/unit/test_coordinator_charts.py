"""Charts are real PNG/SVG files (magic bytes, XML root), with small multiples."""

from __future__ import annotations

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
