"""What an ingest reports: where the rows came from and what was stored or rejected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node.store import Snapshot


@dataclass(frozen=True)
class SourceOrigin:
    """Where ingested rows came from, as recorded in the manifest and the reject report."""

    name: str
    """Shown to the operator and kept as the manifest's `source` (a file name, a database)."""
    stem: str
    """A short tag for the reject report's file name."""
    details: Mapping[str, str] = field(default_factory=dict)
    """Extra manifest facts about the source (a file's sha256, a database's query hash)."""


@dataclass(frozen=True)
class IngestResult:
    """What an ingest did: the new snapshot (None if nothing was stored) and the rejects."""

    snapshot: Snapshot | None
    accepted: int
    rejected: int
    reject_report: Path | None
    problem: str | None = None
    """Why no snapshot was stored, when none was."""
    derived: tuple[Snapshot, ...] = ()
    """Snapshots of datasets derived from this one (e.g. workforce_years), stored after it."""
    truncated: int = 0
    """Valid rows cut (and counted in `rejected`) because their person was over a
    contribution bound (node/truncation.py: each person keeps the earliest rows)."""
    checked_only: bool = False
    """A `--check` run: validated and reported, nothing stored by design."""
