"""The partnership registry: `partnership.toml`, written by `npcs partnership`, read by `npcs`.

The file names the partnership, the analyst's credentials (CA certificate, TLS
certificate and key, Ed25519 request-signing key) and the nodes, each with its address
and the SHA-256 fingerprint of its Ed25519 ledger key (pinned: a receipt signed by any
other key is flagged). Relative paths are resolved against the file's own folder.

Format (documented in docs/analyst-guide.md):

    format_version = 1
    name = "midwest"

    [identity]
    ca_certificate = "/home/ana/npcs/ana/ca.crt"
    certificate = "/home/ana/npcs/ana/tls.crt"
    tls_key = "/home/ana/npcs/ana/tls.key"
    signing_key = "/home/ana/npcs/ana/signing.key"

    [[nodes]]
    name = "state-a"
    address = "npcs.state-a.example.gov:50051"
    ledger_key_fingerprint = "3f1c...64 hex digits"

TOML is read with the standard library's `tomllib` and written by `kernel.tomlfile`
(atomically, so a crash never leaves half a registry).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kernel.identity import IdentityError, check_fingerprint, check_name

FORMAT_VERSION = 1
CONFIG_ENV = "NPCS_CONFIG"
DEFAULT_CONFIG_NAME = "partnership.toml"


class PartnershipError(Exception):
    """A partnership.toml that is missing, malformed or asked to do something impossible."""


@dataclass(frozen=True)
class IdentityFiles:
    """The analyst's own credentials (absolute paths)."""

    ca_certificate: Path
    certificate: Path
    tls_key: Path
    signing_key: Path


@dataclass(frozen=True)
class NodeEntry:
    """One node: its name in the partnership, where to reach it, its pinned ledger key."""

    name: str
    address: str
    ledger_key_fingerprint: str

    def __post_init__(self) -> None:
        check_address(self.address)


@dataclass(frozen=True)
class Partnership:
    name: str
    identity: IdentityFiles
    nodes: tuple[NodeEntry, ...] = field(default_factory=tuple)

    def node(self, name: str) -> NodeEntry:
        for entry in self.nodes:
            if entry.name == name:
                return entry
        raise PartnershipError(
            f"node {name!r} is not in partnership {self.name!r}; known nodes: "
            f"{', '.join(n.name for n in self.nodes) or 'none'}"
        )

    def select(self, names: list[str] | None) -> tuple[NodeEntry, ...]:
        """The named nodes (in the order given), or all nodes when `names` is None/empty."""
        if not names:
            if not self.nodes:
                raise PartnershipError(
                    "the partnership has no nodes yet: add one with "
                    "`npcs partnership add-node FILE NAME HOST:PORT --ledger-key PUBFILE`"
                )
            return self.nodes
        return tuple(self.node(name) for name in dict.fromkeys(names))

    def select_listed(self, names: str | None) -> tuple[NodeEntry, ...]:
        """`select` for a comma-separated list as `--nodes` takes it (None: all nodes)."""
        wanted = [name.strip() for name in names.split(",") if name.strip()] if names else None
        return self.select(wanted)

    def with_node(self, entry: NodeEntry, *, replace_existing: bool = False) -> Partnership:
        existing = [n for n in self.nodes if n.name == entry.name]
        if existing and not replace_existing:
            raise PartnershipError(
                f"node {entry.name!r} is already in the partnership; pass --replace to "
                "change its address or ledger key"
            )
        pinned_elsewhere = [
            n.name
            for n in self.nodes
            if n.name != entry.name and n.ledger_key_fingerprint == entry.ledger_key_fingerprint
        ]
        if pinned_elsewhere:
            raise PartnershipError(
                f"that ledger key is already pinned for node {pinned_elsewhere[0]!r}: every "
                "node has its own ledger key, so one key for two nodes means a wrong file "
                "(ask the node's operator for its keys/ledger.pub)"
            )
        nodes = tuple(entry if n.name == entry.name else n for n in self.nodes)
        if not existing:
            nodes = (*nodes, entry)
        return replace(self, nodes=nodes)


def check_address(address: str) -> str:
    """HOST:PORT with a port in 1-65535 ([IPv6]:PORT allowed)."""
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PartnershipError(
            f"node address {address!r} must be HOST:PORT, e.g. npcs.state-a.example.gov:50051"
        )
    return address


