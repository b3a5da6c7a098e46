"""Public populations by group: CSV validation, storage, `npcs-node population`, synth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import cli as node_cli
from node.layout import NodePaths
from node.populations import load_populations
from node.synth import group_populations
from privacy.population import (
    POPULATION_COLUMNS,
    PopulationFileError,
    PopulationTable,
    parse_population_csv,
)

GOOD = (
    "year,column,value,population\n"
    "2022,race_ethnicity,black,61200\n"
    "2022,race_ethnicity,white,230000\n"
    "2023,sex,female,201000\n"
)


def test_a_valid_csv_becomes_a_table_with_its_source_and_lookups() -> None:
    table = parse_population_csv(GOOD, "  US Census Bureau, Vintage 2023 ")
    assert table.source == "US Census Bureau, Vintage 2023"
    assert len(table.rows) == 3
    assert table.lookup("2022", "race_ethnicity", "black") == 61_200
    assert table.lookup("2023", "sex", "female") == 201_000
    assert table.lookup("2023", "race_ethnicity", "black") is None  # no other year's number
    assert table.columns() == ("race_ethnicity", "sex")
    assert table.years() == ("2022", "2023")


def test_columns_may_come_in_any_order() -> None:
    table = parse_population_csv("population,value,column,year\n10,male,sex,2021\n", "src")
    assert table.lookup("2021", "sex", "male") == 10


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("year,column,value\n2022,sex,male\n", "line 1: the header lacks population"),
        ("year,column,value,population\n", "no rows"),
        ("year,column,value,population\n22,sex,male,5\n", "line 2: year '22'"),
        ("year,column,value,population\n2022,county,c001,5\n", "line 2: column 'county'"),
        ("year,column,value,population\n2022,sex,femal,5\n", "line 2: 'femal' is not a value"),
        ("year,column,value,population\n2022,race_ethnicity,unknown,5\n", "not a value"),
        ("year,column,value,population\n2022,sex,male,-5\n", "line 2: population '-5'"),
        ('year,column,value,population\n2022,sex,male,"1,000"\n', "no commas"),
        ("year,column,value,population\n2022,sex,male,1\n2022,sex,male,2\n", "line 3: a second"),
    ],
)
def test_every_problem_names_its_line_and_what_to_do(body: str, message: str) -> None:
    with pytest.raises(PopulationFileError, match=message):
        parse_population_csv(body, "src")


@pytest.mark.parametrize("source", ["", "   ", "a\nb", "x" * 501])
def test_the_source_is_required_on_one_line(source: str) -> None:
    with pytest.raises(PopulationFileError, match="source"):
        parse_population_csv(GOOD, source)


def test_the_stored_form_round_trips_and_is_revalidated() -> None:
    table = parse_population_csv(GOOD, "src")
    assert PopulationTable.from_json(table.to_json()) == table
    tampered = json.loads(table.to_json())
    tampered["rows"][0]["population"] = -1
    with pytest.raises(PopulationFileError):
        PopulationTable.from_json(json.dumps(tampered))
    with pytest.raises(PopulationFileError, match="not a stored population table"):
        PopulationTable.from_json("{}")


def _node_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(node_cli, list(args))
    return result.exit_code, result.output


def test_import_then_show_through_the_node_cli(tmp_path: Path) -> None:
    csv_file = tmp_path / "pop.csv"
    csv_file.write_text(GOOD, encoding="utf-8")
    code, output = _node_cli(
        "population", "import", str(tmp_path), str(csv_file), "--source", "ACS"
    )
    assert code == 0, output
    assert "published 3 populations (race_ethnicity, sex; years 2022, 2023) from 'ACS'" in output
    stored = load_populations(NodePaths(tmp_path))
    assert stored is not None
    assert stored.lookup("2022", "race_ethnicity", "white") == 230_000
    assert (tmp_path / "populations.json").stat().st_mode & 0o777 == 0o600  # serve's rule
    code, output = _node_cli("population", "show", str(tmp_path))
    assert code == 0, output
    assert "source: ACS" in output
    assert "2022  race_ethnicity=black  61,200" in output


def test_a_bad_csv_is_refused_and_the_published_table_is_kept(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text("year,column,value,population\n2022,sex,boys,5\n", encoding="utf-8")
    assert _node_cli("population", "import", str(tmp_path), str(good), "--source", "A")[0] == 0
    code, output = _node_cli("population", "import", str(tmp_path), str(bad), "--source", "B")
    assert code == 1
    assert "line 2: 'boys' is not a value of sex; use one of female, male" in output
    stored = load_populations(NodePaths(tmp_path))
    assert stored is not None
    assert stored.source == "A"


def test_show_without_an_import_says_how_to_import(tmp_path: Path) -> None:
    code, output = _node_cli("population", "show", str(tmp_path))
    assert code == 1
    assert "npcs-node population import" in output


def test_synthetic_populations_cover_every_group_and_sum_to_the_children() -> None:
    table = group_populations(123_457, 2021, 2022)
    for column, values in POPULATION_COLUMNS.items():
        for year in ("2021", "2022"):
            counts = [table.lookup(year, column, value) for value in values]
            assert all(count is not None and count > 0 for count in counts)
            assert sum(c for c in counts if c is not None) == 123_457
    black = table.lookup("2021", "race_ethnicity", "black")
    assert black is not None
    assert 0.12 < black / 123_457 < 0.15  # DESIGN section 3's US mix
