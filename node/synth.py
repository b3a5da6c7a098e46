"""Long on purpose: one generator per dataset, each beside the marginals it is calibrated to.

Seeded, deterministic synthetic data for one jurisdiction, for all four datasets.

Synthetic data is test and demo input, not a privacy mechanism, so it uses numpy's seeded
`Generator` (one independent stream per dataset). The same seed and jurisdiction give
the same rows, byte for byte. Everything is vectorised: a 1M-row `reports` table takes a
few seconds.

Published marginals the generator is calibrated to (figures are US national; a
jurisdiction's own numbers vary around them):

- Child maltreatment fatalities: 2.73 per 100,000 children a year (about 2,000 a year);
  44% of victims younger than 1 (two thirds younger than 3); neglect alone or with
  another type in about 75%, physical abuse in about 43%; rates per 100,000 children by
  race/ethnicity Black 6.37, White 1.99, Hispanic 1.68; boys slightly over half.
  Source: U.S. DHHS, ACF, Children's Bureau, *Child Maltreatment 2022* (2024), ch. 4.
- CPS victims 7.4 per 1,000 children a year; about 41 children per 1,000 receive an
  investigation or alternative response, about 17% of them are found victims; report
  sources (law enforcement ~21%, education ~17%, medical ~11%, social services ~11%...).
  Source: *Child Maltreatment 2022*, ch. 2-3.
- Recurrence of maltreatment within 12 months about 8-10% (national standard 9.7%).
  Source: Children's Bureau, Child and Family Services Reviews (CFSR round 3/4 statewide
  data indicators).
- Near fatalities about 4 per fatality: assumption from state critical-incident reviews
  (near-fatality counts are not reported nationally; CAPTA requires their disclosure).
- Caseworker turnover 20-40% a year. Source: U.S. GAO-03-357 (2003) and Casey Family
  Programs, *How does turnover affect outcomes and what can be done to address
  retention?* (2017).
- Rates for groups the report does not list in the brief (AIAN 4.0, multiracial 3.5,
  Asian 0.6, NHPI 2.5 per 100,000) and the cause/manner mix (sleep-related deaths
  dominating infancy, drowning and weapons for older children) are assumptions shaped
  by NFR-CRS summary reports; "unknown" race takes the remainder of the 2.73 total.

Small (e.g. tribal) jurisdictions of a few thousand children get 0-2 incidents a year.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from node.derived import ingested_datasets
from node.truncation import truncate_to_bounds
from privacy.population import PopulationTable, build_table
from privacy.schema import (
    DISPOSITIONS,
    IMPROVEMENT_OPPORTUNITIES,
    LIKERT_ITEMS,
    MALTREATMENT_FLAGS,
    MANNERS,
    PARTNERSHIP_SCHEMA,
    PRIMARY_CAUSES,
    RACE_ETHNICITY,
    RACE_FLAGS,
    REPORT_SOURCES,
    SEPARATION_TYPES,
    SEX,
    SSIT_ITEMS,
    SURVEY_ROLES,
    TEAMS,
    TENURE_BANDS,
    WORK_UNITS,
    WORKER_ROLES,
    Schema,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    # numpy's dtype generics do not survive arithmetic in mypy; the names document intent.
    IntArray = NDArray[Any]
    FloatArray = NDArray[Any]
    BoolArray = NDArray[Any]

DATASETS = ingested_datasets(PARTNERSHIP_SCHEMA.dataset_names)
"""The datasets synth generates (derived ones, node/derived.py, come with their parent)."""

FATALITY_RATE_PER_100K = 2.73
NEAR_FATALITIES_PER_FATALITY = 4.0
REPORTED_CHILDREN_PER_1000 = 42.0
FAMILY_SIZE_MIX = (0.55, 0.28, 0.12, 0.05)  # children per reported family: 1, 2, 3, 4
_MEAN_FAMILY_SIZE = float(np.dot(np.arange(1, 5), np.array(FAMILY_SIZE_MIX)))
FAMILIES_PER_CHUNK = 250_000
"""`reports` are made (and written) this many families at a time: about 550,000 rows,
so memory stays flat however large the jurisdiction. Fixed: the rows depend on it."""
VICTIMS_PER_1000 = 7.4
CHILDREN_PER_WORKER = 1500
SMALL_JURISDICTION_MAX_INCIDENTS = 2

# Share of US children by race/ethnicity (Census 2020, rounded), in RACE_ETHNICITY order.
US_CHILD_RACE_MIX = {
    "aian": 0.010,
    "asian": 0.050,
    "black": 0.130,
    "hispanic": 0.260,
    "nhpi": 0.002,
    "white": 0.490,
    "multiracial": 0.050,
    "unknown": 0.008,
}
FATALITY_RATE_BY_RACE = {
    "aian": 4.0,
    "asian": 0.6,
    "black": 6.37,
    "hispanic": 1.68,
    "nhpi": 2.5,
    "white": 1.99,
    "multiracial": 3.5,
}
"""Per 100,000 children a year; 'unknown' takes what is left of the 2.73 total."""

# Age in years at the event, index = completed years (0-17).
FATALITY_AGE_YEARS = np.array(
    [44.0, 13, 10, 6, 4.5, 3.5, 2.5, 2, 1.8, 1.6, 1.4, 1.3, 1.2, 1.2, 1.2, 1.3, 1.4, 1.3]
)
REPORT_AGE_YEARS = np.array(
    [11.0, 7, 7, 6.5, 6.5, 6.5, 6.5, 6, 6, 5.5, 5.5, 5, 5, 5, 4.5, 4, 3.5, 3]
)

INFANT_CAUSES = {
    "asphyxia": 0.25,
    "suid": 0.25,
    "abusive_head_trauma": 0.20,
    "medical": 0.06,
    "poisoning": 0.06,
    "drowning": 0.03,
    "weapon": 0.02,
    "motor_vehicle": 0.02,
    "fire_burn": 0.01,
    "fall": 0.01,
    "exposure": 0.01,
    "other": 0.08,
}
OLDER_CAUSES = {
    "asphyxia": 0.07,
    "suid": 0.0,
    "abusive_head_trauma": 0.12,
    "medical": 0.05,
    "poisoning": 0.14,
    "drowning": 0.18,
    "weapon": 0.15,
    "motor_vehicle": 0.10,
    "fire_burn": 0.07,
    "fall": 0.03,
    "exposure": 0.02,
    "other": 0.07,
}
MANNER_BY_CAUSE = {  # natural, accident, homicide, suicide, undetermined, pending
    "asphyxia": (0.0, 0.70, 0.10, 0.02, 0.15, 0.03),
    "suid": (0.20, 0.0, 0.0, 0.0, 0.75, 0.05),
    "abusive_head_trauma": (0.0, 0.0, 0.92, 0.0, 0.05, 0.03),
    "medical": (0.85, 0.0, 0.05, 0.0, 0.07, 0.03),
    "poisoning": (0.0, 0.75, 0.08, 0.05, 0.10, 0.02),
    "drowning": (0.0, 0.88, 0.05, 0.0, 0.05, 0.02),
    "weapon": (0.0, 0.10, 0.75, 0.12, 0.02, 0.01),
    "motor_vehicle": (0.0, 0.92, 0.03, 0.0, 0.03, 0.02),
    "fire_burn": (0.0, 0.80, 0.10, 0.0, 0.08, 0.02),
    "fall": (0.0, 0.75, 0.15, 0.02, 0.06, 0.02),
    "exposure": (0.0, 0.80, 0.10, 0.0, 0.08, 0.02),
    "other": (0.10, 0.30, 0.20, 0.05, 0.25, 0.10),
}
SOURCE_MIX = (0.21, 0.17, 0.11, 0.11, 0.06, 0.02, 0.14, 0.07, 0.11)  # REPORT_SOURCES order
ROLE_MIX = (0.50, 0.25, 0.15, 0.05, 0.05)  # WORKER_ROLES order
ANNUAL_TURNOVER_BY_ROLE = (0.32, 0.36, 0.15, 0.12, 0.25)
SEPARATION_MIX = (0.72, 0.12, 0.08, 0.08)  # voluntary, involuntary, retirement, transfer
MAX_MONTHS_PER_WORKER = 96
SURVEY_MONTHS = (3, 9)


@dataclass(frozen=True)
class Jurisdiction:
    """What the generator needs to know about one jurisdiction (all public)."""

    children: int
    first_year: int
    last_year: int
    counties: tuple[str, ...]
    race_mix: dict[str, float] = field(default_factory=lambda: dict(US_CHILD_RACE_MIX))

    def __post_init__(self) -> None:
        if self.children < 1:
            raise ValueError(f"children must be at least 1, not {self.children}")
        if self.last_year < self.first_year:
            raise ValueError(f"year range {self.first_year}-{self.last_year} is empty")
        if not self.counties:
            raise ValueError("a jurisdiction needs at least one county code")

    @property
    def years(self) -> int:
        return self.last_year - self.first_year + 1

    @property
    def start(self) -> np.datetime64:
        return np.datetime64(f"{self.first_year}-01-01", "D")

    @property
    def end(self) -> np.datetime64:
        return np.datetime64(f"{self.last_year}-12-31", "D")


def default_counties(children: int) -> tuple[str, ...]:
    """Synthetic county codes, about one per 25,000 children (1 to 60)."""
    count = min(60, max(1, children // 25_000))
    return tuple(f"c{i:03d}" for i in range(1, count + 1))


def child_population_by_year(children: int, first_year: int, last_year: int) -> dict[str, int]:
    """Public denominators for the synthetic jurisdiction: the same population every year."""
    return {str(year): children for year in range(first_year, last_year + 1)}


US_CHILD_SEX_MIX = {"female": 0.489, "male": 0.511}
"""Share of US children by sex (Census 2020, rounded)."""


def group_populations(children: int, first_year: int, last_year: int) -> PopulationTable:
    """Public denominators by race/ethnicity and sex, matching the generator's mixes.

    Each group's share of `children` (largest remainders, so each column sums to the
    total); "unknown" race is a recording gap in case files, so it gets no population.
    """
    rows: list[tuple[str, str, str, str]] = []
    mixes = {"race_ethnicity": US_CHILD_RACE_MIX, "sex": US_CHILD_SEX_MIX}
    for column, mix in mixes.items():
        counts = _apportion(children, {k: v for k, v in mix.items() if k != "unknown"})
        for year in range(first_year, last_year + 1):
            rows.extend((str(year), column, value, str(n)) for value, n in counts.items())
    return build_table("Synthetic (npcs-node synth): US child shares, Census 2020", rows)


def _apportion(total: int, shares: dict[str, float]) -> dict[str, int]:
    weight = sum(shares.values())
    exact = {key: total * share / weight for key, share in shares.items()}
    counts = {key: int(value) for key, value in exact.items()}
    by_remainder = sorted(exact, key=lambda key: exact[key] - counts[key], reverse=True)
    for key in by_remainder[: total - sum(counts.values())]:
        counts[key] += 1
    return counts


def generate(dataset: str, jurisdiction: Jurisdiction, seed: int) -> pl.DataFrame:
    """One dataset's rows, in the schema's column order (recurrence_12m left to ingest)."""
    return pl.concat(generate_chunks(dataset, jurisdiction, seed))


def generate_chunks(dataset: str, jurisdiction: Jurisdiction, seed: int) -> Iterator[pl.DataFrame]:
    """`generate`'s rows in parts of bounded size (only `reports` is large enough to
    need more than one), so a file can be written without holding the whole table."""
    if dataset == "reports":
        return _report_chunks(jurisdiction, seed)
    return iter([_generate_whole(dataset, jurisdiction, seed)])


def _generate_whole(dataset: str, jurisdiction: Jurisdiction, seed: int) -> pl.DataFrame:
    generators = {
        "incidents": _incidents,
        "workforce": _workforce,
        "safety_culture": _safety_culture,
    }
    if dataset not in generators:
        raise ValueError(f"unknown dataset {dataset!r}; use one of: {', '.join(DATASETS)}")
    return generators[dataset](jurisdiction, seed)


def ordered_like(frame: pl.DataFrame, schema: Schema, dataset: str) -> pl.DataFrame:
    """The frame's columns in schema order (columns the frame lacks are skipped)."""
    names = [n for n in schema.dataset(dataset).column_names if n in frame.columns]
    return frame.select(names)


