"""Utility of the demo's showcase questions: 95% half-widths and RMSE, before and after.

One synthetic node (about 600 workers, 900,000 children, 2019-2024) is built through
the real ingest path, and a smaller one (190,000 children, about 76 survey respondents
a wave) for the survey question at the size the issue quotes. Each showcase question
(coordinator/demo/showcase.py, at the demo's rho) is released `--releases` times by
the node's planner, and compared with the exact answer computed here from the node's
own snapshot (ground truth is read in the bench, never in the node). Two plans per question:

* **before**: the release-1 plans, kept here as the baseline: symmetric distance with
  d_in = the lifetime bound `max_rows_per_unit`, no truncation, uncentred sums, monthly
  `workforce` rows for separations (the demo asked that at rho 2);
* **after**: `privacy.plan.plan_query` as the node runs it now.

Prints, per question, the median 95% half-width of the released values and their RMSE
against the truth, and the ratio; writes bench/results/utility.json. Not a test.

    python bench/bench_utility.py [--releases 200] [--children 900000]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from coordinator.demo.questions import FIRST_YEAR, LAST_YEAR, QUESTIONS, Question
from node.layout import NodePaths
from node.store import DataStore
from node.synth import DATASETS, Jurisdiction, default_counties, generate
from privacy.accuracy import half_width_for
from privacy.budget import rho_to_units_ceil
from privacy.centring import mean_centre
from privacy.opendp_setup import opendp
from privacy.plan import _frame_domain, _scan, _shaped_plan, exact_plan, plan_query, query_columns
from privacy.query import Statistic
from privacy.schema import PARTNERSHIP_SCHEMA, Schema
from privacy.validate import QueryLimits, ValidatedQuery, validate_query

RESULTS = Path(__file__).with_name("results") / "utility.json"
LIMITS = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(10))
BASELINE_SEPARATIONS = Question(
    key="separations",
    statistic="count",
    dataset="workforce",
    column=None,
    by="month:year,separated",
    where="role=caseworker",
    rho="2",
    purpose="release 1: caseworker separations per year from monthly rows",
)
Cell = tuple[Any, ...]
Draw = Callable[[], dict[Cell, tuple[float, float]]]
"""One release: per cell, the released value and its 95% half-width."""


@dataclass(frozen=True)
class Measured:
    half_width: float
    rmse: float


def value_name(query: ValidatedQuery) -> str:
    return "mean" if query.statistic is Statistic.MEAN else "count"


# --- truth, read here from the node's snapshot ---------------------------------------


def truth(query: ValidatedQuery, path: Path) -> dict[Cell, float]:
    """Exact answer per cell: counts, or means of the known values."""
    frame = exact_plan(query, path).collect()
    keys = [_key(i, g) for i, g in enumerate(query.groups)]
    result: dict[Cell, float] = {}
    for row in frame.iter_rows(named=True):
        key = tuple(row[k] for k in keys)
        if query.statistic is Statistic.MEAN:
            assert query.measured is not None
            if row["__count"]:
                centre = mean_centre(query.measured)
                result[key] = centre + row["__sum"] / row["__count"]
        else:
            result[key] = float(row["__count"])
    return result


# --- after: the node's planner --------------------------------------------------------


def after(query: ValidatedQuery, schema: Schema, path: Path) -> Draw:
    name = value_name(query)

    def draw() -> dict[Cell, tuple[float, float]]:
        release = plan_query(query, schema, path).release(node="n", snapshot_id="s")
        return {
            _cell_key(query, cell.key): _estimate(cell.estimates, name) for cell in release.cells
        }

    return draw


def _estimate(estimates: Sequence[Any], name: str) -> tuple[float, float]:
    estimate = next(e for e in estimates if e.name == name)
    return float(estimate.value), (estimate.ci_high - estimate.ci_low) / 2


def _cell_key(query: ValidatedQuery, labels: Sequence[str]) -> Cell:
    values = []
    for group, label in zip(query.groups, labels, strict=True):
        values.append(dict(zip(group.labels, group.values, strict=True))[label])
    return tuple(values)


# --- before: the release-1 plans, kept as the baseline --------------------------------


def before(query: ValidatedQuery, path: Path) -> Draw:
    """Declared lifetime bound, no truncation, uncentred sum over [min(L,0), max(U,0)]."""
    dp = opendp()
    columns = query_columns(query)
    aggregations: list[Any] = []
    if query.statistic is Statistic.MEAN:
        measured = query.measured
        assert measured is not None
        assert measured.upper is not None
        column: Any = pl.col(measured.name)
        aggregations = [
            column.fill_null(0).dp.sum((0, int(measured.upper))).alias("__sum"),
            column.dp.count(signed=True).alias("__count"),
        ]
    else:
        aggregations = [dp.len(signed=True).alias("__count")]
    lazy = _shaped_plan(
        query, pl.LazyFrame(schema=_scan(path, columns).collect_schema()), aggregations
    )
    d_in = query.dataset.max_rows_per_unit
    unit = dp.m.make_private_lazyframe(
        _frame_domain(columns),
        dp.symmetric_distance(),
        dp.zero_concentrated_divergence(),
        lazy,
        global_scale=1.0,
    )
    assert query.requested_rho is not None
    scale = math.sqrt(float(unit.map(d_in)) / float(query.requested_rho)) * (1 + 1e-9)
    measurement = dp.m.make_private_lazyframe(
        _frame_domain(columns),
        dp.symmetric_distance(),
        dp.zero_concentrated_divergence(),
        lazy,
        global_scale=scale,
    )
    summary = dp.summarize_polars_measurement(measurement)
    noise = dict(
        zip(
            summary["column"],
            zip(summary["distribution"], summary["scale"], strict=True),
            strict=True,
        )
    )
    full = {c: half_width_for(str(d), float(s)) for c, (d, s) in noise.items()}
    part = {c: half_width_for(str(d), float(s), 0.975) for c, (d, s) in noise.items()}
    keys = [_key(i, g) for i, g in enumerate(query.groups)]

    def draw() -> dict[Cell, tuple[float, float]]:
        frame = measurement(_scan(path, columns)).collect()
        result = {}
        for row in frame.iter_rows(named=True):
            key = tuple(row[k] for k in keys)
            if query.statistic is Statistic.MEAN:
                result[key] = _old_mean(query, row["__sum"], row["__count"], part)
            else:
                result[key] = float(row["__count"]), full["__count"]
        return result

    return draw


def _old_mean(
    query: ValidatedQuery, total: float, count: float, part: dict[str, float]
) -> tuple[float, float]:
    """Release 1's mean: sum / count within the bounds, interval from the corners."""
    assert query.measured is not None
    low, high = float(query.measured.lower or 0), float(query.measured.upper or 0)
    value = min(max(total / max(count, 1), low), high)
    if count - part["__count"] < 1:
        return value, (high - low) / 2
    ratios = [
        (total + ds) / (count + dc)
        for ds in (-part["__sum"], part["__sum"])
        for dc in (-part["__count"], part["__count"])
    ]
    return value, (min(high, max(ratios)) - max(low, min(ratios))) / 2


