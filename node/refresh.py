"""Refresh datasets from their database queries: read, validate, snapshot, one by one.

Each mapped dataset's rows are spooled batch by batch to a private file
(node/row_spool.py), which then goes through exactly the file-ingest path
(`DataStore.ingest_export`: person buckets, validation, reject report, reject threshold,
atomic switch of CURRENT); the spool is removed whatever happens. A dataset whose
database fails, is slow, or sends too many bad rows keeps its current snapshot; the
other datasets are still refreshed, and the outcome of each is reported. Refreshing
never touches the privacy budget."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from node.credentials import database_password
from node.ingest import IngestError
from node.ingest_result import IngestResult, SourceOrigin
from node.layout import NodePaths
from node.row_spool import RowSpool
from node.row_validation import DERIVED_COLUMNS
from node.settings import NodeSettings
from node.source_mapping import check_query_columns
from node.sources_file import DatabaseSource, SourceError, SourcesFile, did_you_mean
from node.sql_source import ColumnCheck, SqlQuery, read_query
from node.store import DataStore
from node.store import node_schema as schema_for


class RefreshProgress(Protocol):
    """What a refresh reports while it runs (a terminal shows it; scripts ignore it)."""

    def reading(self, dataset: str, database: str, rows: int) -> None: ...

    def validating(self, dataset: str, rows: int) -> None: ...

    def finished(self, outcome: RefreshOutcome) -> None: ...


class SilentProgress:
    def reading(self, dataset: str, database: str, rows: int) -> None:
        pass

    def validating(self, dataset: str, rows: int) -> None:
        pass

    def finished(self, outcome: RefreshOutcome) -> None:
        pass


@dataclass(frozen=True)
class RefreshOutcome:
    """What happened to one dataset."""

    dataset: str
    database: str
    result: IngestResult | None
    """None when the rows could not be read or did not fit the schema."""
    error: str | None
    rows_read: int
    reader: str | None
    read_seconds: float
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.result is not None and self.result.problem is None

    @property
    def problem(self) -> str | None:
        return self.error or (self.result.problem if self.result else None)


def datasets_to_refresh(
    sources: SourcesFile, requested: Sequence[str], known: Sequence[str]
) -> list[str]:
    """The requested datasets (all mapped ones when none are named), checked up front."""
    if not requested:
        if not sources.datasets:
            raise SourceError("the sources file maps no dataset; add a [datasets.NAME] table.")
        return [name for name in known if name in sources.datasets]
    for name in requested:
        if name not in known:
            raise SourceError(
                f"unknown dataset {name!r}{did_you_mean(name, list(known))}; use one of: "
                f"{', '.join(known)}."
            )
        if name not in sources.datasets:
            raise SourceError(
                f"{name} has no [datasets.{name}] table in the sources file; map it to a "
                "query first (mapped: " + (", ".join(sources.datasets) or "none") + ")."
            )
    return list(dict.fromkeys(requested))


def refresh_datasets(
    paths: NodePaths,
    settings: NodeSettings,
    sources: SourcesFile,
    sources_dir: Path,
    datasets: Sequence[str],
    *,
    check_only: bool = False,
    progress: RefreshProgress | None = None,
) -> list[RefreshOutcome]:
    """Refresh each dataset in turn; one dataset's failure does not stop the others."""
    refresher = _Refresher(
        store=DataStore(paths, schema_for(settings)),
        spool_dir=paths.data_dir,
        settings=settings,
        sources=sources,
        sources_dir=sources_dir,
        check_only=check_only,
        progress=progress or SilentProgress(),
    )
    outcomes = []
    for dataset in datasets:
        outcome = refresher.refresh(dataset)
        refresher.progress.finished(outcome)
        outcomes.append(outcome)
    return outcomes


@dataclass(frozen=True)
class _Refresher:
    store: DataStore
    spool_dir: Path
    settings: NodeSettings
    sources: SourcesFile
    sources_dir: Path
    check_only: bool
    progress: RefreshProgress

    def refresh(self, dataset: str) -> RefreshOutcome:
        started = time.perf_counter()
        mapping = self.sources.datasets[dataset]
        database = self.sources.databases[mapping.database]
        where = f"the query for {dataset} on database {mapping.database}"
        read, result, problem = None, None, None
        spool = RowSpool(self.spool_dir)
        try:
            query = SqlQuery(
                database_name=mapping.database,
                database=database,
                sql=mapping.query,
                password=database_password(mapping.database, database, self.sources_dir),
                password_hint=_password_hint(database),
                description=where,
            )
            read = read_query(
                query,
                self._column_check(dataset, where),
                spool,
                lambda rows: self.progress.reading(dataset, mapping.database, rows),
            )
            self.progress.validating(dataset, read.rows)
            result = self.store.ingest_export(
                dataset,
                read.path,
                _origin(mapping.database, database, mapping.query),
                threshold=self.settings.ingest.threshold(),
                check_only=self.check_only,
            )
        except (SourceError, IngestError) as error:
            problem = str(error)
        finally:
            spool.discard()
        return RefreshOutcome(
            dataset=dataset,
            database=mapping.database,
            result=result,
            error=problem,
            rows_read=read.rows if read else 0,
            reader=read.reader if read else None,
            read_seconds=read.seconds if read else 0.0,
            seconds=time.perf_counter() - started,
        )

    def _column_check(self, dataset: str, where: str) -> ColumnCheck:
        spec = self.store.schema.dataset(dataset)
        optional = DERIVED_COLUMNS.get(dataset, frozenset())
        return lambda columns: check_query_columns(spec, columns, optional, where)


def _origin(name: str, database: DatabaseSource, sql: str) -> SourceOrigin:
    return SourceOrigin(
        name=f"database {name}",
        stem=name,
        details={
            "source_url": database.shown_url,
            "source_query_sha256": hashlib.sha256(sql.encode("utf-8")).hexdigest(),
        },
    )


def _password_hint(database: DatabaseSource) -> str:
    if database.password_env:
        return f"from the environment variable {database.password_env}"
    if database.password_file:
        return f"from the file {database.password_file}"
    return "none is configured: add password_env or password_file if the account needs one"