def resolve_config_path(option: str | Path | None) -> Path:
    """`--config`, else $NPCS_CONFIG, else ./partnership.toml."""
    if option:
        return Path(option)
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    return Path(DEFAULT_CONFIG_NAME)


# --- reading ----------------------------------------------------------------------------


def load_partnership(path: Path) -> Partnership:
    """Read and check partnership.toml; PartnershipError names the file and the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PartnershipError(
            f"no partnership file at {path}: create one with `npcs partnership init {path} "
            "--name P --ca CA_CERT --identity DIR`, or point --config / NPCS_CONFIG at yours"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PartnershipError(f"{path} is not valid TOML: {exc}") from exc
    return _parse(data, path)


def _parse(data: dict[str, object], path: Path) -> Partnership:
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise PartnershipError(
            f"{path}: format_version is {version!r}, this npcs reads version {FORMAT_VERSION}"
        )
    base = path.resolve().parent
    identity_table = _table(data.get("identity"), path, "[identity]")
    identity = IdentityFiles(
        ca_certificate=_path(identity_table, "ca_certificate", base, path),
        certificate=_path(identity_table, "certificate", base, path),
        tls_key=_path(identity_table, "tls_key", base, path),
        signing_key=_path(identity_table, "signing_key", base, path),
    )
    raw_nodes = data.get("nodes", [])
    if not isinstance(raw_nodes, list):
        raise PartnershipError(f"{path}: `nodes` must be an array of [[nodes]] tables")
    nodes = tuple(_node(_table(raw, path, "[[nodes]]"), path) for raw in raw_nodes)
    names = [n.name for n in nodes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PartnershipError(f"{path}: node names appear twice: {', '.join(duplicates)}")
    keys = [n.ledger_key_fingerprint for n in nodes]
    shared = sorted({n.name for n in nodes if keys.count(n.ledger_key_fingerprint) > 1})
    if shared:
        raise PartnershipError(
            f"{path}: nodes {', '.join(shared)} pin the same ledger key; each node has its "
            "own: pin each node's keys/ledger.pub"
        )
    try:
        name = check_name(_string(data, "name", path), "partnership name")
    except IdentityError as exc:
        raise PartnershipError(f"{path}: {exc}") from exc
    return Partnership(name=name, identity=identity, nodes=nodes)


def _node(table: dict[str, object], path: Path) -> NodeEntry:
    try:
        return NodeEntry(
            name=check_name(_string(table, "name", path), "node name"),
            address=_string(table, "address", path),
            ledger_key_fingerprint=check_fingerprint(
                _string(table, "ledger_key_fingerprint", path)
            ),
        )
    except IdentityError as exc:
        raise PartnershipError(f"{path}: {exc}") from exc


def _table(value: object, path: Path, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise PartnershipError(f"{path}: missing or malformed {what} table")
    return value


def _string(table: dict[str, object], key: str, path: Path) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise PartnershipError(f"{path}: `{key}` must be a non-empty string")
    return value


def _path(table: dict[str, object], key: str, base: Path, path: Path) -> Path:
    value = Path(_string(table, key, path))
    return value if value.is_absolute() else base / value


# --- writing ----------------------------------------------------------------------------


_HEADER = (
    "npcs partnership registry. Written by `npcs partnership init/add-node`;\n"
    "format: docs/analyst-guide.md"
)


def render_toml(partnership: Partnership) -> str:
    """The canonical text of partnership.toml."""
    from kernel import tomlfile  # tomlkit: only for writing, which queries never do

    return tomlfile.render_toml(_values(partnership), header=_HEADER)


def save_partnership(partnership: Partnership, path: Path) -> None:
    """Write partnership.toml atomically: a reader sees the old registry or the new one."""
    from kernel import tomlfile

    tomlfile.write_toml(path, _values(partnership), header=_HEADER)


def _values(partnership: Partnership) -> dict[str, Any]:
    identity = partnership.identity
    values: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": partnership.name,
        "identity": {
            "ca_certificate": str(identity.ca_certificate),
            "certificate": str(identity.certificate),
            "tls_key": str(identity.tls_key),
            "signing_key": str(identity.signing_key),
        },
    }
    if partnership.nodes:
        values["nodes"] = [
            {
                "name": node.name,
                "address": node.address,
                "ledger_key_fingerprint": node.ledger_key_fingerprint,
            }
            for node in partnership.nodes
        ]
    return values
