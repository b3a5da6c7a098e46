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

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernel.files import PRIVATE_FILE_MODE, atomic_write_text, fsync_directory
from node.bounds_record import MANIFEST_KEY as BOUNDS_KEY
from node.bounds_record import declared_bounds, verified_bounds
from node.derived import DERIVED_DATASETS
from node.ingest import (
    IngestError,
    check_domains_declared,
    check_export_columns,
    count_rows,
    scan_export,
    write_reject_report,
)
from node.ingest_buckets import person_buckets
from node.ingest_result import IngestResult, SourceOrigin
from node.layout import NodePaths
from node.row_validation import count_rejected_rows, count_truncated_rows, validate_rows
from node.snapshot_checks import VerifiedSnapshots, file_sha256
from node.snapshot_file import SnapshotFile
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
        Rows that fail validation are listed in a reject report under `rejects/`. A large
        file is read and validated in buckets of persons (node/ingest_buckets.py).
        """
        return self.ingest_export(dataset, source, threshold=threshold, check_only=check_only)

    def ingest_export(
        self,
        dataset: str,
        source: Path,
        origin: SourceOrigin | None = None,
        *,
        threshold: RejectThreshold | None = None,
        check_only: bool = False,
    ) -> IngestResult:
        """`ingest` of rows that came from `origin` (None: the file `source` itself,
        hashed once its columns and rows check out; else a database query whose rows were
        spooled to `source`: node/row_spool.py), named after it in messages.

        `threshold` (None: any number of rejects) decides whether too many rejected rows
        keep the current snapshot; `check_only` validates and writes the reject report
        but stores nothing.
        """
        spec = self._ingestible(dataset)
        check_domains_declared(spec)
        lazy = scan_export(source)
        name = source.name if origin is None else origin.name
        check_export_columns(spec, lazy.collect_schema().names(), name)
        rows = count_rows(lazy, name)
        if rows == 0:
            raise IngestError(f"{name} has no data rows; the current snapshot is unchanged.")
        if origin is None:
            origin = SourceOrigin(source.name, source.stem, {"source_sha256": file_sha256(source)})
        with person_buckets(source, lazy, spec, rows, self._paths.data_dir) as parts:
            return self._ingest_parts(
                spec, parts, rows, origin, threshold=threshold, check_only=check_only
            )

    def _ingest_parts(
        self,
        spec: Dataset,
        parts: Iterator[pl.DataFrame],
        rows: int,
        origin: SourceOrigin,
        *,
        threshold: RejectThreshold | None,
        check_only: bool,
    ) -> IngestResult:
        """Validate each part (parts never split a person), write its valid rows (and the
        derived datasets' rows) on, then store the snapshots or keep the current ones."""
        import polars as pl

        from node.worker_years import derive_worker_years

        derivations = {"workforce_years": derive_worker_years}
        files = {spec.name: SnapshotFile(self._snapshots_dir(spec.name), spec.date_columns)}
        for name in self._derived_names(spec.name):
            dates = self._dataset(name).date_columns
            files[name] = SnapshotFile(self._snapshots_dir(name), dates)
        # Parts never split a person, so the whole is within the bounds when every part is.
        within_bounds = dict.fromkeys(files, True)
        try:
            reject_parts = []
            for part in parts:
                checked = validate_rows(spec, part)
                del part
                reject_parts.append(checked.rejects)
                for name, file in files.items():
                    if name == spec.name:
                        rows_of, within = checked.valid, checked.within_bounds
                    else:
                        rows_of = derivations[name](checked.valid)
                        within = verified_bounds(self._dataset(name), rows_of) is not None
                    file.write(rows_of)
                    within_bounds[name] = within_bounds[name] and within
                    del rows_of
                del checked  # before the next part is read: one part in memory at a time
            rejects = pl.concat(reject_parts)
            report = write_reject_report(self._paths.rejects_dir, spec.name, origin.stem, rejects)
            rejected = count_rejected_rows(rejects)
            accepted = files[spec.name].rows
            problem = None
            if accepted == 0:
                problem = (
                    f"every row of {origin.name} was rejected; the current snapshot is "
                    "unchanged. See the reject report."
                )
            elif threshold is not None and threshold.exceeded(rejected, rows):
                problem = threshold.explain(rejected, rows)
            if problem is not None or check_only:
                return IngestResult(
                    snapshot=None,
                    accepted=accepted,
                    rejected=rejected,
                    reject_report=report,
                    problem=problem,
                    checked_only=check_only,
                )
            snapshot = self._store_snapshot(
                spec, files.pop(spec.name), origin, (rejected, within_bounds[spec.name])
            )
            derived = tuple(
                self._store_snapshot(
                    self._dataset(name), files.pop(name), origin, (0, within_bounds[name])
                )
                for name in list(files)
            )
            return IngestResult(
                snapshot=snapshot,
                accepted=accepted,
                rejected=rejected,
                reject_report=report,
                derived=derived,
                truncated=count_truncated_rows(rejects),
            )
        finally:
            for file in files.values():
                file.discard()

    def _derived_names(self, dataset: str) -> list[str]:
        """The datasets computed from `dataset`'s valid rows (e.g. workforce_years)."""
        return [
            name
            for name, parent in DERIVED_DATASETS.items()
            if parent == dataset and name in self._schema.dataset_names
        ]

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

    def _snapshots_dir(self, dataset: str) -> Path:
        return self.dataset_dir(dataset) / SNAPSHOTS_DIR

    def _store_snapshot(
        self, spec: Dataset, file: SnapshotFile, origin: SourceOrigin, checks: tuple[int, bool]
    ) -> Snapshot:
        """Name the written file by its content, give it a manifest, make it current.

        `checks`: rows rejected, and whether every person was verified within the bounds.
        """
        rejected, within_bounds = checks
        folder = self._snapshots_dir(spec.name)
        created = datetime.now(UTC)
        file.finish()
        digest = file_sha256(file.path)
        snapshot_id = f"{created:%Y%m%dT%H%M%S%f}-{digest[:8]}"  # sorts in ingest order
        parquet_path = folder / f"{snapshot_id}.parquet"
        manifest_path = parquet_path.with_suffix(".json")
        if manifest_path.exists():  # the same content in the same microsecond: reuse it
            file.discard()
            _switch_current(self.dataset_dir(spec.name), snapshot_id)
            return self.snapshot(spec.name, snapshot_id)
        # Person-level rows, and a manifest with private date ranges: for this node only.
        os.replace(file.path, parquet_path)
        fsync_directory(folder)
        manifest = {
            "id": snapshot_id,
            "dataset": spec.name,
            "rows": file.rows,
            "rejected": rejected,
            "source": origin.name,
            **origin.details,
            "sha256": digest,
            "created_at": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "schema_version": self._schema.version,
            "local_only": {"date_ranges": file.date_ranges()},
            BOUNDS_KEY: declared_bounds(spec) if within_bounds else None,
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
