"""Datasets the node derives at ingest from another dataset's valid rows.

They are never ingested or synthesised themselves: ingesting the parent stores them
too (node/store.py; the derivation of `workforce_years` is node/worker_years.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

DERIVED_DATASETS: Mapping[str, str] = {"workforce_years": "workforce"}
"""Derived dataset -> the dataset whose ingest derives it."""


def ingested_datasets(names: Iterable[str]) -> tuple[str, ...]:
    """The names a file can be ingested (or synthesised) for: every one not derived."""
    return tuple(name for name in names if name not in DERIVED_DATASETS)
