"""The node's data store: validated, immutable Parquet snapshots per dataset.

Layout inside the node folder (`NodePaths.data_dir`)::

    data/<dataset>/snapshots/<id>.parquet   the validated rows, exactly the schema's columns
    data/<dataset>/snapshots/<id>.json      its manifest
    data/<dataset>/CURRENT                  the id of the snapshot queries read

A snapshot is never modified once written. Ingest writes the new snapshot completely
(`kernel.files`: temp file, fsync, rename, fsync of the folder) before it atomically
switches `CURRENT` the same way, so a crash at any point leaves the previous snapshot
current and readable. Refreshing data never touches the privacy budget. Reading the
export and validating its rows live in `node.ingest` and `node.row_validation`.

The manifest's `local_only` part (the min/max of the date columns) describes private data:
the local operator may see it (`npcs-node status`), nothing may publish it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernel.files import PRIVATE_FILE_MODE, atomic_write_bytes, atomic_write_text
from node.bounds_record import MANIFEST_KEY as BOUNDS_KEY
from node.bounds_record import verified_bounds
from node.derived import DERIVED_DATASETS
from node.ingest import (
    IngestError,
    check_domains_declared,
    check_export_columns,
    read_export,
    write_reject_report,
)
from node.layout import NodePaths
from node.permissions import make_private_dir
from node.row_validation import count_rejected_rows, count_truncated_rows, validate
from node.snapshot_checks import VerifiedSnapshots, file_sha256
from privacy.schema import PARTNERSHIP_SCHEMA, Dataset, Schema

if TYPE_CHECKING:
    import polars as pl

    from node.reject_threshold import RejectThreshold
    from node.settings import NodeSettings

CURRENT_FILE = "CURRENT"
SNAPSHOTS_DIR = "snapshots"


class StoreError(RuntimeError):
    """The store on disk is not in a state this code wrote (e.g. CURRENT names a lost file)."""


@dataclass(frozen=True)
class Snapshot:
    """One immutable, validated version of a dataset."""

    snapshot_id: str
    dataset: str
    path: Path
    rows: int
    created_at: str
    rejected: int
    source: str
    sha256: str
    schema_version: str
    date_ranges: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)
    """LOCAL ONLY: min/max of each date column. Private: never publish it."""
    verified_bounds: Mapping[str, Any] | None = None
    """The contribution bounds every person was verified to satisfy at ingest (None: not
    verified; node/bounds_record.py)."""

    def scan(self) -> pl.LazyFrame:
        """A lazy scan of the snapshot (what OpenDP must be handed, never a DataFrame)."""
        import polars as pl

        return pl.scan_parquet(self.path)


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


def node_schema(settings: NodeSettings) -> Schema:
    """The partnership schema with this node's public county list filled in."""
    if not settings.counties:
        return PARTNERSHIP_SCHEMA
    return PARTNERSHIP_SCHEMA.with_local_domains({"county": tuple(settings.counties)})


