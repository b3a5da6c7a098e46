"""Node settings: `node.toml` in the node folder, overridable by NPCS_NODE_... variables.

Built once at the entry point (`load_settings`) and passed down.
"""

from __future__ import annotations

import difflib
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import (
    SettingsError as PydanticSettingsError,
)

from kernel.identity import IdentityError, check_fingerprint
from node.errors import NodeSetupError
from node.layout import NodePaths
from node.reject_threshold import RejectThreshold
from privacy.budget import BudgetValueError, parse_rho_text, rho_to_units_ceil
from privacy.query_route import QueryRoute
from privacy.schema import PARTNERSHIP_SCHEMA, UnitKind


class SettingsError(NodeSetupError):
    """node.toml (or an NPCS_NODE_... variable) holds a value the node cannot use."""


class MissingSettingsError(SettingsError, FileNotFoundError):
    """The folder has no node.toml."""


class BudgetSettings(BaseModel):
    """The node's privacy-budget policy, in rho (zCDP)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total_rho_per_unit_kind: dict[str, str] | None = Field(
        default=None,
        description="Total rho one person of each privacy-unit kind (child, staff) may ever "
        "lose at this node, across every dataset about that kind of person (decimal strings, "
        "exact). Unset: 10 each, or what `total_rho_per_dataset` migrates to.",
    )
    total_rho_per_dataset: dict[str, str] | None = Field(
        default=None,
        description="Before one budget per person: total rho per dataset. Still read: each "
        "unit kind gets the largest total among its datasets (see unit_kind_totals).",
    )
    max_rho_per_query: str = Field("1", description="Largest rho one query may spend.")
    analyst_caps: dict[str, str] = Field(
        default_factory=dict,
        description="Optional per-analyst cap on total rho across datasets, by analyst name.",
    )
    delta: str = Field("1e-9", description="Partnership delta for (epsilon, delta) reporting.")

    @field_validator("max_rho_per_query")
    @classmethod
    def _rho_is_positive(cls, value: str) -> str:
        return positive_rho_text(value)

    @field_validator("total_rho_per_unit_kind", "total_rho_per_dataset", "analyst_caps")
    @classmethod
    def _every_rho_is_positive(cls, values: dict[str, str] | None) -> dict[str, str] | None:
        for key, value in (values or {}).items():
            try:
                positive_rho_text(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return values

    @field_validator("total_rho_per_dataset")
    @classmethod
    def _datasets_are_known(cls, values: dict[str, str] | None) -> dict[str, str] | None:
        known_datasets(list(values or {}))
        return values

    @field_validator("total_rho_per_unit_kind")
    @classmethod
    def _unit_kinds_are_known(cls, values: dict[str, str] | None) -> dict[str, str] | None:
        known = [kind.value for kind in UnitKind]
        for name in values or {}:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"unknown privacy-unit kind {name!r}; {hint}the kinds are: {', '.join(known)}"
                )
        return values

    @model_validator(mode="after")
    def _one_way_to_set_totals(self) -> BudgetSettings:
        per_dataset = self.total_rho_per_dataset
        if self.total_rho_per_unit_kind is not None and per_dataset is not None:
            raise ValueError(
                "set budget.total_rho_per_unit_kind only: remove budget.total_rho_per_dataset "
                f"(it would migrate to {_toml_table(migrate_dataset_totals(per_dataset))})"
            )
        return self

    def unit_kind_totals(self) -> dict[str, str]:
        """Total rho per privacy-unit kind: `total_rho_per_unit_kind`; else migrated from
        the older `total_rho_per_dataset` (`migrate_dataset_totals`); else 10 per kind."""
        if self.total_rho_per_unit_kind is not None:
            return dict(self.total_rho_per_unit_kind)
        if self.total_rho_per_dataset is not None:
            return migrate_dataset_totals(self.total_rho_per_dataset)
        return dict.fromkeys((kind.value for kind in UnitKind), DEFAULT_UNIT_KIND_RHO)

    @field_validator("delta")
    @classmethod
    def _delta_is_a_probability(cls, value: str) -> str:
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            number = Decimal("NaN")
        if not (number.is_finite() and 0 < number < 1):
            raise ValueError(f"delta must be a number between 0 and 1 (like 1e-9), got {value!r}")
        return value


class ServerLimits(BaseModel):
    """How much work the gRPC server takes on at once, and how long it lets calls finish."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_workers: int = Field(8, ge=1, description="Threads answering calls.")
    max_concurrent_rpcs: int = Field(
        32, ge=1, description="Calls in progress at once; more get RESOURCE_EXHAUSTED."
    )
    grace_seconds: float = Field(
        10.0, ge=0, description="How long a stopping server lets in-flight calls finish."
    )


class MetricsSettings(BaseModel):
    """The optional Prometheus endpoint (`node.metrics`): off unless `port` is set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    port: int | None = Field(
        None, ge=0, le=65535, description="Serve /metrics on this port (0: any); unset: off."
    )
    host: str = Field(
        "127.0.0.1",
        description="Address of the metrics endpoint (plain HTTP, no authentication: keep "
        "it on loopback or a management network).",
    )


class IngestSettings(BaseModel):
    """How file ingest and database refresh treat rejected rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_rejected_fraction: Decimal = Field(
        Decimal(0),
        ge=0,
        le=1,
        description=(
            "Largest share of rows (0 to 1) that may be rejected while the valid rows still "
            "become the new snapshot; above it the current snapshot stays. 0 (strict): any "
            "rejected row keeps the current snapshot."
        ),
    )

    def threshold(self) -> RejectThreshold:
        return RejectThreshold(self.max_rejected_fraction)


