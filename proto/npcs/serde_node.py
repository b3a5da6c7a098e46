"""A node's self-description on the wire: DescribeResponse <-> NodeDescription."""

from __future__ import annotations

from functools import lru_cache

from pydantic import ValidationError

from kernel.messages import NodeDescription, PolicyView, UnitKindBudget
from npcs.errors import WireError
from npcs.serde_ledger import (
    checkpoint_from_proto,
    checkpoint_to_proto,
    consistency_from_proto,
)
from npcs.v1 import node_pb2 as pb
from privacy.budget import format_rho
from privacy.population import PopulationFileError, PopulationTable, build_table
from privacy.schema import Schema


def describe_to_proto(
    description: NodeDescription, *, checkpoint_fingerprint: str = ""
) -> pb.DescribeResponse:
    policy = description.policy
    message = pb.DescribeResponse(
        node_name=description.node_name,
        partnership=description.partnership,
        schema_json=description.schema.to_json(),
        schema_version=description.schema.version,
        policy=pb.Policy(
            datasets=list(policy.datasets),
            total_rho_per_dataset=dict(policy.total_rho_per_dataset),
            max_rho_per_query=policy.max_rho_per_query,
            delta=policy.delta,
            total_rho_per_unit_kind=dict(policy.total_rho_per_unit_kind),
        ),
        unit_kind_budgets=[
            pb.UnitKindBudget(
                unit_kind=budget.unit_kind,
                datasets=list(budget.datasets),
                total_rho=budget.total_rho,
                spent_units=budget.spent_units,
                remaining_units=budget.remaining_units,
                spent_epsilon=budget.spent_epsilon,
                total_epsilon=budget.total_epsilon,
            )
            for budget in description.unit_kind_budgets
        ],
        remaining=[
            pb.DatasetBudget(dataset=name, remaining_units=units, remaining_rho=format_rho(units))
            for name, units in sorted(description.remaining_units.items())
        ],
        child_population=dict(description.child_population),
        ledger_public_key_pem=description.ledger_public_key_pem,
        opendp_version=description.opendp_version,
    )
    if policy.analyst_cap_rho is not None:
        message.policy.analyst_cap_rho = policy.analyst_cap_rho
    if description.group_populations is not None:
        message.population_source = description.group_populations.source
        message.group_populations.extend(
            pb.GroupPopulation(year=r.year, column=r.column, value=r.value, population=r.population)
            for r in description.group_populations.rows
        )
    if description.latest_checkpoint is not None:
        checkpoint = description.latest_checkpoint
        message.latest_checkpoint.CopyFrom(
            checkpoint_to_proto(
                checkpoint.signed, checkpoint.key_fingerprint or checkpoint_fingerprint
            )
        )
    return message


@lru_cache(maxsize=8)
def schema_from_json(text: str) -> Schema:
    """The partnership's nodes publish one schema: a fan-out parses its text once, not
    once per node (Schema is frozen, so every node's description may share it)."""
    return Schema.from_json(text)


def describe_from_proto(message: pb.DescribeResponse) -> NodeDescription:
    try:
        schema = schema_from_json(message.schema_json)
    except ValidationError as exc:
        raise WireError("schema_json", "the node's schema is not a valid Schema") from exc
    policy = message.policy
    return NodeDescription(
        node_name=message.node_name,
        partnership=message.partnership,
        schema=schema,
        policy=PolicyView(
            datasets=tuple(policy.datasets),
            total_rho_per_dataset=dict(policy.total_rho_per_dataset),
            max_rho_per_query=policy.max_rho_per_query,
            analyst_cap_rho=(
                policy.analyst_cap_rho if policy.HasField("analyst_cap_rho") else None
            ),
            delta=policy.delta,
            total_rho_per_unit_kind=dict(policy.total_rho_per_unit_kind),
        ),
        unit_kind_budgets=tuple(
            UnitKindBudget(
                unit_kind=budget.unit_kind,
                datasets=tuple(budget.datasets),
                total_rho=budget.total_rho,
                spent_units=budget.spent_units,
                remaining_units=budget.remaining_units,
                spent_epsilon=budget.spent_epsilon,
                total_epsilon=budget.total_epsilon,
            )
            for budget in message.unit_kind_budgets
        ),
        remaining_units={budget.dataset: budget.remaining_units for budget in message.remaining},
        child_population=dict(message.child_population),
        ledger_public_key_pem=message.ledger_public_key_pem,
        latest_checkpoint=(
            checkpoint_from_proto(message.latest_checkpoint, path="latest_checkpoint")
            if message.HasField("latest_checkpoint")
            else None
        ),
        opendp_version=message.opendp_version,
        group_populations=_populations_from_proto(message),
        consistency=consistency_from_proto(
            message.consistency if message.HasField("consistency") else None
        ),
    )


def _populations_from_proto(message: pb.DescribeResponse) -> PopulationTable | None:
    if not message.group_populations:
        return None
    try:
        return build_table(
            message.population_source,
            ((r.year, r.column, r.value, str(r.population)) for r in message.group_populations),
        )
    except PopulationFileError as exc:
        raise WireError("group_populations", str(exc)) from None