class DataStore:
    """Validated snapshots of every dataset of one node."""

    def __init__(self, paths: NodePaths, schema: Schema) -> None:
        self._paths = paths
        self._schema = schema
        self._verified = VerifiedSnapshots()

    @property
    def schema(self) -> Schema:
        return self._schema

    def dataset_dir(self, dataset: str) -> Path:
        return self._paths.data_dir / self._dataset(dataset).name

    def current(self, dataset: str) -> Snapshot | None:
        """The snapshot queries read now, or None before the first successful ingest."""
        pointer = self.dataset_dir(dataset) / CURRENT_FILE
        if not pointer.exists():
            return None
        snapshot_id = pointer.read_text(encoding="utf-8").strip()
        return self.snapshot(dataset, snapshot_id)

    def verified_current(self, dataset: str) -> Snapshot | None:
        """`current`, refused (SnapshotIntegrityError) unless its file matches its manifest."""
        snapshot = self.current(dataset)
        if snapshot is not None:
            self._verified.check(snapshot)
        return snapshot

    def rollback(self, dataset: str, snapshot_id: str | None = None) -> Snapshot:
        """Make an earlier snapshot current (default: the one before the current one).

        The target must be intact (its sha256 is checked). Data only: spent privacy budget
        is never affected. Raises StoreError when there is nothing to roll back to.
        """
        ids = self.snapshot_ids(dataset)
        current = self.current(dataset)
        if snapshot_id is None:
            earlier = [i for i in ids if current is None or i < current.snapshot_id]
            if not earlier:
                raise StoreError(
                    f"{dataset} has no snapshot older than the current one to roll back to; "
                    "see `npcs-node snapshots list`."
                )
            snapshot_id = earlier[-1]
        if snapshot_id not in ids:
            raise StoreError(
                f"{dataset} has no snapshot {snapshot_id!r}; see `npcs-node snapshots list`."
            )
        target = self.snapshot(dataset, snapshot_id)
        self._verified.check(target)
        _switch_current(self.dataset_dir(dataset), snapshot_id)
        return target

    def snapshot(self, dataset: str, snapshot_id: str) -> Snapshot:
        """A stored snapshot by id (ids of older snapshots stay valid)."""
        folder = self.dataset_dir(dataset) / SNAPSHOTS_DIR
        manifest_path = folder / f"{snapshot_id}.json"
        parquet_path = folder / f"{snapshot_id}.parquet"
        if not manifest_path.exists() or not parquet_path.exists():
            raise StoreError(
                f"snapshot {snapshot_id!r} of {dataset} is missing from {folder}: the data "
                "folder was changed outside npcs-node; re-ingest the dataset."
            )
        return _snapshot_from_manifest(json.loads(manifest_path.read_text("utf-8")), parquet_path)

    def snapshot_ids(self, dataset: str) -> list[str]:
        """Ids of every complete snapshot of a dataset, oldest first."""
        folder = self.dataset_dir(dataset) / SNAPSHOTS_DIR
        if not folder.exists():
            return []
        return sorted(p.stem for p in folder.glob("*.json") if p.with_suffix(".parquet").exists())

    def ingest(
        self,
        dataset: str,
        source: Path,
        *,
        threshold: RejectThreshold | None = None,
        check_only: bool = False,
    ) -> IngestResult:
        """Validate a CSV or Parquet file and store the valid rows as the new current snapshot.

        Raises IngestError for file-level problems (the current snapshot stays as it is).
        Rows that fail validation are listed in a reject report under `rejects/`.
        """
        check_domains_declared(self._ingestible(dataset))
        raw = read_export(source)
        origin = SourceOrigin(source.name, source.stem, {"source_sha256": file_sha256(source)})
        return self.ingest_frame(dataset, raw, origin, threshold=threshold, check_only=check_only)

    def ingest_frame(
        self,
        dataset: str,
        raw: pl.DataFrame,
        origin: SourceOrigin,
        *,
        threshold: RejectThreshold | None = None,
        check_only: bool = False,
    ) -> IngestResult:
        """Validate rows read elsewhere (a file, a database) and store the valid ones.

        `threshold` (None: any number of rejects) decides whether too many rejected rows
        keep the current snapshot; `check_only` validates and writes the reject report
        but stores nothing.
        """
        spec = self._ingestible(dataset)
        check_domains_declared(spec)
        check_export_columns(spec, raw.columns, origin.name)
        if raw.height == 0:
            raise IngestError(f"{origin.name} has no data rows; the current snapshot is unchanged.")
        valid, rejects = validate(spec, raw)
        report = write_reject_report(self._paths.rejects_dir, spec.name, origin.stem, rejects)
        rejected = count_rejected_rows(rejects)
        truncated = count_truncated_rows(rejects)
        problem = None
        if valid.height == 0:
            problem = (
                f"every row of {origin.name} was rejected; the current snapshot is "
                "unchanged. See the reject report."
            )
        elif threshold is not None and threshold.exceeded(rejected, raw.height):
            problem = threshold.explain(rejected, raw.height)
        if problem is not None or check_only:
            return IngestResult(
                snapshot=None,
                accepted=valid.height,
                rejected=rejected,
                reject_report=report,
                problem=problem,
                checked_only=check_only,
            )
        snapshot = self._store_snapshot(spec, valid, origin, rejected)
        return IngestResult(
            snapshot=snapshot,
            accepted=valid.height,
            rejected=rejected,
            reject_report=report,
            derived=self._store_derived(spec.name, valid, origin),
            truncated=truncated,
        )

    def _store_derived(
        self, dataset: str, valid: pl.DataFrame, origin: SourceOrigin
    ) -> tuple[Snapshot, ...]:
        """Derive and store the datasets computed from `dataset`'s valid rows."""
        from node.worker_years import derive_worker_years

        derivations = {"workforce_years": derive_worker_years}
        return tuple(
            self._store_snapshot(self._dataset(name), derivations[name](valid), origin, 0)
            for name, parent in DERIVED_DATASETS.items()
            if parent == dataset and name in self._schema.dataset_names
        )

    # -- internals ---------------------------------------------------------------------

    def _ingestible(self, dataset: str) -> Dataset:
        """The dataset's spec, refusing derived datasets (their parent's ingest makes them)."""
        spec = self._dataset(dataset)
        if spec.name in DERIVED_DATASETS:
            raise IngestError(
                f"{spec.name} is derived when {DERIVED_DATASETS[spec.name]} is ingested; "
                f"ingest {DERIVED_DATASETS[spec.name]} instead."
            )
        return spec

    def _dataset(self, dataset: str) -> Dataset:
        try:
            return self._schema.dataset(dataset)
        except KeyError:
            known = ", ".join(self._schema.dataset_names)
            raise IngestError(f"unknown dataset {dataset!r}; use one of: {known}.") from None

    def _store_snapshot(
        self, spec: Dataset, frame: pl.DataFrame, origin: SourceOrigin, rejected: int
    ) -> Snapshot:
        folder = self.dataset_dir(spec.name) / SNAPSHOTS_DIR
        make_private_dir(folder)
        created = datetime.now(UTC)
        # The id names the content, so the Parquet bytes are made before the file is.
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", statistics=True)
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        snapshot_id = f"{created:%Y%m%dT%H%M%S}-{digest[:8]}"
        parquet_path = folder / f"{snapshot_id}.parquet"
        manifest_path = parquet_path.with_suffix(".json")
        if manifest_path.exists():  # the same content in the same second: reuse it
            _switch_current(self.dataset_dir(spec.name), snapshot_id)
            return self.snapshot(spec.name, snapshot_id)
        # Person-level rows, and a manifest with private date ranges: for this node only.
        atomic_write_bytes(parquet_path, data, mode=PRIVATE_FILE_MODE)
        manifest = {
            "id": snapshot_id,
            "dataset": spec.name,
            "rows": frame.height,
            "rejected": rejected,
            "source": origin.name,
            **origin.details,
            "sha256": digest,
            "created_at": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "schema_version": self._schema.version,
            "local_only": {"date_ranges": _date_ranges(spec, frame)},
            BOUNDS_KEY: verified_bounds(spec, frame),
            "local_only_note": "local_only describes private data: never publish it.",
        }
        manifest_text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        atomic_write_text(manifest_path, manifest_text, mode=PRIVATE_FILE_MODE)
        _switch_current(self.dataset_dir(spec.name), snapshot_id)
        return _snapshot_from_manifest(manifest, parquet_path)