class NodeSettings(BaseSettings):
    """Everything a node needs to know about itself, from node.toml and the environment."""

    model_config = SettingsConfigDict(
        env_prefix="NPCS_NODE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    name: str = Field(description="This node's name in the partnership (its certificate names it).")
    partnership: str = Field(description="The partnership name in every certificate's URI SAN.")
    host: str = "127.0.0.1"
    port: int = 50051
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    allowed_analysts: list[str] = Field(
        default_factory=list, description="Analyst names allowed to query; empty means none."
    )
    allowed_datasets: list[str] = Field(
        default_factory=lambda: list(PARTNERSHIP_SCHEMA.dataset_names),
        description="Datasets this node answers questions about (default: every one).",
    )
    revoked_fingerprints: list[str] = Field(
        default_factory=list, description="SHA-256 fingerprints (hex) of revoked certificates."
    )
    crl_file: Path | None = Field(
        None,
        description=(
            "The partnership CA's revocation list (crl.pem from `npcs ca revoke`), relative "
            "to the node folder or absolute; re-read when it changes. None: no CRL."
        ),
    )
    child_population: dict[str, int] = Field(
        default_factory=dict,
        description="Public child population by year (e.g. census estimates), for rates.",
    )
    counties: list[str] = Field(
        default_factory=list, description="Public county codes: the domain of `county`."
    )
    suppress_counts_below: int | None = Field(
        None,
        ge=1,
        description=(
            "Flag noisy counts below this as suppressed (post-processing: the cost and the "
            "released value are unchanged). None: no suppression."
        ),
    )
    query_route: QueryRoute = Field(
        QueryRoute.FAST,
        description=(
            "How answers are computed: `fast` (exact aggregate in Polars, OpenDP's noise, on "
            "snapshots verified at ingest to satisfy the contribution bounds; others and "
            "queries without a fast form use `opendp`) or `opendp` (OpenDP's full plan "
            "always). The charge is the same."
        ),
    )
    server: ServerLimits = Field(default_factory=ServerLimits)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)

    @field_validator("allowed_datasets")
    @classmethod
    def _allowed_datasets_are_known(cls, values: list[str]) -> list[str]:
        return known_datasets(values)

    @field_validator("revoked_fingerprints")
    @classmethod
    def _canonical_fingerprints(cls, values: list[str]) -> list[str]:
        """A revocation entry that could never match would leave a certificate valid."""
        try:
            return [check_fingerprint(value) for value in values]
        except IdentityError as exc:
            raise ValueError(
                f"{exc}; paste the SHA-256 fingerprint of the certificate to revoke"
            ) from exc

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then NPCS_NODE_... variables, then node.toml
        # (named by `toml_file` in the model config that `load_settings` sets).
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def positive_rho_text(value: str) -> str:
    """`value` if it is a positive decimal rho in range, else ValueError saying so."""
    try:
        rho = parse_rho_text(str(value))
        units = rho_to_units_ceil(rho)
    except BudgetValueError as exc:
        raise ValueError(f'{exc}; write a positive number like "1"') from None
    if units <= 0:
        raise ValueError(f'rho must be positive, got {value!r}; write a number like "1"')
    return value


DEFAULT_UNIT_KIND_RHO = "10"
"""Each unit kind's total rho when node.toml sets none."""


def migrate_dataset_totals(per_dataset: dict[str, str]) -> dict[str, str]:
    """The per-unit-kind totals that replace per-dataset totals: each kind gets the largest
    total among its listed datasets (so every dataset keeps the budget it had, now shared
    with the other datasets about the same people); a kind with no listed dataset gets no
    budget. The exact decimal text is kept."""
    kinds = PARTNERSHIP_SCHEMA.unit_kind_of_dataset()
    totals: dict[str, str] = {}
    for dataset, rho in per_dataset.items():
        kind = kinds[dataset]
        if kind not in totals or Decimal(rho.strip()) > Decimal(totals[kind].strip()):
            totals[kind] = rho
    return totals


def _toml_table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f'{key} = "{value}"' for key, value in sorted(values.items())) + " }"


def known_datasets(names: list[str]) -> list[str]:
    """`names` if the schema knows each one, else ValueError with the closest name."""
    known = PARTNERSHIP_SCHEMA.dataset_names
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"unknown dataset {name!r}; {hint}the datasets are: {', '.join(known)}"
            )
    return names


def load_settings(root: Path, **overrides: Any) -> NodeSettings:
    """Read `node.toml` from a node folder; NPCS_NODE_... variables override it."""
    paths = NodePaths(root)
    if not paths.settings_file.exists():
        raise MissingSettingsError(
            f"{paths.settings_file} does not exist: is {root} a node folder? "
            "Create one with `npcs-node init DIR --name NAME --partnership P`."
        )
    settings_file = paths.settings_file

    class NodeSettingsFromFile(NodeSettings):
        model_config = SettingsConfigDict(toml_file=settings_file)

    try:
        return NodeSettingsFromFile(**overrides)
    except PydanticSettingsError as exc:
        # An NPCS_NODE_... variable holding a list or table must be JSON.
        raise SettingsError(
            f"an NPCS_NODE_... environment variable cannot be read ({_first_line(exc)}): "
            "lists and tables must be JSON, e.g. NPCS_NODE_ALLOWED_DATASETS='[\"incidents\"]'. "
            "Fix or unset it and run the command again."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"{settings_file} is not valid TOML ({exc}); fix the file and run the command again."
        ) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise SettingsError(
            f"{settings_file} (or an NPCS_NODE_... variable) is not valid: {problems}. "
            "Fix the value and run the command again."
        ) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