# ---------------------------------------------------------------------------
# Shared helpers


def _rng(seed: int, dataset: str) -> np.random.Generator:
    """An independent stream per dataset, so each dataset depends only on the seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, DATASETS.index(dataset)]))


def _chunk_rng(seed: int, dataset: str, chunk: int) -> np.random.Generator:
    """The stream of one later chunk of a dataset generated in chunks."""
    return np.random.default_rng(np.random.SeedSequence([seed, DATASETS.index(dataset), chunk]))


def _normalised(weights: Sequence[float] | FloatArray) -> FloatArray:
    array = np.asarray(weights, dtype=np.float64)
    normalised: FloatArray = array / array.sum()
    return normalised


def _draw(rng: np.random.Generator, weights: Sequence[float] | FloatArray, n: int) -> IntArray:
    return rng.choice(len(weights), size=n, p=_normalised(weights)).astype(np.int64)


def _draw_conditional(rng: np.random.Generator, table: FloatArray, given: IntArray) -> IntArray:
    """Row i drawn from the distribution table[given[i]] (rows normalised)."""
    cumulative = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    uniform = rng.random(len(given))
    picked: IntArray = (uniform[:, None] > cumulative[given]).sum(axis=1)
    clipped: IntArray = np.minimum(picked, table.shape[1] - 1).astype(np.int64)
    return clipped


def _codes(values: Sequence[str], index: IntArray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(index)


def _ids(prefix: str, numbers: IntArray, width: int = 8) -> pl.Series:
    digits = pl.Series(numbers, dtype=pl.Int64).cast(pl.String).str.zfill(width)
    return pl.select(pl.lit(prefix) + digits).to_series()


def _dates(days: IntArray) -> pl.Series:
    return pl.Series(days.astype("datetime64[D]"), dtype=pl.Date)


def _county_weights(count: int) -> FloatArray:
    return _normalised(1.0 / np.arange(1, count + 1) ** 0.9)


def _race_flags(rng: np.random.Generator, race: IntArray) -> dict[str, BoolArray]:
    """NCANDS-style flags consistent with the single race/ethnicity category."""
    names = RACE_ETHNICITY
    n = len(race)
    flags = {name: np.zeros(n, dtype=bool) for name, _ in RACE_FLAGS}
    single = {"aian": "race_aian", "asian": "race_asian", "black": "race_black"}
    single |= {"nhpi": "race_nhpi", "white": "race_white"}
    for race_name, flag in single.items():
        flags[flag] |= race == names.index(race_name)
    hispanic = race == names.index("hispanic")
    flags["ethnicity_hispanic"] = hispanic.copy()
    flags["race_white"] |= hispanic & (rng.random(n) < 0.65)
    multiracial = race == names.index("multiracial")
    race_flag_names = [name for name, _ in RACE_FLAGS if name.startswith("race_")]
    first = rng.integers(0, len(race_flag_names), n)
    second = (first + rng.integers(1, len(race_flag_names), n)) % len(race_flag_names)
    for index, flag in enumerate(race_flag_names):
        flags[flag] |= multiracial & ((first == index) | (second == index))
    return flags


def _ages_in_months(rng: np.random.Generator, year_weights: FloatArray, n: int) -> IntArray:
    years = _draw(rng, year_weights, n)
    # Infants skew young (most sleep-related deaths happen before 6 months).
    infant_months = np.minimum(rng.exponential(4.0, n).astype(np.int64), 11)
    months = np.where(years == 0, infant_months, years * 12 + rng.integers(0, 12, n))
    return np.clip(months, 0, 215).astype(np.int64)


def _maltreatment(rng: np.random.Generator, n: int, neglect: float) -> dict[str, BoolArray]:
    """Maltreatment flags with at least one type per row."""
    has_neglect = rng.random(n) < neglect
    physical = np.where(has_neglect, rng.random(n) < 0.25, rng.random(n) < 0.8)
    sexual = rng.random(n) < 0.02
    psychological = rng.random(n) < 0.05
    medical = has_neglect & (rng.random(n) < 0.10)
    none = ~(has_neglect | physical | sexual | psychological | medical)
    physical |= none
    names = [name for name, _ in MALTREATMENT_FLAGS]
    return dict(zip(names, (has_neglect, physical, sexual, psychological, medical), strict=True))


# ---------------------------------------------------------------------------
# incidents


def _expected_fatalities_per_year(jurisdiction: Jurisdiction) -> FloatArray:
    """Expected fatality victims a year by RACE_ETHNICITY, from rates and the race mix."""
    mix = _normalised([jurisdiction.race_mix.get(r, 0.0) for r in RACE_ETHNICITY])
    rates = np.array([FATALITY_RATE_BY_RACE.get(r, 0.0) for r in RACE_ETHNICITY])
    expected = rates * mix
    unknown = RACE_ETHNICITY.index("unknown")
    expected[unknown] = max(0.0, FATALITY_RATE_PER_100K - expected.sum())
    return np.asarray(expected * jurisdiction.children / 100_000, dtype=np.float64)


def _incidents(jurisdiction: Jurisdiction, seed: int) -> pl.DataFrame:
    rng = _rng(seed, "incidents")
    sibling_mix = [0.94, 0.05, 0.01]  # children per incident: 1, 2, 3
    mean_children = float(np.dot([1, 2, 3], sibling_mix))
    by_race = _expected_fatalities_per_year(jurisdiction)
    fatal_share = 1.0 / (1.0 + NEAR_FATALITIES_PER_FATALITY)
    per_year = by_race.sum() / fatal_share / mean_children
    counts = rng.poisson(per_year, jurisdiction.years)
    if per_year < 1.0:
        counts = np.minimum(counts, SMALL_JURISDICTION_MAX_INCIDENTS)
    n = int(counts.sum())
    year = np.repeat(np.arange(jurisdiction.first_year, jurisdiction.last_year + 1), counts)
    year_start = np.array([np.datetime64(f"{y}-01-01", "D") for y in year], dtype="datetime64[D]")
    day_in_year = rng.integers(0, 365, n)
    incident_day = (year_start + day_in_year).astype(np.int64)
    incident_type = (rng.random(n) >= fatal_share).astype(np.int64)  # 0 fatality, 1 near
    race = _draw(rng, by_race, n)
    county = _draw(rng, _county_weights(len(jurisdiction.counties)), n)
    family_flags = {
        "prior_cps_history": rng.random(n) < 0.45,
        "open_case": rng.random(n) < 0.15,
    }
    size = rng.choice([1, 2, 3], size=n, p=sibling_mix)
    # One row per child: siblings in one incident share incident, family, date and county.
    incident_of_row = np.repeat(np.arange(n), size)
    rows = len(incident_of_row)
    frame = pl.DataFrame(
        {
            "incident_number": incident_of_row,
            "family_number": incident_of_row,
            "child_number": np.arange(rows),
            "incident_type": incident_type[incident_of_row],
            "incident_day": incident_day[incident_of_row],
            "race": race[incident_of_row],
            "county": county[incident_of_row],
            **{name: flags[incident_of_row] for name, flags in family_flags.items()},
        }
    )
    frame = _with_repeat_children(rng, frame, jurisdiction)
    return _incident_columns(rng, frame, jurisdiction)


def _with_repeat_children(
    rng: np.random.Generator, frame: pl.DataFrame, jurisdiction: Jurisdiction
) -> pl.DataFrame:
    """About 2% of fatality victims also had an earlier near fatality (a second row)."""
    fatal = frame.filter(pl.col("incident_type") == 0)
    repeat = fatal.filter(pl.Series(rng.random(fatal.height) < 0.02))
    gap = rng.integers(30, 700, repeat.height)
    earlier = repeat.with_columns(
        incident_type=pl.lit(1, dtype=pl.Int64),
        incident_day=pl.col("incident_day") - pl.Series(gap),
        incident_number=pl.col("incident_number") + frame.height * 10,
    ).filter(pl.col("incident_day") >= int(jurisdiction.start.astype(np.int64)))
    return pl.concat([frame, earlier])


def _incident_columns(
    rng: np.random.Generator, frame: pl.DataFrame, jurisdiction: Jurisdiction
) -> pl.DataFrame:
    rows = frame.height
    age = _ages_in_months(rng, FATALITY_AGE_YEARS, rows)
    infant = age < 12
    infant_table = np.array([INFANT_CAUSES[c] for c in PRIMARY_CAUSES])
    older_table = np.array([OLDER_CAUSES[c] for c in PRIMARY_CAUSES])
    cause = np.where(
        infant,
        _draw(rng, infant_table, rows),
        _draw(rng, older_table, rows),
    )
    manner_table = np.array([MANNER_BY_CAUSE[c] for c in PRIMARY_CAUSES])
    manner = _draw_conditional(rng, manner_table, cause)
    sleep_cause = np.isin(cause, [PRIMARY_CAUSES.index("asphyxia"), PRIMARY_CAUSES.index("suid")])
    sleep_related = sleep_cause & infant & (rng.random(rows) < 0.9)
    unsafe_surface = sleep_related & (rng.random(rows) < 0.7)
    bed_sharing = sleep_related & (rng.random(rows) < 0.55)
    sex = _draw(rng, [0.42, 0.57, 0.01], rows)
    race = frame.get_column("race").to_numpy()
    incident_day = frame.get_column("incident_day").to_numpy()
    review_day = incident_day + rng.integers(90, 540, rows)
    reviewed = review_day <= int(jurisdiction.end.astype(np.int64))
    columns: dict[str, pl.Series | np.ndarray] = {
        "incident_id": _ids("I", frame.get_column("incident_number").to_numpy()),
        "child_id": _ids("K", frame.get_column("child_number").to_numpy()),
        "family_id": _ids("F", frame.get_column("family_number").to_numpy()),
        "incident_type": _codes(("fatality", "near_fatality"), frame["incident_type"].to_numpy()),
        "incident_date": _dates(incident_day),
        "child_age_months": age,
        "sex": _codes(SEX, sex),
        "race_ethnicity": _codes(RACE_ETHNICITY, race),
        **_race_flags(rng, race),
        "manner": _codes(MANNERS, manner),
        "primary_cause": _codes(PRIMARY_CAUSES, cause),
        **_maltreatment(rng, rows, neglect=0.75),
        "sleep_related": sleep_related,
        "unsafe_sleep_surface": unsafe_surface,
        "bed_sharing": bed_sharing,
        "prior_cps_history": frame.get_column("prior_cps_history").to_numpy(),
        "open_case": frame.get_column("open_case").to_numpy(),
        "prior_placement": rng.random(rows) < 0.04,
        "county": _codes(jurisdiction.counties, frame.get_column("county").to_numpy()),
        "review_date": _dates(review_day),
    }
    for name, _ in SSIT_ITEMS:
        score = _draw(rng, [0.35, 0.35, 0.2, 0.1], rows)
        answered = reviewed & (rng.random(rows) >= 0.05)
        columns[name] = pl.Series(name, score).set(pl.Series(~answered), None)
    for name, _ in IMPROVEMENT_OPPORTUNITIES:
        columns[name] = reviewed & (rng.random(rows) < 0.3)
    result = pl.DataFrame(columns).with_columns(
        review_date=pl.when(pl.Series(reviewed)).then(pl.col("review_date"))
    )
    return result.sort("incident_date", "incident_id")


# ---------------------------------------------------------------------------
# reports


def _report_chunks(jurisdiction: Jurisdiction, seed: int) -> Iterator[pl.DataFrame]:
    """Families reported one or more times; every report has a row per child in the family.

    Made FAMILIES_PER_CHUNK families at a time (each chunk sorted by date).

    A family's children, and so each child's reports, are all in one chunk: truncation
    and `prior_victim` are per child, so chunks never need each other. Chunk k > 0 draws
    from its own seeded stream; a jurisdiction of one chunk gets the rows it always got.
    """
    families = max(1, round(_expected_report_rows(jurisdiction) / _MEAN_FAMILY_SIZE / 1.38))
    reports_before = 0
    for first_family in range(0, families, FAMILIES_PER_CHUNK):
        chunk = first_family // FAMILIES_PER_CHUNK
        rng = _rng(seed, "reports") if chunk == 0 else _chunk_rng(seed, "reports", chunk)
        count = min(FAMILIES_PER_CHUNK, families - first_family)
        rows, reports = _report_rows(rng, jurisdiction, count)
        yield _report_columns(rng, jurisdiction, rows, count, (first_family, reports_before))
        reports_before += reports


def _expected_report_rows(jurisdiction: Jurisdiction) -> float:
    return REPORTED_CHILDREN_PER_1000 / 1000 * jurisdiction.children * jurisdiction.years


def _report_rows(
    rng: np.random.Generator, jurisdiction: Jurisdiction, families: int
) -> tuple[dict[str, IntArray], int]:
    """The report and child structure of `families` families (numbered from 0), and how
    many family reports they had (child rows of children who aged out are dropped)."""
    family_size_mix = np.array(FAMILY_SIZE_MIX)
    max_reports = 8  # the reports contribution bound: one row per child per report
    extra = rng.random((families, max_reports - 1)) < np.array([0.30, *[0.40] * 6])
    reports_per_family = 1 + np.cumprod(extra, axis=1).sum(axis=1)
    span = int((jurisdiction.end - jurisdiction.start).astype(np.int64)) + 1
    first = int(jurisdiction.start.astype(np.int64)) + rng.integers(0, span, families)
    gaps = 14 + rng.exponential(180.0, (families, max_reports - 1)).astype(np.int64)
    days = np.concatenate([first[:, None], first[:, None] + np.cumsum(gaps, axis=1)], axis=1)
    exists = (np.arange(max_reports)[None, :] < reports_per_family[:, None]) & (
        days <= int(jurisdiction.end.astype(np.int64))
    )
    victim = _family_victim_outcomes(rng, exists)
    family_of, report_index = np.nonzero(exists)
    report_number = np.arange(len(family_of))
    size = _draw(rng, family_size_mix, families) + 1
    # Expand family reports to child rows.
    per_report = size[family_of]
    row_report = np.repeat(report_number, per_report)
    child_in_family = np.arange(len(row_report)) - np.repeat(
        np.cumsum(per_report) - per_report, per_report
    )
    row_family = family_of[row_report]
    child_number = row_family * 4 + child_in_family
    first_age = _ages_in_months(rng, REPORT_AGE_YEARS, families * 4)
    row_day = days[row_family, report_index[row_report]]
    age = first_age[child_number] + (row_day - first[row_family]) // 30
    sibling_caught = (child_in_family == 0) | (rng.random(len(row_report)) < 0.85)
    row_victim = victim[row_family, report_index[row_report]] & sibling_caught
    keep = age <= 215  # children age out of the child-welfare system at 18
    columns = {
        "report_number": row_report[keep],
        "family_number": row_family[keep],
        "child_number": child_number[keep],
        "day": row_day[keep],
        "age": age[keep],
        "victim": row_victim[keep],
    }
    return columns, len(family_of)


def _family_victim_outcomes(rng: np.random.Generator, exists: BoolArray) -> BoolArray:
    """Whether each family report finds victims: likelier after an earlier victim report."""
    families, max_reports = exists.shape
    victim = np.zeros_like(exists)
    prior_victim = np.zeros(families, dtype=bool)
    for k in range(max_reports):
        chance = np.where(prior_victim, 0.30, 0.185)
        victim[:, k] = exists[:, k] & (rng.random(families) < chance)
        prior_victim |= victim[:, k]
    return victim


def _report_columns(
    rng: np.random.Generator,
    jurisdiction: Jurisdiction,
    rows: dict[str, IntArray | BoolArray],
    families: int,
    first_numbers: tuple[int, int] = (0, 0),
) -> pl.DataFrame:
    """The chunk's columns; family and report numbers start at `first_numbers`."""
    first_family, first_report = first_numbers
    n = len(rows["day"])
    family = np.asarray(rows["family_number"])
    report = np.asarray(rows["report_number"])
    victim = np.asarray(rows["victim"], dtype=bool)
    race = _draw(rng, [jurisdiction.race_mix.get(r, 0.0) for r in RACE_ETHNICITY], families)[family]
    county = _draw(rng, _county_weights(len(jurisdiction.counties)), families)[family]
    source = _draw(rng, SOURCE_MIX, int(report.max()) + 1 if n else 1)[report]
    victim_disposition = np.where(rng.random(n) < 0.94, 0, 1)  # substantiated, indicated
    other_disposition = 2 + _draw(rng, [0.19, 0.78, 0.03], n)
    disposition = np.where(victim, victim_disposition, other_disposition)
    maltreatment = _maltreatment(rng, n, neglect=0.62)
    frame = pl.DataFrame(
        {
            "report_id": _ids("R", report + first_report, 9),
            "child_id": _ids("C", np.asarray(rows["child_number"]) + first_family * 4, 9),
            "family_id": _ids("F", family + first_family, 9),
            "report_date": _dates(np.asarray(rows["day"])),
            "report_source": _codes(REPORT_SOURCES, source),
            **maltreatment,
            "disposition": _codes(DISPOSITIONS, disposition),
            "child_age_months": np.asarray(rows["age"]),
            "sex": _codes(SEX, _draw(rng, [0.51, 0.48, 0.01], n)),
            "race_ethnicity": _codes(RACE_ETHNICITY, race),
            **_race_flags(rng, race),
            "__victim": victim,
            "__earlier_victim": rng.random(n) < 0.06,
            "services_provided": rng.random(n) < np.where(victim, 0.6, 0.3),
            "removed": rng.random(n) < np.where(victim, 0.22, 0.02),
            "county": _codes(jurisdiction.counties, county),
        }
    ).sort("report_date", "report_id", "child_id")
    earlier_victim_reports = pl.col("__victim").cast(pl.Int64).cum_sum().over("child_id") - pl.col(
        "__victim"
    )
    # A victim before the data window is possible for a child's first report in it.
    first_in_window = pl.int_range(pl.len()).over("child_id") == 0
    prior_victim = (earlier_victim_reports > 0) | (first_in_window & pl.col("__earlier_victim"))
    frame = frame.with_columns(prior_victim=prior_victim).drop("__victim", "__earlier_victim")
    columns = [
        "report_id", "child_id", "family_id", "report_date", "report_source",
        *(name for name, _ in MALTREATMENT_FLAGS), "disposition", "child_age_months", "sex",
        "race_ethnicity", *(name for name, _ in RACE_FLAGS), "prior_victim",
        "services_provided", "removed", "county",
    ]  # fmt: skip
    return _within_bounds("reports", frame.select(columns))


