"""The node's data store: validated, immutable Parquet snapshots per dataset.

Layout inside the node folder (`NodePaths.data_dir`)::

    data/<dataset>/snapshots/<id>.parquet   the validated rows, exactly the schema's columns
    data/<dataset>/snapshots/<id>.json      its manifest
    data/<dataset>/CURRENT                  the id of the snapshot queries read

A snapshot is never modified once written. Ingest writes the new snapshot completely
(temp file, fsync, rename) before it atomically switches `CURRENT` (temp file, fsync,
`os.replace`, fsync of the folder), so a crash at any point leaves the previous snapshot
current and readable. Refreshing data never touches the privacy budget.

The manifest's `local_only` part (the min/max of the date columns) describes private data:
the local operator may see it (`npcs-node status`), nothing may publish it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.layout import NodePaths
from privacy.schema import (
    EARLIEST_DATE,
    LATEST_DATE,
    PARTNERSHIP_SCHEMA,
    Column,
    ColumnKind,
    Dataset,
    Schema,
)

if TYPE_CHECKING:
    import polars as pl

    from node.reject_threshold import RejectThreshold
    from node.settings import NodeSettings

CURRENT_FILE = "CURRENT"
SNAPSHOTS_DIR = "snapshots"
REJECT_REPORT_COLUMNS = ("row", "column", "reason")
_ROW = "__row"
_DOMAIN_VALUES_SHOWN = 12
_VICTIM_DISPOSITIONS = ("substantiated", "indicated")
DERIVED_COLUMNS: Mapping[str, frozenset[str]] = {"reports": frozenset({"recurrence_12m"})}
"""Columns ingest computes when the file lacks them (and checks when the file has them)."""

_TRUE_WORDS = ("true", "t", "yes", "y", "1")
_FALSE_WORDS = ("false", "f", "no", "n", "0")


class StoreError(RuntimeError):
    """The store on disk is not in a state this code wrote (e.g. CURRENT names a lost file)."""


class IngestError(ValueError):
    """A file-level problem a user can fix: unreadable file, wrong columns, unknown dataset."""


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
        _check_domains_declared(self._dataset(dataset))
        raw = _read_source(source)
        origin = SourceOrigin(source.name, source.stem, {"source_sha256": _sha256(source)})
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
        spec = self._dataset(dataset)
        _check_domains_declared(spec)
        _check_columns(spec, raw.columns, origin.name)
        if raw.height == 0:
            raise IngestError(f"{origin.name} has no data rows; the current snapshot is unchanged.")
        valid, rejects = validate(spec, raw)
        report = self._write_reject_report(spec.name, origin.stem, rejects)
        rejected = _count_rejected_rows(rejects)
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
            snapshot=snapshot, accepted=valid.height, rejected=rejected, reject_report=report
        )

    # -- internals ---------------------------------------------------------------------

    def _dataset(self, dataset: str) -> Dataset:
        try:
            return self._schema.dataset(dataset)
        except KeyError:
            known = ", ".join(self._schema.dataset_names)
            raise IngestError(f"unknown dataset {dataset!r}; use one of: {known}.") from None

    def _write_reject_report(
        self, dataset: str, source_stem: str, rejects: pl.DataFrame
    ) -> Path | None:
        if rejects.height == 0:
            return None
        self._paths.rejects_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        unique = secrets.token_hex(2)
        path = self._paths.rejects_dir / f"{dataset}-{stamp}-{unique}-{source_stem}.csv"
        rejects.sort(_ROW_OUT, "column").write_csv(path)
        return path

    def _store_snapshot(
        self, spec: Dataset, frame: pl.DataFrame, origin: SourceOrigin, rejected: int
    ) -> Snapshot:
        folder = self.dataset_dir(spec.name) / SNAPSHOTS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        created = datetime.now(UTC)
        incoming = folder / f".incoming-{secrets.token_hex(8)}.parquet"
        try:
            frame.write_parquet(incoming, compression="zstd", statistics=True)
            _fsync_file(incoming)
            digest = _sha256(incoming)
            snapshot_id = f"{created:%Y%m%dT%H%M%S}-{digest[:8]}"
            parquet_path = folder / f"{snapshot_id}.parquet"
            manifest_path = parquet_path.with_suffix(".json")
            if not manifest_path.exists():  # the same content in the same second: reuse it
                os.replace(incoming, parquet_path)
        finally:
            incoming.unlink(missing_ok=True)
        if manifest_path.exists():
            _switch_current(self.dataset_dir(spec.name), snapshot_id)
            return self.snapshot(spec.name, snapshot_id)
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
            "local_only_note": "local_only describes private data: never publish it.",
        }
        _write_atomically(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _fsync_dir(folder)
        _switch_current(self.dataset_dir(spec.name), snapshot_id)
        return _snapshot_from_manifest(manifest, parquet_path)


def _switch_current(dataset_dir: Path, snapshot_id: str) -> None:
    """Point CURRENT at a complete snapshot, atomically (the commit point of an ingest)."""
    _write_atomically(dataset_dir / CURRENT_FILE, snapshot_id + "\n")
    _fsync_dir(dataset_dir)


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
    )


# ---------------------------------------------------------------------------
# Files


def _read_source(source: Path) -> pl.DataFrame:
    import polars as pl

    if not source.is_file():
        raise IngestError(f"{source} does not exist or is not a file.")
    suffix = source.suffix.lower()
    try:
        if suffix == ".csv":
            # Everything as text: each column is parsed and checked below, cell by cell.
            return pl.read_csv(source, infer_schema=False)
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(source)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise IngestError(f"could not read {source} as {suffix[1:]}: {error}") from None
    raise IngestError(f"{source}: unsupported file type {suffix!r}; use .csv or .parquet.")


def _check_columns(spec: Dataset, columns: list[str], source_name: str) -> None:
    derived = DERIVED_COLUMNS.get(spec.name, frozenset())
    expected = set(spec.column_names)
    missing = [name for name in spec.column_names if name not in columns and name not in derived]
    unknown = [name for name in columns if name not in expected]
    problems = []
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown columns: {', '.join(unknown)}")
    if problems:
        raise IngestError(
            f"{source_name} does not match the {spec.name} schema ({'; '.join(problems)}). "
            "Rename or drop columns to match `npcs-node` schema names; the current snapshot "
            "is unchanged."
        )


def _check_domains_declared(spec: Dataset) -> None:
    undeclared = [c.name for c in spec.columns if c.kind is ColumnKind.CATEGORICAL and not c.domain]
    if undeclared:
        raise IngestError(
            f"{spec.name}: no public values declared for {', '.join(undeclared)}; list them in "
            'node.toml (e.g. counties = ["c001", ...]) before ingesting.'
        )


def _write_atomically(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _date_ranges(spec: Dataset, frame: pl.DataFrame) -> dict[str, list[str | None]]:
    ranges: dict[str, list[str | None]] = {}
    for name in spec.date_columns:
        low, high = frame[name].min(), frame[name].max()
        ranges[name] = [None if low is None else str(low), None if high is None else str(high)]
    return ranges


# ---------------------------------------------------------------------------
# Validation (vectorised: one polars expression per column, never a Python loop per row)

_ROW_OUT = "row"


def validate(spec: Dataset, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a raw frame into valid rows (schema columns and dtypes) and a reject list.

    The reject list has one line per problem cell: `row` (1-based data row), `column`,
    `reason`. Checks run as one vectorised pass of boolean expressions; the messages are
    formatted only for the (usually few) rows that fail.
    """
    import polars as pl

    from privacy.snapshot_types import snapshot_dtype

    derived = DERIVED_COLUMNS.get(spec.name, frozenset())
    present = [c for c in spec.columns if c.name in raw.columns]
    work = raw.with_row_index(_ROW, offset=1).with_columns(
        series for c in present for series in _parse_column(c, raw.get_column(c.name))
    )
    rules = {
        c.name: _rules(c, raw.schema[c.name], c.name in derived, spec.privacy_unit) for c in present
    }
    conditions = [condition for column_rules in rules.values() for condition, _ in column_rules]
    failing = pl.any_horizontal(conditions).fill_null(False) if conditions else pl.lit(False)
    work = work.with_columns(failing.alias("__failing"))
    bad = work.filter(pl.col("__failing"))
    cell_rejects = pl.concat(
        [_reasons(bad, name, column_rules) for name, column_rules in rules.items()]
        or [_empty_rejects()]
    )
    bound_rejects = _contribution_rejects(spec, work)
    candidates = work.filter(
        ~pl.col("__failing") & ~pl.col(_ROW).is_in(bound_rejects.get_column(_ROW_OUT).implode())
    ).select(_ROW, *(pl.col(_parsed(c.name)).alias(c.name) for c in present))
    candidates, derived_rejects = _derive(spec, candidates)
    rejects = pl.concat([cell_rejects, bound_rejects, derived_rejects])
    valid = candidates.select(pl.col(c.name).cast(snapshot_dtype(c)) for c in spec.columns)
    return valid, rejects


