"""The demo's showcase questions: what an analyst would type as `npcs query ...`.

The same arguments go through `coordinator.cli.query_args.build_query`, so the demo asks
exactly what the command line would; `coordinator.demo.showcase` shows the answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from privacy.query import QuerySpec

FIRST_YEAR, LAST_YEAR = 2019, 2024


@dataclass(frozen=True)
class Question:
    """One showcase query, as `npcs query` arguments."""

    key: str
    statistic: str
    dataset: str
    column: str | None
    by: str | None
    rho: str
    purpose: str
    where: str | None = None
    items: str | None = None
    """`--items`: several flags counted (or items averaged) in one query."""

    def spec(self) -> QuerySpec:
        """The query, parsed exactly as `npcs query` parses its arguments."""
        from coordinator.cli.query_args import build_query

        return build_query(
            statistic=self.statistic,
            dataset=self.dataset,
            column=self.column,
            by=self.by,
            where=self.where,
            date_from=str(FIRST_YEAR),
            date_to=str(LAST_YEAR),
            rho=self.rho,
            items=self.items,
            purpose=self.purpose,
        )

    def command_line(self) -> str:
        parts = ["npcs query", self.statistic, self.dataset]
        if self.column:
            parts.append(self.column)
        if self.items:
            parts.append(f"--items '{self.items}'")
        if self.by:
            parts.append(f"--by {self.by}")
        parts.append(f"--from {FIRST_YEAR} --to {LAST_YEAR}")
        if self.where:
            parts.append(f"--where '{self.where}'")
        parts += [f"--rho {self.rho}", f'--purpose "{self.purpose}"']
        return " ".join(parts)


QUESTIONS: tuple[Question, ...] = (
    Question(
        key="incidents_by_year",
        statistic="count",
        dataset="incidents",
        column=None,
        by="incident_type,incident_date:year",
        rho="0.5",
        purpose="demo: fatalities and near fatalities per year",
    ),
    Question(
        key="fatality_causes",
        statistic="count",
        dataset="incidents",
        column=None,
        by="primary_cause",
        where="incident_type=fatality",
        rho="0.5",
        purpose="demo: primary cause of fatalities",
    ),
    Question(
        key="sleep_related",
        statistic="count",
        dataset="incidents",
        column=None,
        by="incident_type,sleep_related",
        rho="0.5",
        purpose="demo: share of sleep-related incidents",
    ),
    Question(
        key="improvement_opportunities",
        statistic="count",
        dataset="incidents",
        column=None,
        by=None,
        where="incident_type=fatality",
        items="io_*",
        rho="0.5",
        purpose="demo: improvement opportunities found by fatality reviews",
    ),
    Question(
        key="recurrence",
        statistic="count",
        dataset="reports",
        column=None,
        by="report_date:year,recurrence_12m",
        where="disposition=substantiated,indicated",
        rho="0.5",
        purpose="demo: CPS recurrence of maltreatment within 12 months",
    ),
    Question(
        key="victims_by_race",
        statistic="count",
        dataset="reports",
        column=None,
        by="race_ethnicity",
        where="disposition=substantiated,indicated",
        rho="0.5",
        purpose="demo: racial disparity among victims of maltreatment",
    ),
    Question(
        key="separations",
        statistic="count",
        dataset="workforce_years",
        column=None,
        by="year_start:year,separated",
        where="role=caseworker",
        rho="1",
        purpose="demo: caseworker separations per year",
    ),
    Question(
        key="psych_safety",
        statistic="mean",
        dataset="safety_culture",
        column="psych_safety",
        by="wave_date:quarter",
        rho="1",
        purpose="demo: psychological safety per survey wave",
    ),
)
