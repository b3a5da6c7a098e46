"""docs/benchmarks.md and bench/ agree: every bench is documented with the results file it
writes, and every results file it names is committed (issue 12: "docs/benchmarks.md
matches bench/results/")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
DOC = ROOT / "docs" / "benchmarks.md"
_TABLE_ROW = re.compile(r"^\| `(bench_\w+\.py)` \|(?P<rest>.*)\|$")
_RESULT_NAME = re.compile(r"`([\w.-]+\.json)`")


def documented_benches() -> dict[str, list[str]]:
    """Each bench in the doc's index table, with the results files its row names."""
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _TABLE_ROW.match(line)
        if match:
            last_cell = match.group("rest").rsplit("|", 1)[-1]
            rows[match.group(1)] = _RESULT_NAME.findall(last_cell)
    return rows


def bench_scripts() -> list[str]:
    return sorted(path.name for path in BENCH.glob("bench_*.py"))


def test_every_bench_is_in_the_index_table() -> None:
    assert sorted(documented_benches()) == bench_scripts()


@pytest.mark.parametrize("bench", bench_scripts())
def test_each_bench_names_results_it_writes_and_they_are_committed(bench: str) -> None:
    named = documented_benches().get(bench)
    assert named, f"docs/benchmarks.md names no results file for {bench}"
    source = (BENCH / bench).read_text(encoding="utf-8")
    # The default results file is in the bench's source; others come from its --out.
    assert any(name in source for name in named), f"{bench} writes none of {named}"
    for name in named:
        path = RESULTS / name
        assert path.is_file(), f"bench/results/{name} is not committed: run {bench}"
        assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)


def test_every_committed_result_is_documented() -> None:
    named = {name for names in documented_benches().values() for name in names}
    committed = {path.name for path in RESULTS.glob("*.json")}
    assert committed <= named, f"undocumented results: {sorted(committed - named)}"
