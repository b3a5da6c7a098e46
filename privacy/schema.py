"""Long on purpose: the four datasets' columns, domains and bounds are one data model.

The partnership's common data model: four datasets, one versioned schema.

Codes follow the federal systems an agency already reports to, so a real export can be
mapped onto them: the NCANDS Child File (maltreatment types, report sources,
dispositions, race flags) and the National Fatality Review Case Reporting System (NFR-CRS:
manner and cause of death, sleep-related items). Systemic-factor items follow the Safe
Systems Improvement Tool (SSIT), scored 0-3.

Every categorical column carries its public value domain: these are the group keys a
query may release at no privacy cost. Every numeric column carries clipping bounds.
The schema is published by each node (`Describe`) and is the only thing, besides node
policy, that query validation may consult.
"""

from __future__ import annotations

import functools
import json
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from privacy.query import TimeBucket

SCHEMA_VERSION = "2026.1"

EARLIEST_DATE = date(1990, 1, 1)
LATEST_DATE = date(2099, 12, 31)


class ColumnKind(StrEnum):
    IDENTIFIER = "identifier"
    """A record or person identifier: never grouped, filtered or released."""
    CATEGORICAL = "categorical"
    """Text codes from a public domain."""
    BOOLEAN = "boolean"
    """A yes/no flag; its domain is (false, true)."""
    INTEGER = "integer"
    """A whole number clipped to public bounds."""
    FLOAT = "float"
    """A real number clipped to public bounds."""
    DATE = "date"
    """A calendar date; queries bucket it by year, fiscal year, quarter or month."""


NUMERIC_KINDS = frozenset({ColumnKind.INTEGER, ColumnKind.FLOAT})
GROUPABLE_KINDS = frozenset({ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN})


class Column(BaseModel):
    """One column: its type, and its public domain or clipping bounds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: ColumnKind
    description: str
    nullable: bool = False
    domain: tuple[str, ...] | None = Field(
        default=None,
        description="Public values of a categorical column. None on a categorical column "
        "means each node declares its own public domain (e.g. county codes).",
    )
    lower: float | None = None
    upper: float | None = None

    @property
    def is_numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS

    @property
    def is_groupable(self) -> bool:
        return self.kind in GROUPABLE_KINDS

    def public_values(self) -> tuple[str, ...] | tuple[bool, ...] | None:
        """The public domain used as group keys, or None when the node has not declared it."""
        if self.kind is ColumnKind.BOOLEAN:
            return (False, True)
        return self.domain


DECLARABLE_PERIODS = frozenset({TimeBucket.MONTH, TimeBucket.QUARTER, TimeBucket.YEAR})
"""Calendar buckets a per-period contribution bound may be declared for."""


class UnitKind(StrEnum):
    """The kind of person a dataset's privacy unit is: each kind has one privacy budget at
    a node, shared by every dataset whose rows describe that kind of person."""

    CHILD = "child"
    STAFF = "staff"


class PeriodBound(BaseModel):
    """At most `max_rows` rows of one privacy unit fall in any one `period` bucket of the
    dataset's `contribution_period` column (Tumult's MaxRowsPerGroupPerID, with the
    group being a calendar month, quarter or year)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period: TimeBucket
    max_rows: Annotated[int, Field(ge=1)]


