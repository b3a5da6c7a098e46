"""What an analyst may ask about: datasets, columns, domains, bounds and populations.

Built from the public partnership schema (no network) and, when nodes were described,
each node's own declared domains (e.g. its county codes) and published child
population by year. Pure data: `coordinator/cli/schema.py` renders it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from coordinator.suggest import unknown
from privacy.population import PopulationTable
from privacy.schema import PARTNERSHIP_SCHEMA, Column, ColumnKind, Dataset, Schema


class UnknownDatasetError(LookupError):
    """A dataset name the schema does not have (the message suggests the closest)."""


def select_datasets(name: str | None, schema: Schema = PARTNERSHIP_SCHEMA) -> tuple[Dataset, ...]:
    if name is None:
        return schema.datasets
    try:
        return (schema.dataset(name),)
    except KeyError:
        raise UnknownDatasetError(unknown("dataset", name, schema.dataset_names)) from None


def column_view(column: Column) -> dict[str, object]:
    values = column.public_values()
    return {
        "name": column.name,
        "kind": column.kind.value,
        "description": column.description,
        "nullable": column.nullable,
        "domain": None if values is None else [str(v).lower() for v in values],
        "domain_declared_by_node": column.kind is ColumnKind.CATEGORICAL and values is None,
        "lower": column.lower,
        "upper": column.upper,
    }


def dataset_view(
    dataset: Dataset, node_schemas: Mapping[str, Schema] | None = None
) -> dict[str, object]:
    """One dataset; `node_schemas` add each node's own domains for node-declared columns."""
    columns = [column_view(c) for c in dataset.columns if c.kind is not ColumnKind.IDENTIFIER]
    node_domains: dict[str, dict[str, list[str]]] = {}
    for node, schema in (node_schemas or {}).items():
        try:
            local = schema.dataset(dataset.name)
        except KeyError:
            continue
        declared = {
            c.name: list(c.domain)
            for c in local.columns
            if c.domain is not None
            and dataset.has_column(c.name)
            and dataset.column(c.name).domain is None
        }
        if declared:
            node_domains[node] = declared
    return {
        "name": dataset.name,
        "description": dataset.description,
        "privacy_unit": dataset.privacy_unit,
        "max_rows_per_unit": dataset.max_rows_per_unit,
        "columns": columns,
        "node_domains": node_domains,
    }


def schema_view(
    datasets: Sequence[Dataset],
    *,
    node_schemas: Mapping[str, Schema] | None = None,
    populations: Mapping[str, Mapping[str, int]] | None = None,
    group_populations: Mapping[str, PopulationTable] | None = None,
    problems: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """The document `npcs schema --format json` prints (docs/analyst-guide.md)."""
    return {
        "format": "npcs.schema.v1",
        "schema_version": PARTNERSHIP_SCHEMA.version,
        "datasets": [dataset_view(d, node_schemas) for d in datasets],
        "child_population": {node: dict(by_year) for node, by_year in (populations or {}).items()},
        "group_population": {
            node: json.loads(table.to_json()) for node, table in (group_populations or {}).items()
        },
        "node_problems": dict(problems or {}),
    }