def _key(index: int, group: Any) -> str:
    return f"__g{index}" if group.time_bucket is not None else group.column


# --- measuring -----------------------------------------------------------------------


def measure(draw: Draw, exact: dict[Cell, float], releases: int) -> Measured:
    errors, widths = [], []
    for _ in range(releases):
        released = draw()
        errors += [released[key][0] - value for key, value in exact.items()]
        widths += [released[key][1] for key in exact]
    rmse = math.sqrt(statistics.fmean(e * e for e in errors))
    return Measured(statistics.median(widths), rmse)


def turnover_errors(draw: Draw, exact: dict[Cell, float], releases: int, per_year: int) -> float:
    """95th percentile of |noisy turnover - true turnover| (percentage points)."""
    years = {key[0] for key in exact}
    errors = []
    for _ in range(releases):
        released = draw()
        for year in years:
            left, stayed = released[(year, True)][0], released[(year, False)][0]
            noisy = left / (left + stayed)
            true = exact[(year, True)] / (exact[(year, True)] + exact[(year, False)])
            errors.append(abs(noisy - true) * 100 * per_year)
    return sorted(errors)[int(0.95 * (len(errors) - 1))]


def build_node(root: Path, children: int) -> tuple[DataStore, Schema]:
    root.mkdir(parents=True)
    counties = default_counties(children)
    schema = PARTNERSHIP_SCHEMA.with_local_domains({"county": counties})
    store = DataStore(NodePaths(root / "node"), schema)
    place = Jurisdiction(
        children=children, first_year=FIRST_YEAR, last_year=LAST_YEAR, counties=counties
    )
    for dataset in DATASETS:
        source = root / f"{dataset}.parquet"
        generate(dataset, place, seed=2024).write_parquet(source)
        store.ingest(dataset, source)
    return store, schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=200)
    parser.add_argument("--children", type=int, default=900_000)
    parser.add_argument(
        "--survey-children",
        type=int,
        default=190_000,
        help="a second, smaller node for the survey question (about 76 respondents a wave)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="npcs-utility-") as scratch:
        main_node = build_node(Path(scratch) / "main", args.children)
        small = build_node(Path(scratch) / "small", args.survey_children)
        # Multi-item questions are measured against one query per item in bench_items.py.
        cases = [(q, *main_node, q.key) for q in QUESTIONS if q.items is None]
        survey = next(q for q in QUESTIONS if q.key == "psych_safety")
        cases.append((survey, *small, "psych_safety_small_node"))
        for question, store, schema, label in cases:
            workers = store.current("workforce_years")
            old_question = BASELINE_SEPARATIONS if question.key == "separations" else question
            new = validate_query(question.spec(), schema, LIMITS)
            old = validate_query(old_question.spec(), schema, LIMITS)
            new_path = store.current(new.dataset.name)
            old_path = store.current(old.dataset.name)
            assert new_path is not None
            assert old_path is not None
            assert workers is not None
            new_truth, old_truth = truth(new, new_path.path), truth(old, old_path.path)
            new_draw = after(new, schema, new_path.path)
            old_draw = before(old, old_path.path)
            if question.key == "separations":
                # baseline counts worker-months: the separations cells are comparable, the
                # "stayed" cells are not, so compare the separations only
                new_truth = {k: v for k, v in new_truth.items() if k[1] is True}
                old_truth = {k: v for k, v in old_truth.items() if k[1] is True}
            b = measure(old_draw, old_truth, args.releases)
            a = measure(new_draw, new_truth, args.releases)
            row: dict[str, Any] = {
                "question": label,
                "before": {"dataset": old.dataset.name, "rho": old_question.rho, **vars(b)},
                "after": {"dataset": new.dataset.name, "rho": question.rho, **vars(a)},
                "rmse_ratio_after_over_before": a.rmse / b.rmse,
            }
            if question.key == "separations":
                full_truth = truth(new, new_path.path)
                row["after"]["turnover_p95_error_pp"] = turnover_errors(
                    new_draw, full_truth, args.releases, 1
                )
                row["after"]["workers_per_year"] = statistics.fmean(
                    full_truth[(k[0], True)] + full_truth[(k[0], False)] for k in new_truth
                )
            if question.key == "psych_safety":
                row["after"]["respondents_per_wave"] = statistics.fmean(
                    float(r) for r in exact_plan(new, new_path.path).collect()["__count"] if r
                )
            rows.append(row)
            print(
                f"{label:24s} before ±{b.half_width:8.2f} rmse {b.rmse:8.3f} | "
                f"after ±{a.half_width:8.2f} rmse {a.rmse:8.3f} | "
                f"rmse ratio {a.rmse / b.rmse:5.2f}",
                flush=True,
            )
    result = {
        "releases": args.releases,
        "children": args.children,
        "questions": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        json.dumps(
            [r for r in rows if r["question"].startswith(("separations", "psych"))],
            indent=1,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
