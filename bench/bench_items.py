"""Multi-item queries against one query per item, at the same total rho.

One synthetic node (incidents of `--children` children, 2019-2024) is built through the
real ingest path. Two questions, each asked two ways at the same total rho:

* **improvement opportunities by year**: a count of each `io_*` flag per year;
* **SSIT factors by year**: the mean of each `ssit_*` factor (0-3) per year.

**before** (the only way before multi-item queries): one query per item
(`--where io_policy=true` for a flag, COLUMN = the factor for a mean), each at rho / k,
so k ledger entries; **after**: one `--items` query at rho, one ledger entry. Both are
planned and released by `privacy.plan.plan_query` as the node runs it; the truth is
computed here from the node's own snapshot (never in the node).

Prints, per question and way: the rho charged, the ledger entries, the median 95%
half-width, the RMSE against the truth, and the plan + release time per answer, with
the after / before ratios (measured interleaved in one process); writes
bench/results/items.json. Not a test.

    python bench/bench_items.py [--releases 200] [--children 900000]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl

from node.layout import NodePaths
from node.store import DataStore
from node.synth import Jurisdiction, default_counties, generate
from privacy.budget import rho_to_units_ceil
from privacy.plan import plan_query
from privacy.query import (
    DateRangeFilter,
    GroupByTime,
    InSetFilter,
    PrivacyLoss,
    QuerySpec,
    TimeBucket,
)
from privacy.schema import IMPROVEMENT_OPPORTUNITIES, PARTNERSHIP_SCHEMA, SSIT_ITEMS, Schema
from privacy.validate import QueryLimits, validate_query

RESULTS = Path(__file__).with_name("results") / "items.json"
FIRST_YEAR, LAST_YEAR = 2019, 2024
LIMITS = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(10))


@dataclass(frozen=True)
class ItemQuestion:
    key: str
    statistic: str
    items: tuple[str, ...]
    rho: Decimal
    value: str
    """The released value compared with the truth: "count" or "mean"."""


QUESTIONS = (
    ItemQuestion(
        "improvement_opportunities",
        "count",
        tuple(name for name, _ in IMPROVEMENT_OPPORTUNITIES),
        Decimal("0.5"),
        "count",
    ),
    ItemQuestion(
        "ssit_factors", "mean", tuple(name for name, _ in SSIT_ITEMS), Decimal("1"), "mean"
    ),
)


def _spec(question: ItemQuestion, items: tuple[str, ...], rho: Decimal) -> QuerySpec:
    """One question over `items` at `rho`: a multi-item query, or one item's own query."""
    one_flag = question.statistic == "count" and len(items) == 1
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=question.statistic,
        column=items[0] if question.statistic == "mean" and len(items) == 1 else None,
        items=items if len(items) > 1 else (),
        group_by=(GroupByTime(column="incident_date", bucket=TimeBucket.YEAR),),
        filters=(
            *((InSetFilter(column=items[0], values=(True,)),) if one_flag else ()),
            DateRangeFilter(
                column="incident_date",
                start=date(FIRST_YEAR, 1, 1),
                end=date(LAST_YEAR, 12, 31),
            ),
        ),
        privacy=PrivacyLoss(rho=rho),
        purpose="bench: multi-item against one query per item",
    )


Answer = dict[tuple[str, str], tuple[float, float]]
"""(year, item) -> (released value, 95% half-width)."""


def answer(
    question: ItemQuestion, items: tuple[str, ...], rho: Decimal, path: Path, schema: Schema
) -> tuple[Answer, int]:
    """Plan and release one query; its values by (year, item) and its charge."""
    built = plan_query(validate_query(_spec(question, items, rho), schema, LIMITS), schema, path)
    release = built.release(node="bench", snapshot_id="s")
    values: Answer = {}
    for cell in release.cells:
        year, item = cell.key[0], cell.key[1] if len(cell.key) > 1 else items[0]
        estimate = next(e for e in cell.estimates if e.name == question.value)
        values[(year, item)] = (estimate.value, (estimate.ci_high - estimate.ci_low) / 2)
    return values, built.cost_units


