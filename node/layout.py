"""Where a node keeps things inside its folder (created by `npcs-node init`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NodePaths:
    """Every file and folder of one node, derived from its root folder."""

    root: Path

    @property
    def settings_file(self) -> Path:
        return self.root / "node.toml"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def tls_key(self) -> Path:
        return self.keys_dir / "tls.key"

    @property
    def tls_csr(self) -> Path:
        return self.keys_dir / "tls.csr"

    @property
    def tls_cert(self) -> Path:
        return self.keys_dir / "tls.crt"

    @property
    def ca_cert(self) -> Path:
        return self.keys_dir / "ca.crt"

    @property
    def ledger_key(self) -> Path:
        """The node's Ed25519 ledger-signing key (never the TLS key)."""
        return self.keys_dir / "ledger.key"

    @property
    def ledger_public_key(self) -> Path:
        """The public half of the ledger key, to hand to the partnership."""
        return self.keys_dir / "ledger.pub"

    @property
    def ledger_high_water(self) -> Path:
        """The largest checkpoint the node ever signed, signed again (beside the keys,
        not in the ledger folder, so restoring that folder cannot roll it back)."""
        return self.keys_dir / "ledger.high-water"

    @property
    def populations_file(self) -> Path:
        """Public child populations by year and group (`npcs-node population import`)."""
        return self.root / "populations.json"

    @property
    def sources_file(self) -> Path:
        """Which database query feeds each dataset (`npcs-node refresh`); no secrets."""
        return self.root / "sources.toml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def rejects_dir(self) -> Path:
        return self.root / "rejects"

    @property
    def ledger_dir(self) -> Path:
        return self.root / "ledger"

    @property
    def ledger_db(self) -> Path:
        return self.ledger_dir / "ledger.sqlite"