def _switch_current(dataset_dir: Path, snapshot_id: str) -> None:
    """Point CURRENT at a complete snapshot, atomically (the commit point of an ingest)."""
    atomic_write_text(dataset_dir / CURRENT_FILE, snapshot_id + "\n", mode=PRIVATE_FILE_MODE)


def _snapshot_from_manifest(manifest: Mapping[str, Any], path: Path) -> Snapshot:
    ranges = manifest.get("local_only", {}).get("date_ranges", {})
    return Snapshot(
        snapshot_id=manifest["id"],
        dataset=manifest["dataset"],
        path=path,
        rows=int(manifest["rows"]),
        created_at=manifest["created_at"],
        rejected=int(manifest["rejected"]),
        source=manifest["source"],
        sha256=manifest["sha256"],
        schema_version=manifest["schema_version"],
        date_ranges={name: (low, high) for name, (low, high) in ranges.items()},
        verified_bounds=manifest.get(BOUNDS_KEY),
    )


def _date_ranges(spec: Dataset, frame: pl.DataFrame) -> dict[str, list[str | None]]:
    ranges: dict[str, list[str | None]] = {}
    for name in spec.date_columns:
        low, high = frame[name].min(), frame[name].max()
        ranges[name] = [None if low is None else str(low), None if high is None else str(high)]
    return ranges