def _within_bounds(dataset: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The rows ingest would keep: a few children get more reports in a year than the
    schema's bound (about 0.05% of rows), and ingest's documented rule cuts those."""
    kept, _ = truncate_to_bounds(
        PARTNERSHIP_SCHEMA.dataset(dataset), frame.with_row_index("__row"), "__row"
    )
    return kept.drop("__row")


# ---------------------------------------------------------------------------
# workforce and safety culture (both from one simulation of the agency's staff)


@dataclass(frozen=True)
class _StaffMonths:
    worker: IntArray
    month_index: IntArray
    role: IntArray
    unit: IntArray
    tenure: IntArray
    separated: BoolArray


def _simulate_staff(jurisdiction: Jurisdiction, seed: int) -> _StaffMonths:
    """Month by month: every active worker has a row; leavers are replaced by new hires."""
    rng = _rng(seed, "workforce")
    headcount = max(3, round(jurisdiction.children / CHILDREN_PER_WORKER))
    monthly_hazard = np.array(ANNUAL_TURNOVER_BY_ROLE) / 12  # separations per post-year
    role = _draw(rng, ROLE_MIX, headcount)
    unit = _units_for(rng, role)
    tenure = np.minimum(rng.exponential(48.0, headcount).astype(np.int64), 400)
    worker = np.arange(headcount)
    months_seen = np.zeros(headcount, dtype=np.int64)
    next_worker = headcount
    chunks: list[tuple[IntArray, ...]] = []
    for month in range(jurisdiction.years * 12):
        leaves = (rng.random(headcount) < monthly_hazard[role]) | (
            months_seen == MAX_MONTHS_PER_WORKER - 1
        )
        chunks.append((worker, np.full(headcount, month), role, unit, tenure, leaves))
        # Leavers are replaced next month by a new hire in the same post.
        hires = int(leaves.sum())
        worker = np.where(leaves, 0, worker)
        worker[leaves] = np.arange(next_worker, next_worker + hires)
        next_worker += hires
        tenure = np.where(leaves, 0, np.minimum(tenure + 1, 480))
        months_seen = np.where(leaves, 0, months_seen + 1)
    stacked = [np.concatenate(parts) for parts in zip(*chunks, strict=True)]
    return _StaffMonths(
        worker=stacked[0],
        month_index=stacked[1],
        role=stacked[2],
        unit=stacked[3],
        tenure=stacked[4],
        separated=stacked[5].astype(bool),
    )


def _units_for(rng: np.random.Generator, role: IntArray) -> IntArray:
    investigator = role == WORKER_ROLES.index("investigator")
    other_units = _draw(rng, [0.15, 0.0, 0.45, 0.25, 0.08, 0.07], len(role))
    return np.where(investigator, WORK_UNITS.index("investigations"), other_units)


def _month_days(jurisdiction: Jurisdiction, month_index: IntArray) -> IntArray:
    months = np.datetime64(f"{jurisdiction.first_year}-01", "M") + month_index
    return months.astype("datetime64[D]").astype(np.int64)


def _workforce(jurisdiction: Jurisdiction, seed: int) -> pl.DataFrame:
    staff = _simulate_staff(jurisdiction, seed)
    rng = _rng(seed, "safety_culture").spawn(1)[0]
    n = len(staff.worker)
    mean_cases = np.array([15.0, 11.0, 1.0, 0.0, 2.0])[staff.role]
    mean_new = np.array([3.0, 9.0, 0.3, 0.0, 0.3])[staff.role]
    ramp = np.where(staff.tenure < 3, 0.5, 1.0)
    separation = np.where(staff.separated, 1 + _draw(rng, SEPARATION_MIX, n), 0)
    return pl.DataFrame(
        {
            "worker_id": _ids("W", staff.worker, 7),
            "month": _dates(_month_days(jurisdiction, staff.month_index)),
            "role": _codes(WORKER_ROLES, staff.role),
            "unit": _codes(WORK_UNITS, staff.unit),
            "tenure_months": staff.tenure,
            "active_cases": np.minimum(rng.poisson(mean_cases * ramp), 60),
            "new_assignments": np.minimum(rng.poisson(mean_new * ramp), 30),
            "separated": staff.separated,
            "separation_type": _codes(SEPARATION_TYPES, separation),
        }
    )


def _safety_culture(jurisdiction: Jurisdiction, seed: int) -> pl.DataFrame:
    """Survey waves in March and September; about 60% of active staff respond each wave."""
    staff = _simulate_staff(jurisdiction, seed)
    rng = _rng(seed, "safety_culture")
    calendar_month = staff.month_index % 12 + 1
    wave = np.isin(calendar_month, SURVEY_MONTHS)
    workers = int(staff.worker.max()) + 1
    propensity = rng.beta(3.0, 2.0, workers)
    person = rng.normal(0.0, 1.0, workers)
    responds = wave & (rng.random(len(staff.worker)) < propensity[staff.worker])
    worker = staff.worker[responds]
    n = len(worker)
    unit = staff.unit[responds]
    team = np.array([TEAMS.index(t) for t in _TEAM_OF_UNIT])[unit]
    role = np.array([SURVEY_ROLES.index(r) for r in _SURVEY_ROLE_OF_ROLE])[staff.role[responds]]
    band = np.searchsorted(np.array([12, 36, 72, 132]), staff.tenure[responds], side="right")
    z = person[worker]
    team_climate = rng.normal(0.0, 0.3, len(TEAMS))[team]
    exhaustion = 3.0 - 0.4 * z + rng.normal(0.0, 0.8, n)
    latent = {
        "psych_safety": 3.4 + 0.6 * z + team_climate + rng.normal(0.0, 0.7, n),
        "safety_organizing": 3.5 + 0.4 * z + team_climate + rng.normal(0.0, 0.7, n),
        "stress_recognition": 3.2 + 0.3 * z + rng.normal(0.0, 0.8, n),
        "emotional_exhaustion": exhaustion,
        "intent_to_stay": 3.5 + 0.5 * z - 0.3 * (exhaustion - 3.0) + rng.normal(0.0, 0.8, n),
    }
    items = {
        name: pl.Series(name, np.clip(np.rint(latent[name]), 1, 5).astype(np.int64)).set(
            pl.Series(rng.random(n) < 0.03), None
        )
        for name, _ in LIKERT_ITEMS
    }
    return pl.DataFrame(
        {
            "respondent_id": _ids("S", worker, 7),
            "wave_date": _dates(_month_days(jurisdiction, staff.month_index[responds])),
            "team": _codes(TEAMS, team),
            "role": _codes(SURVEY_ROLES, role),
            "tenure_band": _codes(TENURE_BANDS, band),
            **items,
        }
    )


_TEAM_OF_UNIT = ("intake", "investigations", "ongoing", "foster_care", "adoption",
                 "administration")  # fmt: skip
"""Survey team for each WORK_UNITS entry."""
_SURVEY_ROLE_OF_ROLE = ("caseworker", "caseworker", "supervisor", "manager", "support")
"""Survey role for each WORKER_ROLES entry."""
