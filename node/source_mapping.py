"""Check a query's result columns against a dataset's schema before any row is read.

The query's column names come from the database's description of the result (a query
that returns no row), so a misspelt alias costs a round trip, not a full table scan.
Each problem names the column and, when one is close, the name that was probably meant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence

from node.sources_file import SourceError, did_you_mean
from privacy.schema import Dataset

_PROBLEMS_SHOWN = 12


def check_query_columns(
    spec: Dataset, columns: Sequence[str], optional: Collection[str], where: str
) -> None:
    """Raise SourceError unless `columns` are exactly the schema's (optional ones may lack).

    `optional` are columns ingest derives when absent (e.g. `recurrence_12m`); `where`
    names the query for the message (e.g. "the query for reports on database casework").
    """
    expected = list(spec.column_names)
    missing = [name for name in expected if name not in columns and name not in optional]
    unknown = [name for name in columns if name not in expected]
    repeated = sorted(name for name, count in Counter(columns).items() if count > 1)
    problems = [
        f"returns {name}, which is not in the {spec.name} schema{did_you_mean(name, missing)}"
        for name in unknown
    ]
    problems += [f"does not return {name}{did_you_mean(name, unknown)}" for name in missing]
    problems += [f"returns {name} more than once" for name in repeated]
    if problems:
        shown = problems[:_PROBLEMS_SHOWN]
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown)} more")
        listed = "\n".join(f"  - {problem}" for problem in shown)
        raise SourceError(
            f"{where} does not match the {spec.name} schema:\n{listed}\n"
            "Name each result column after its schema column (SELECT source_column AS "
            f"schema_name, ...); the deploy guide's section 6.3 lists the columns. No row was "
            "read and the current snapshot is unchanged."
        )
