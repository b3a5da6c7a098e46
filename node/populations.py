"""The node's published populations by group: stored beside node.toml, read for Describe.

`npcs-node population import` validates a CSV (privacy.population) and writes
`populations.json` atomically; the server reads it on every `Describe`, so an import
takes effect without a restart.
"""

from __future__ import annotations

from node.errors import NodeSetupError
from node.layout import NodePaths
from privacy.population import PopulationFileError, PopulationTable


def load_populations(paths: NodePaths) -> PopulationTable | None:
    """The stored table, or None when the node has imported none."""
    try:
        text = paths.populations_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return PopulationTable.from_json(text)
    except PopulationFileError as exc:
        raise NodeSetupError(
            f"{paths.populations_file}: {exc}; import the CSV again with "
            "`npcs-node population import`"
        ) from None


def save_populations(paths: NodePaths, table: PopulationTable) -> None:
    from kernel.files import PRIVATE_FILE_MODE, atomic_write_text

    # Public numbers, but the node folder's rule is 0600 for every file (serve checks it).
    atomic_write_text(paths.populations_file, table.to_json() + "\n", mode=PRIVATE_FILE_MODE)