def before(question: ItemQuestion, path: Path, schema: Schema) -> tuple[Answer, int, int]:
    """One query per item at rho / k: the values, the total charge and the entries."""
    share = question.rho / len(question.items)
    values: Answer = {}
    charged = 0
    for item in question.items:
        one, cost = answer(question, (item,), share, path, schema)
        values.update(one)
        charged += cost
    return values, charged, len(question.items)


def after(question: ItemQuestion, path: Path, schema: Schema) -> tuple[Answer, int, int]:
    values, charged = answer(question, question.items, question.rho, path, schema)
    return values, charged, 1


def truth(question: ItemQuestion, path: Path) -> dict[tuple[str, str], float]:
    """Exact counts of true flags, or means of known values, per year and item."""
    frame = pl.read_parquet(path).filter(
        pl.col("incident_date").dt.year().is_between(FIRST_YEAR, LAST_YEAR)
    )
    exact: dict[tuple[str, str], float] = {}
    for (year,), group in frame.group_by(pl.col("incident_date").dt.year()):
        for item in question.items:
            column = group[item]
            value = column.sum() if question.statistic == "count" else column.mean()
            if value is not None:
                exact[(str(year), item)] = float(value)  # type: ignore[arg-type]
    return exact


@dataclass
class Way:
    half_widths: list[float]
    errors: list[float]
    seconds: list[float]
    charged_units: int = 0
    entries: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "rho_charged": self.charged_units / 1_000_000,
            "ledger_entries": self.entries,
            "median_half_width": statistics.median(self.half_widths),
            "rmse": math.sqrt(statistics.fmean(e * e for e in self.errors)),
            "seconds_per_answer": statistics.median(self.seconds),
        }


def measure(question: ItemQuestion, path: Path, schema: Schema, releases: int) -> dict[str, Any]:
    exact = truth(question, path)
    ways = {"before": Way([], [], []), "after": Way([], [], [])}
    for _ in range(releases):
        for name, run in (("before", before), ("after", after)):  # interleaved
            started = time.perf_counter()
            values, charged, entries = run(question, path, schema)
            way = ways[name]
            way.seconds.append(time.perf_counter() - started)
            way.charged_units, way.entries = charged, entries
            way.half_widths += [values[key][1] for key in exact]
            way.errors += [values[key][0] - value for key, value in exact.items()]
    b, a = ways["before"].summary(), ways["after"].summary()
    return {
        "question": question.key,
        "items": len(question.items),
        "rho": str(question.rho),
        "cells": len(exact),
        "before": b,
        "after": a,
        "rmse_ratio_after_over_before": a["rmse"] / b["rmse"],
        "time_ratio_after_over_before": a["seconds_per_answer"] / b["seconds_per_answer"],
    }


def build_node(root: Path, children: int) -> tuple[Path, Schema]:
    counties = default_counties(children)
    schema = PARTNERSHIP_SCHEMA.with_local_domains({"county": counties})
    store = DataStore(NodePaths(root / "node"), schema)
    place = Jurisdiction(
        children=children, first_year=FIRST_YEAR, last_year=LAST_YEAR, counties=counties
    )
    source = root / "incidents.parquet"
    generate("incidents", place, seed=2024).write_parquet(source)
    store.ingest("incidents", source)
    snapshot = store.current("incidents")
    assert snapshot is not None
    return snapshot.path, schema


def _print(rows: Sequence[dict[str, Any]]) -> None:
    for row in rows:
        for way in ("before", "after"):
            figures = row[way]
            print(
                f"{row['question']:26s} {way:6s} rho {figures['rho_charged']:.6f} "
                f"entries {figures['ledger_entries']:2d} "
                f"±{figures['median_half_width']:7.3f} rmse {figures['rmse']:7.3f} "
                f"{figures['seconds_per_answer'] * 1000:8.1f} ms/answer"
            )
        print(
            f"{'':26s} after/before: rmse {row['rmse_ratio_after_over_before']:.3f}, "
            f"time {row['time_ratio_after_over_before']:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=200)
    parser.add_argument("--children", type=int, default=900_000)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="npcs-items-") as scratch:
        path, schema = build_node(Path(scratch), args.children)
        rows = [measure(question, path, schema, args.releases) for question in QUESTIONS]
    _print(rows)
    result = {
        "releases": args.releases,
        "children": args.children,
        "questions": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