def _parsed(name: str) -> str:
    return f"__parsed__{name}"


def _present_name(name: str) -> str:
    return f"__present__{name}"


def _parse_column(column: Column, raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    """The parsed column and whether each raw cell held anything.

    Text columns with few distinct values (codes, flags, dates, small numbers) are parsed
    once per distinct value and mapped back: a CSV of a million rows parses in a second.
    """
    import polars as pl

    name = column.name
    expressions = (
        _parse(column, raw.dtype).alias(_parsed(name)),
        _present(name, raw.dtype).alias(_present_name(name)),
    )
    distinct = raw.unique() if raw.dtype == pl.String else None
    if distinct is None or distinct.len() * 8 > raw.len():
        table = raw.to_frame().select(expressions)
        return table.get_column(_parsed(name)), table.get_column(_present_name(name))
    lookup = distinct.drop_nulls().to_frame()
    table = lookup.select(expressions)
    keys = lookup.get_column(name)
    return (
        _map_through(raw, keys, table.get_column(_parsed(name))),
        _map_through(raw, keys, table.get_column(_present_name(name))).fill_null(False),
    )


def _map_through(raw: pl.Series, keys: pl.Series, values: pl.Series) -> pl.Series:
    mapped = raw.replace_strict(keys, values, default=None, return_dtype=values.dtype)
    return mapped.alias(values.name)


def _empty_rejects() -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(schema={_ROW_OUT: pl.UInt32, "column": pl.String, "reason": pl.String})


def _count_rejected_rows(rejects: pl.DataFrame) -> int:
    return rejects.get_column(_ROW_OUT).n_unique() if rejects.height else 0


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """The raw cell as trimmed text, with empty text as null (CSV writes missing as '')."""
    import polars as pl

    text = pl.col(name) if dtype == pl.String else pl.col(name).cast(pl.String)
    text = text.str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _parse(column: Column, dtype: pl.DataType) -> pl.Expr:
    """The cell converted to the column's stable dtype, or null where it cannot be."""
    parsers = {
        ColumnKind.IDENTIFIER: _parse_text,
        ColumnKind.CATEGORICAL: _parse_text,
        ColumnKind.BOOLEAN: _parse_boolean,
        ColumnKind.INTEGER: _parse_integer,
        ColumnKind.FLOAT: _parse_float,
        ColumnKind.DATE: _parse_date,
    }
    return parsers[column.kind](column.name, dtype)


def _parse_text(name: str, dtype: pl.DataType) -> pl.Expr:
    return _as_text(name, dtype)


def _parse_boolean(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype == pl.Boolean:
        return pl.col(name)
    words = dict.fromkeys(_TRUE_WORDS, True) | dict.fromkeys(_FALSE_WORDS, False)
    return (
        _as_text(name, dtype)
        .str.to_lowercase()
        .replace_strict(words, default=None, return_dtype=pl.Boolean)
    )


def _parse_integer(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64, strict=False)
    # Text (and floats, via their text) must spell a whole number: 2.5 is not silently 2.
    return _as_text(name, dtype).cast(pl.Int64, strict=False)


def _parse_float(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype.is_numeric():
        number = pl.col(name).cast(pl.Float64)
    else:
        number = _as_text(name, dtype).cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number)


def _parse_date(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype == pl.Date:
        return pl.col(name)
    if dtype == pl.Datetime:
        return pl.col(name).dt.date()
    return _as_text(name, dtype).str.to_date("%Y-%m-%d", strict=False)


def _present(name: str, dtype: pl.DataType) -> pl.Expr:
    """The raw cell holds something (blank text counts as missing)."""
    import polars as pl

    if dtype == pl.String:
        return pl.col(name).str.strip_chars().str.len_bytes().fill_null(0) > 0
    return pl.col(name).is_not_null()


def _rules(
    column: Column, dtype: pl.DataType, derived: bool, unit: str
) -> list[tuple[pl.Expr, pl.Expr]]:
    """(failure condition, reason) pairs for one column, in the order they are reported."""
    import polars as pl

    name = column.name
    present = pl.col(_present_name(name))
    value = pl.col(_parsed(name))
    text = _as_text(name, dtype)
    rules: list[tuple[pl.Expr, pl.Expr]] = [
        (present & value.is_null(), pl.format(_type_message(column), text)),
    ]
    if not column.nullable and not derived:
        rules.append((~present, pl.lit(_missing_message(column, unit))))
    if column.kind is ColumnKind.CATEGORICAL and column.domain:
        rules.append((~value.is_in(column.domain), pl.format(_domain_message(column), value)))
    if column.is_numeric and column.lower is not None and column.upper is not None:
        outside = (value < column.lower) | (value > column.upper)
        rules.append((outside, pl.format(_bounds_message(column), value)))
    if column.kind is ColumnKind.DATE:
        outside = (value < EARLIEST_DATE) | (value > LATEST_DATE)
        template = f"out of range: date {{}} is outside [{EARLIEST_DATE}, {LATEST_DATE}]"
        rules.append((outside, pl.format(template, value)))
    return rules


def _reasons(bad: pl.DataFrame, name: str, rules: list[tuple[pl.Expr, pl.Expr]]) -> pl.DataFrame:
    """One reject line per failing cell of this column; a cell gets its first failed rule."""
    import polars as pl

    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, message in reversed(rules):
        reason = pl.when(condition.fill_null(False)).then(message).otherwise(reason)
    return bad.select(
        pl.col(_ROW).alias(_ROW_OUT), pl.lit(name).alias("column"), reason.alias("reason")
    ).filter(pl.col("reason").is_not_null())


def _type_message(column: Column) -> str:
    expected = {
        ColumnKind.IDENTIFIER: "an identifier",
        ColumnKind.CATEGORICAL: "a code",
        ColumnKind.BOOLEAN: "a yes/no value (true/false, yes/no, 1/0)",
        ColumnKind.INTEGER: "a whole number",
        ColumnKind.FLOAT: "a finite number",
        ColumnKind.DATE: "a date (YYYY-MM-DD)",
    }[column.kind]
    return f"wrong type: '{{}}' is not {expected}"


def _missing_message(column: Column, unit: str) -> str:
    if column.name == unit:
        return f"missing privacy unit id: {column.name} may not be empty"
    return f"missing value: {column.name} may not be empty"


def _domain_message(column: Column) -> str:
    domain = column.domain or ()
    shown = ", ".join(domain[:_DOMAIN_VALUES_SHOWN])
    more = f", ... ({len(domain)} values)" if len(domain) > _DOMAIN_VALUES_SHOWN else ""
    return f"out of domain: '{{}}' is not a public value of {column.name} ({shown}{more})"


def _bounds_message(column: Column) -> str:
    low, high = _format_bound(column.lower), _format_bound(column.upper)
    return f"out of bounds: {{}} is outside [{low}, {high}]"


def _format_bound(bound: float | None) -> str:
    return f"{bound:g}" if bound is not None else "?"


def _contribution_rejects(spec: Dataset, work: pl.DataFrame) -> pl.DataFrame:
    """Every row of a privacy unit that has more rows in the file than the bound allows.

    Counted over all the file's rows with that unit id, valid or not: an export that
    lists a child more often than the bound is wrong about that child as a whole.
    """
    import polars as pl

    unit = _parsed(spec.privacy_unit)
    bound = spec.max_rows_per_unit
    if unit not in work.columns:
        return _empty_rejects()
    counted = work.select(
        pl.col(_ROW).alias(_ROW_OUT), pl.len().over(unit).alias("n"), pl.col(unit)
    ).filter(pl.col(unit).is_not_null() & (pl.col("n") > bound))
    return counted.select(
        pl.col(_ROW_OUT),
        pl.lit(spec.privacy_unit).alias("column"),
        pl.format(
            f"over contribution bound: this {spec.privacy_unit} has {{}} rows, more than "
            f"the {bound} allowed per unit (all its rows are rejected)",
            pl.col("n"),
        ).alias("reason"),
    )


def _derive(spec: Dataset, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Compute derived columns; reject rows whose given value disagrees with the derivation."""
    import polars as pl

    if spec.name != "reports":
        return frame, _empty_rejects()
    derived = recurrence_12m(frame)
    if "recurrence_12m" not in frame.columns:
        return frame.with_columns(derived.alias("recurrence_12m")), _empty_rejects()
    given = pl.col("recurrence_12m")
    checked = frame.with_columns(derived.alias("__derived"))
    wrong = given.is_not_null() & (given != pl.col("__derived"))
    rejects = checked.filter(wrong).select(
        pl.col(_ROW).alias(_ROW_OUT),
        pl.lit("recurrence_12m").alias("column"),
        pl.format(
            "inconsistent: recurrence_12m is {} but this child's substantiated/indicated "
            "report dates give {} (CFSR 12-month recurrence); omit the column to derive it",
            given,
            pl.col("__derived"),
        ).alias("reason"),
    )
    kept = (
        checked.filter(~wrong)
        .with_columns(pl.col("__derived").alias("recurrence_12m"))
        .drop("__derived")
    )
    return kept, rejects


def recurrence_12m(frame: pl.DataFrame) -> pl.Series:
    """CFSR recurrence: a substantiated/indicated report of a child within 12 months after
    an earlier substantiated/indicated report of the same child. Reports of one child on
    the same day count as one event. Returned in the frame's row order.

    One sort, then only running (cumulative) expressions: no group-by or join, so a
    million reports take a fraction of a second.
    """
    import polars as pl

    day = pl.col("report_date").cast(pl.Int64) + _DAY_OFFSET  # always >= 1
    child = pl.col("child_id")
    new_child = (child != child.shift(1)).fill_null(True)
    new_day = (pl.col("report_date") != pl.col("report_date").shift(1)).fill_null(True)
    child_base = new_child.cast(pl.Int64).cum_sum() * _CHILD_STRIDE
    # Running max of (child, victim day) codes: the child's latest victim day so far.
    latest = pl.when(pl.col("__victim")).then(child_base + day).otherwise(0).cum_max() - child_base
    latest_victim_day = pl.when(latest > 0).then(latest)
    before_this_day = pl.when(~new_child).then(latest_victim_day.shift(1))
    # Same-day reports share the value found at the first report of that day.
    previous = pl.when(new_child | new_day).then(before_this_day.fill_null(-1)).forward_fill()
    previous_day = pl.when(previous > 0).then(previous - _DAY_OFFSET).cast(pl.Date)
    flagged = (
        frame.select(
            pl.int_range(pl.len()).alias("__order"),
            "child_id",
            "report_date",
            pl.col("disposition").is_in(_VICTIM_DISPOSITIONS).alias("__victim"),
        )
        .sort("child_id", "report_date")
        .select(
            "__order",
            (
                pl.col("__victim")
                & previous_day.is_not_null()
                & (pl.col("report_date") <= previous_day.dt.offset_by("12mo"))
            ).alias("recurrence_12m"),
        )
        .sort("__order")
    )
    return flagged.get_column("recurrence_12m")


_DAY_OFFSET = 100_000
"""Shifts day numbers (days since 1970, >= -7,305 for EARLIEST_DATE) above zero."""
_CHILD_STRIDE = 1_000_000
"""Larger than any shifted day number, so child and day pack into one Int64."""
