"""What every network command starts from: the partnership, credentials, results store.

Built once at the command's entry point and passed down; set-up problems are
`CoordinatorError`s that say what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from coordinator.client import ClientCredentials
from coordinator.connections import NodeConnections
from coordinator.errors import InvalidArgumentError, SetupError
from coordinator.fanout import FanoutSettings
from coordinator.partnership import (
    NodeEntry,
    Partnership,
    PartnershipError,
    load_partnership,
    resolve_config_path,
)
from coordinator.results import ResultsStore
from kernel.keyfiles import KeyFileError


@dataclass(frozen=True)
class Session:
    """Close it (or use it as a context manager): it keeps its nodes' channels open."""

    partnership: Partnership
    credentials: ClientCredentials
    settings: FanoutSettings
    store: ResultsStore

    @cached_property
    def connections(self) -> NodeConnections:
        """Each node's channel, opened on the session's first call to it and kept for
        its later fan-outs (`coordinator.connections`)."""
        return NodeConnections(self.credentials)

    def close(self) -> None:
        if "connections" in self.__dict__:
            self.connections.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def select_nodes(self, names: str | None) -> tuple[NodeEntry, ...]:
        try:
            return self.partnership.select_listed(names)
        except PartnershipError as exc:
            raise InvalidArgumentError(str(exc)) from exc


def open_session(config: Path | None, *, timeout: float = 30.0, retries: int = 2) -> Session:
    path = resolve_config_path(config)
    try:
        partnership = load_partnership(path)
        credentials = ClientCredentials.load(partnership.identity)
    except (PartnershipError, KeyFileError) as exc:
        raise SetupError(str(exc)) from exc
    if timeout <= 0:
        raise InvalidArgumentError("--timeout must be a positive number of seconds")
    return Session(
        partnership=partnership,
        credentials=credentials,
        settings=FanoutSettings(timeout=timeout, retries=retries),
        store=ResultsStore.open_default(),
    )
