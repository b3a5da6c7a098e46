"""Invariants of the partnership's common data model (privacy/schema.py)."""

from __future__ import annotations

import json

import pytest

from privacy.schema import PARTNERSHIP_SCHEMA, Column, ColumnKind, Dataset, Schema

ALL_COLUMNS = [
    pytest.param(dataset, column, id=f"{dataset.name}.{column.name}")
    for dataset in PARTNERSHIP_SCHEMA.datasets
    for column in dataset.columns
]


def test_the_schema_has_the_four_datasets_of_the_design_and_the_worker_year_view() -> None:
    assert PARTNERSHIP_SCHEMA.dataset_names == (
        "incidents",
        "reports",
        "workforce",
        "workforce_years",
        "safety_culture",
    )


@pytest.mark.parametrize(("dataset", "column"), ALL_COLUMNS)
def test_every_categorical_has_a_public_domain_except_the_node_declared_county(
    dataset: Dataset, column: Column
) -> None:
    if column.kind is not ColumnKind.CATEGORICAL:
        return
    if column.name == "county":
        assert column.domain is None
    else:
        assert column.domain, f"{dataset.name}.{column.name} has no domain"
        assert len(set(column.domain)) == len(column.domain), "domain values repeat"


@pytest.mark.parametrize(("dataset", "column"), ALL_COLUMNS)
def test_numeric_columns_have_bounds_with_lower_below_upper(
    dataset: Dataset, column: Column
) -> None:
    if not column.is_numeric:
        assert column.lower is None
        assert column.upper is None
        return
    assert column.lower is not None, f"{dataset.name}.{column.name} has no lower bound"
    assert column.upper is not None, f"{dataset.name}.{column.name} has no upper bound"
    assert column.lower < column.upper


@pytest.mark.parametrize("dataset", PARTNERSHIP_SCHEMA.datasets, ids=lambda d: d.name)
def test_the_privacy_unit_is_a_non_nullable_identifier_column(dataset: Dataset) -> None:
    unit = dataset.column(dataset.privacy_unit)
    assert unit.kind is ColumnKind.IDENTIFIER
    assert not unit.nullable
    assert dataset.max_rows_per_unit >= 1


@pytest.mark.parametrize("dataset", PARTNERSHIP_SCHEMA.datasets, ids=lambda d: d.name)
def test_column_names_are_unique_and_every_dataset_has_a_date_column(dataset: Dataset) -> None:
    assert len(set(dataset.column_names)) == len(dataset.column_names)
    assert dataset.date_columns


def test_json_round_trip_gives_an_equal_schema_and_identical_canonical_text() -> None:
    text = PARTNERSHIP_SCHEMA.to_json()
    again = Schema.from_json(text)
    assert again == PARTNERSHIP_SCHEMA
    assert again.to_json() == text


def test_local_domains_fill_county_everywhere_and_survive_a_round_trip() -> None:
    local = PARTNERSHIP_SCHEMA.with_local_domains({"county": ("c001", "c002")})
    for dataset in local.datasets:
        if dataset.has_column("county"):
            assert dataset.column("county").domain == ("c001", "c002")
    assert Schema.from_json(local.to_json()) == local
    # The shared schema itself is unchanged (frozen value objects).
    assert PARTNERSHIP_SCHEMA.dataset("incidents").column("county").domain is None


def test_unknown_dataset_and_column_raise_key_error() -> None:
    with pytest.raises(KeyError):
        PARTNERSHIP_SCHEMA.dataset("nope")
    with pytest.raises(KeyError):
        PARTNERSHIP_SCHEMA.dataset("incidents").column("nope")


def test_canonical_json_is_never_stale_for_a_copy_with_other_local_domains() -> None:
    # to_json is cached per schema value (a node sends it with every Describe).
    base = PARTNERSHIP_SCHEMA.to_json()
    local = PARTNERSHIP_SCHEMA.with_local_domains({"county": ("c001", "c002")})
    fresh = json.dumps(local.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert local.to_json() == fresh != base
    assert PARTNERSHIP_SCHEMA.to_json() == base