class Dataset(BaseModel):
    """One dataset: its columns, privacy unit and contribution bounds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    privacy_unit: str = Field(description="The column identifying the person protected by DP.")
    unit_kind: UnitKind = Field(
        description="The kind of person `privacy_unit` identifies; datasets of one kind share "
        "one privacy budget at a node (a child in `incidents` is also in `reports`)."
    )
    max_rows_per_unit: Annotated[int, Field(ge=1)] = Field(
        description="Total contribution bound: the most rows one privacy unit may have. "
        "Ingest keeps at most this many rows per unit; every query truncates to it again "
        "(OpenDP identifier truncation), so a snapshot written outside ingest cannot "
        "break it."
    )
    contribution_period: str | None = Field(
        default=None,
        description="The date column the per-period bounds refer to (None: no such bounds).",
    )
    max_rows_per_period: tuple[PeriodBound, ...] = Field(
        default=(),
        description="Per-period contribution bounds on `contribution_period`, enforced like "
        "the total bound (ingest keeps the earliest rows; queries truncate again).",
    )
    columns: tuple[Column, ...]

    @model_validator(mode="before")
    @classmethod
    def _unit_kind_of_an_older_schema(cls, data: Any) -> Any:
        """A schema published before unit kinds (an older node's `Describe`) names none:
        take the kind of the partnership dataset of the same name."""
        if isinstance(data, dict) and "unit_kind" not in data:
            known = _PARTNERSHIP_UNIT_KINDS.get(str(data.get("name")))
            if known is not None:
                return {**data, "unit_kind": known}
        return data

    @model_validator(mode="after")
    def _check_bounds(self) -> Dataset:
        if self.privacy_unit not in self.column_names:
            raise ValueError(f"{self.name}: privacy unit {self.privacy_unit!r} is not a column")
        if self.max_rows_per_period and self.contribution_period is None:
            raise ValueError(f"{self.name}: per-period bounds need a contribution_period")
        if self.contribution_period is not None:
            if self.contribution_period not in self.date_columns:
                raise ValueError(
                    f"{self.name}: contribution_period {self.contribution_period!r} "
                    "is not a date column"
                )
            if self.column(self.contribution_period).nullable:
                raise ValueError(f"{self.name}: contribution_period may not be nullable")
        periods = [bound.period for bound in self.max_rows_per_period]
        if len(set(periods)) != len(periods) or not set(periods) <= DECLARABLE_PERIODS:
            raise ValueError(f"{self.name}: declare each of month, quarter, year at most once")
        if any(bound.max_rows > self.max_rows_per_unit for bound in self.max_rows_per_period):
            raise ValueError(f"{self.name}: a per-period bound exceeds the total bound")
        return self

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def has_column(self, name: str) -> bool:
        return any(column.name == name for column in self.columns)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def date_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.kind is ColumnKind.DATE)


class Schema(BaseModel):
    """The versioned common data model shared by nodes and the coordinator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    datasets: tuple[Dataset, ...]

    def dataset(self, name: str) -> Dataset:
        for dataset in self.datasets:
            if dataset.name == name:
                return dataset
        raise KeyError(name)

    @property
    def dataset_names(self) -> tuple[str, ...]:
        return tuple(dataset.name for dataset in self.datasets)

    def unit_kind_of_dataset(self) -> dict[str, str]:
        """Each dataset's privacy-unit kind, by dataset name."""
        return {dataset.name: dataset.unit_kind.value for dataset in self.datasets}

    def with_local_domains(self, domains: dict[str, tuple[str, ...]]) -> Schema:
        """This schema with node-declared domains (e.g. county codes) filled in."""
        datasets = tuple(
            dataset.model_copy(
                update={
                    "columns": tuple(
                        column.model_copy(update={"domain": tuple(domains[column.name])})
                        if column.name in domains and column.kind is ColumnKind.CATEGORICAL
                        else column
                        for column in dataset.columns
                    )
                }
            )
            for dataset in self.datasets
        )
        return self.model_copy(update={"datasets": datasets})

    def to_json(self) -> str:
        """Canonical JSON (sorted keys) for publication and hashing."""
        return _canonical_json(self)

    @classmethod
    def from_json(cls, text: str) -> Schema:
        return cls.model_validate_json(text)


@functools.lru_cache(maxsize=8)
def _canonical_json(schema: Schema) -> str:
    """Computed once per distinct schema (frozen, so hashable by value: a copy with other
    domains is another key): a node sends it with every Describe."""
    return json.dumps(schema.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------------
# Shared column builders


def _identifier(name: str, description: str, nullable: bool = False) -> Column:
    return Column(name=name, kind=ColumnKind.IDENTIFIER, description=description, nullable=nullable)


def _category(name: str, description: str, values: tuple[str, ...] | None) -> Column:
    return Column(name=name, kind=ColumnKind.CATEGORICAL, description=description, domain=values)


def _flag(name: str, description: str) -> Column:
    return Column(name=name, kind=ColumnKind.BOOLEAN, description=description)


def _integer(name: str, description: str, lower: int, upper: int, nullable: bool = False) -> Column:
    return Column(
        name=name,
        kind=ColumnKind.INTEGER,
        description=description,
        lower=lower,
        upper=upper,
        nullable=nullable,
    )


def _date(name: str, description: str, nullable: bool = False) -> Column:
    return Column(name=name, kind=ColumnKind.DATE, description=description, nullable=nullable)


SEX = ("female", "male", "unknown")
RACE_ETHNICITY = (
    "aian",
    "asian",
    "black",
    "hispanic",
    "nhpi",
    "white",
    "multiracial",
    "unknown",
)
"""Single-category race/ethnicity as NFR-CRS and NCANDS summaries report it
(Hispanic of any race first, then single races, then two or more races)."""

MALTREATMENT_FLAGS = (
    ("mal_neglect", "Neglect or deprivation of necessities (NCANDS maltreatment type)."),
    ("mal_physical_abuse", "Physical abuse."),
    ("mal_sexual_abuse", "Sexual abuse."),
    ("mal_psychological", "Psychological or emotional maltreatment."),
    ("mal_medical_neglect", "Medical neglect."),
)

RACE_FLAGS = (
    ("race_aian", "American Indian or Alaska Native (NCANDS race flag)."),
    ("race_asian", "Asian."),
    ("race_black", "Black or African American."),
    ("race_nhpi", "Native Hawaiian or other Pacific Islander."),
    ("race_white", "White."),
    ("ethnicity_hispanic", "Hispanic or Latino ethnicity."),
)

COUNTY = _category(
    "county",
    "County code; each node declares its own public list of counties.",
    None,
)

CHILD_AGE_MONTHS = _integer(
    "child_age_months", "Child's age in completed months at the event.", 0, 215
)


def _child_demographics() -> tuple[Column, ...]:
    return (
        CHILD_AGE_MONTHS,
        _category("sex", "Child's sex.", SEX),
        _category("race_ethnicity", "Child's race/ethnicity, single category.", RACE_ETHNICITY),
        *(_flag(name, text) for name, text in RACE_FLAGS),
    )


def _maltreatment_flags() -> tuple[Column, ...]:
    return tuple(_flag(name, text) for name, text in MALTREATMENT_FLAGS)


# ---------------------------------------------------------------------------
# incidents: critical incidents (fatalities and near fatalities)

INCIDENT_TYPES = ("fatality", "near_fatality")
MANNERS = ("natural", "accident", "homicide", "suicide", "undetermined", "pending")
PRIMARY_CAUSES = (
    "asphyxia",
    "drowning",
    "abusive_head_trauma",
    "weapon",
    "poisoning",
    "motor_vehicle",
    "fire_burn",
    "fall",
    "exposure",
    "medical",
    "suid",
    "other",
)
SSIT_ITEMS = (
    ("ssit_family_engagement", "SSIT: engagement of the family in assessment and planning (0-3)."),
    ("ssit_supervision", "SSIT: supervision and consultation available to the worker (0-3)."),
    ("ssit_workload", "SSIT: caseload and workload pressure (0-3)."),
    ("ssit_policy", "SSIT: clarity and fit of policy and procedure (0-3)."),
    ("ssit_training", "SSIT: training and skill development (0-3)."),
    ("ssit_interagency", "SSIT: interagency communication and collaboration (0-3)."),
    ("ssit_tools", "SSIT: assessment tools and information systems (0-3)."),
)
IMPROVEMENT_OPPORTUNITIES = (
    ("io_policy", "Improvement opportunity: policy or procedure."),
    ("io_practice", "Improvement opportunity: casework practice."),
    ("io_training", "Improvement opportunity: training."),
    ("io_supervision", "Improvement opportunity: supervision."),
    ("io_interagency", "Improvement opportunity: interagency coordination."),
    ("io_resources", "Improvement opportunity: resources and services."),
)

INCIDENTS = Dataset(
    name="incidents",
    description="Critical incidents: child fatalities and near fatalities reviewed by the "
    "jurisdiction, one row per child per incident.",
    privacy_unit="child_id",
    unit_kind=UnitKind.CHILD,
    max_rows_per_unit=2,
    # A near fatality and a later fatality of the same child can fall in one year, so
    # a year bound below the total of 2 would cut real cases.
    contribution_period="incident_date",
    max_rows_per_period=(PeriodBound(period=TimeBucket.YEAR, max_rows=2),),
    columns=(
        _identifier("incident_id", "Incident (case review) identifier."),
        _identifier("child_id", "Child identifier: the privacy unit."),
        _identifier("family_id", "Family identifier; links siblings.", nullable=True),
        _category("incident_type", "Fatality or near fatality.", INCIDENT_TYPES),
        _date("incident_date", "Date of the incident."),
        *_child_demographics(),
        _category("manner", "Manner of death or injury (NFR-CRS).", MANNERS),
        _category("primary_cause", "Primary cause (NFR-CRS cause groups).", PRIMARY_CAUSES),
        *_maltreatment_flags(),
        _flag("sleep_related", "The incident was sleep-related."),
        _flag("unsafe_sleep_surface", "Child was on an unsafe sleep surface."),
        _flag("bed_sharing", "Child was sharing a sleep surface."),
        _flag("prior_cps_history", "The family had CPS reports before the incident."),
        _flag("open_case", "A CPS case was open at the time of the incident."),
        _flag("prior_placement", "The child had been in out-of-home placement before."),
        COUNTY,
        _date("review_date", "Date the review team completed its review.", nullable=True),
        *(_integer(name, text, 0, 3, nullable=True) for name, text in SSIT_ITEMS),
        *(_flag(name, text) for name, text in IMPROVEMENT_OPPORTUNITIES),
    ),
)

# ---------------------------------------------------------------------------
# reports: CPS reports, one row per child per report

REPORT_SOURCES = (
    "law_enforcement",
    "education",
    "medical",
    "social_services",
    "mental_health",
    "legal",
    "family_friend",
    "anonymous",
    "other",
)
DISPOSITIONS = (
    "substantiated",
    "indicated",
    "alternative_response",
    "unsubstantiated",
    "other",
)

REPORTS = Dataset(
    name="reports",
    description="CPS screened-in reports, one row per child per report (NCANDS Child File).",
    privacy_unit="child_id",
    unit_kind=UnitKind.CHILD,
    max_rows_per_unit=8,
    # Screened-in reports of one child come at least two weeks apart: at most 2 in a
    # calendar month; more than 4 in a year is rare (0.04% of rows in the synthetic
    # generator, which is calibrated to NCANDS re-report rates).
    contribution_period="report_date",
    max_rows_per_period=(
        PeriodBound(period=TimeBucket.MONTH, max_rows=2),
        PeriodBound(period=TimeBucket.YEAR, max_rows=4),
    ),
    columns=(
        _identifier("report_id", "Report identifier."),
        _identifier("child_id", "Child identifier: the privacy unit."),
        _identifier("family_id", "Family identifier.", nullable=True),
        _date("report_date", "Date the report was received."),
        _category("report_source", "Who made the report (NCANDS source codes).", REPORT_SOURCES),
        *_maltreatment_flags(),
        _category("disposition", "Investigation or assessment disposition.", DISPOSITIONS),
        *_child_demographics(),
        _flag("prior_victim", "The child was a victim in an earlier report."),
        _flag(
            "recurrence_12m",
            "A substantiated or indicated report within 12 months after an earlier one "
            "(CFSR recurrence measure), derived at ingest from the child's report dates.",
        ),
        _flag("services_provided", "Post-response services were provided."),
        _flag("removed", "The child was removed from the home."),
        COUNTY,
    ),
)

# ---------------------------------------------------------------------------
# workforce: one row per worker per month

WORKER_ROLES = ("caseworker", "investigator", "supervisor", "manager", "other")
WORK_UNITS = ("intake", "investigations", "ongoing", "foster_care", "adoption", "other")
SEPARATION_TYPES = ("none", "voluntary", "involuntary", "retirement", "transfer")

WORKFORCE = Dataset(
    name="workforce",
    description="Child-welfare workforce, one row per worker per month.",
    privacy_unit="worker_id",
    unit_kind=UnitKind.STAFF,
    max_rows_per_unit=96,
    # One row per worker per month, by construction of the export.
    contribution_period="month",
    max_rows_per_period=(
        PeriodBound(period=TimeBucket.MONTH, max_rows=1),
        PeriodBound(period=TimeBucket.QUARTER, max_rows=3),
        PeriodBound(period=TimeBucket.YEAR, max_rows=12),
    ),
    columns=(
        _identifier("worker_id", "Worker identifier: the privacy unit."),
        _date("month", "First day of the month this row describes."),
        _category("role", "Worker's role.", WORKER_ROLES),
        _category("unit", "Organisational unit.", WORK_UNITS),
        _integer("tenure_months", "Months in the agency.", 0, 480),
        _integer("active_cases", "Open cases assigned at month end.", 0, 60),
        _integer("new_assignments", "New cases assigned during the month.", 0, 30),
        _flag("separated", "The worker left the agency this month."),
        _category("separation_type", "How the worker left, or none.", SEPARATION_TYPES),
    ),
)

# ---------------------------------------------------------------------------
# workforce_years: one row per worker per calendar year, derived at ingest

TENURE_BANDS = ("under_1y", "1_2y", "3_5y", "6_10y", "over_10y")
"""Time in the agency: < 12, 12-35, 36-71, 72-131, >= 132 months."""

WORKFORCE_YEARS = Dataset(
    name="workforce_years",
    description="Worker-years, derived at ingest from `workforce`: one row per worker per "
    "calendar year with at least one monthly row. Answers retention questions (workers "
    "and separations per year, turnover) with one row per person per year.",
    privacy_unit="worker_id",
    unit_kind=UnitKind.STAFF,
    # 96 monthly rows in a row touch at most 9 calendar years; ingest keeps a worker's
    # first 9 years.
    max_rows_per_unit=9,
    contribution_period="year_start",
    max_rows_per_period=(PeriodBound(period=TimeBucket.YEAR, max_rows=1),),
    columns=(
        _identifier("worker_id", "Worker identifier: the privacy unit."),
        _date("year_start", "January 1 of the calendar year this row describes."),
        _category("role", "Role in the worker's last month of the year.", WORKER_ROLES),
        _category("unit", "Unit in the worker's last month of the year.", WORK_UNITS),
        _category(
            "tenure_band",
            "Tenure in the worker's last month of the year.",
            TENURE_BANDS,
        ),
        _integer("months_active", "Months of the year with a workforce row.", 1, 12),
        _flag("separated", "The worker left the agency during the year."),
        _category(
            "separation_type", "How the worker left during the year, or none.", SEPARATION_TYPES
        ),
    ),
)

# ---------------------------------------------------------------------------
# safety_culture: one row per respondent per survey wave

TEAMS = ("intake", "investigations", "ongoing", "foster_care", "adoption", "administration")
SURVEY_ROLES = ("caseworker", "supervisor", "manager", "support")
LIKERT_ITEMS = (
    ("psych_safety", "Psychological safety of the team (1-5)."),
    ("safety_organizing", "Safety organizing behaviours (1-5)."),
    ("stress_recognition", "Recognition of stress effects on performance (1-5)."),
    ("emotional_exhaustion", "Emotional exhaustion (1-5; higher is worse)."),
    ("intent_to_stay", "Intent to stay in the agency (1-5)."),
)

SAFETY_CULTURE = Dataset(
    name="safety_culture",
    description="Safety-culture survey, one row per respondent per wave.",
    privacy_unit="respondent_id",
    unit_kind=UnitKind.STAFF,
    max_rows_per_unit=16,
    # One row per respondent per wave; the partnership surveys at most once a quarter
    # (waves in March and September).
    contribution_period="wave_date",
    max_rows_per_period=(
        PeriodBound(period=TimeBucket.MONTH, max_rows=1),
        PeriodBound(period=TimeBucket.QUARTER, max_rows=1),
        PeriodBound(period=TimeBucket.YEAR, max_rows=2),
    ),
    columns=(
        _identifier("respondent_id", "Respondent identifier: the privacy unit."),
        _date("wave_date", "First day of the survey wave."),
        _category("team", "Respondent's team.", TEAMS),
        _category("role", "Respondent's role.", SURVEY_ROLES),
        _category("tenure_band", "Time in the agency.", TENURE_BANDS),
        *(_integer(name, text, 1, 5, nullable=True) for name, text in LIKERT_ITEMS),
    ),
)

_PARTNERSHIP_UNIT_KINDS: dict[str, UnitKind] = {}
"""Filled below from PARTNERSHIP_SCHEMA, for schemas that predate `unit_kind`."""

PARTNERSHIP_SCHEMA = Schema(
    version=SCHEMA_VERSION,
    datasets=(INCIDENTS, REPORTS, WORKFORCE, WORKFORCE_YEARS, SAFETY_CULTURE),
)
"""The schema every node publishes, before node-declared domains (counties) are added."""
_PARTNERSHIP_UNIT_KINDS.update(
    (dataset.name, dataset.unit_kind) for dataset in PARTNERSHIP_SCHEMA.datasets
)
