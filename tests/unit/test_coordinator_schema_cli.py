"""`npcs schema` and did-you-mean for datasets, columns and values."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from coordinator.cli import cli
from coordinator.cli.query_args import QueryArgumentError, build_query
from coordinator.suggest import closest, unknown


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_schema_lists_every_dataset_with_columns_domains_and_bounds() -> None:
    code, output = run("schema")
    assert code == 0, output
    for dataset in ("incidents", "reports", "workforce", "safety_culture"):
        assert dataset in output
    assert "0 .. 215" in output  # child_age_months bounds
    assert "fatality, near_fatality" in output


def test_schema_json_for_one_dataset_hides_identifiers_and_names_node_declared_domains() -> None:
    code, output = run("schema", "reports", "--format", "json")
    assert code == 0, output
    document = json.loads(output)
    assert document["format"] == "npcs.schema.v1"
    (dataset,) = document["datasets"]
    columns = {c["name"]: c for c in dataset["columns"]}
    assert dataset["privacy_unit"] not in columns
    assert any(c["domain_declared_by_node"] for c in columns.values())


def test_schema_suggests_the_closest_dataset_for_a_typo() -> None:
    code, output = run("schema", "incident")
    assert code == 2
    assert "did you mean 'incidents'?" in output


@pytest.mark.parametrize(
    ("arguments", "suggestion"),
    [
        ({"dataset": "incident"}, "did you mean 'incidents'?"),
        ({"by": "sexx"}, "did you mean 'sex'?"),
        ({"where": "incidnt_type=fatality"}, "did you mean 'incident_type'?"),
        ({"where": "sex=femal"}, "did you mean 'female'?"),
        ({"where": "incident_type=fatalty"}, "did you mean 'fatality'?"),
    ],
)
def test_query_arguments_suggest_the_closest_known_name(
    arguments: dict[str, str], suggestion: str
) -> None:
    base = {"statistic": "count", "dataset": "incidents", "column": None}
    with pytest.raises(QueryArgumentError, match=suggestion.replace("?", r"\?")):
        build_query(**(base | arguments), rho="0.1", purpose="typo test")  # type: ignore[arg-type]


def test_measured_column_typos_are_suggested_too() -> None:
    with pytest.raises(QueryArgumentError, match="did you mean 'child_age_months'"):
        build_query(
            statistic="mean",
            dataset="incidents",
            column="child_age_month",
            rho="0.1",
            purpose="typo test",
        )


def test_no_suggestion_when_nothing_is_close() -> None:
    assert closest("zzzz", ["female", "male"]) is None
    assert "did you mean" not in unknown("value", "zzzz", ["female", "male"])
    assert closest("FEMALE", ["female", "male"]) == "female"


def test_schema_view_shows_each_nodes_populations_by_group_with_their_source() -> None:
    from coordinator.cli.schema import _tables
    from coordinator.schema_view import schema_view, select_datasets
    from privacy.population import parse_population_csv

    table = parse_population_csv(
        "year,column,value,population\n2023,race_ethnicity,black,61200\n", "Census V2023"
    )
    view = schema_view(select_datasets("incidents"), group_populations={"county-a": table})
    assert view["group_population"] == {
        "county-a": {
            "source": "Census V2023",
            "rows": [
                {"year": "2023", "column": "race_ethnicity", "value": "black", "population": 61200}
            ],
        }
    }
    text = _tables(view)
    assert "county-a: child population by group" in text
    assert "race_ethnicity=black" in text
    assert "61,200" in text
    assert "source: Census V2023" in text
