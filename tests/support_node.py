"""Shared test support: a partnership CA, a node folder with data, running node servers,
and mTLS clients with signed requests. Used by node, coordinator and CLI tests.

Fixtures (in tests/conftest.py) build on these helpers:
- `node_world` (session): a `NodeWorld` — CA "demo", node "county-a" with an installed
  certificate and synthetic `incidents` data, and credentials for analysts alice
  (allowed), bob (not allowed), carol (allowed but revoked), auditor audrey, and a
  "stranger" analyst alice from a rogue CA with the same partnership name.
- `node_server` (module): a `RunningNode` serving `node_world` on 127.0.0.1, port 0.
Each call to `make_node_world(tmp)` builds an independent world (own CA, own ledger).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from coordinator.ca import (
    CertificateAuthority,
    CredentialPaths,
    init_ca,
    issue_person_credentials,
    load_csr,
)
from kernel.identity import certificate_fingerprint
from kernel.keyfiles import (
    certificate_pem,
    load_certificate_file,
    load_ed25519_private_key,
    load_ed25519_public_key,
)
from kernel.signing import SignedRequest, new_envelope, sign_request
from node.layout import NodePaths
from node.provision import init_node_folder, install_certificate
from node.settings import load_settings
from node.store import DataStore, node_schema
from npcs.serde_query import normalize_spec, query_request_to_proto
from npcs.transport import CLIENT_OPTIONS
from npcs.v1 import node_pb2 as pb
from npcs.v1 import node_pb2_grpc
from privacy.budget import rho_to_units_ceil
from privacy.query import PrivacyLoss, QuerySpec, Statistic

PARTNERSHIP = "demo"
NODE_NAME = "county-a"
COUNTIES = ("c001", "c002", "c003")
FIRST_YEAR, LAST_YEAR = 2019, 2023
CHILDREN = 400_000
DEADLINE_SECONDS = 30


@dataclass(frozen=True)
class NodeWorld:
    """A CA, one node folder with data, and every kind of caller the node should meet."""

    root: Path
    ca_dir: Path
    node: NodePaths
    alice: CredentialPaths
    bob: CredentialPaths
    carol: CredentialPaths
    auditor: CredentialPaths
    stranger: CredentialPaths

    @property
    def ca_pem(self) -> bytes:
        return (self.ca_dir / "ca.crt").read_bytes()

    def ledger_public_key(self) -> Ed25519PublicKey:
        return load_ed25519_public_key(self.node.ledger_public_key)


def make_node_world(
    root: Path,
    *,
    datasets: tuple[str, ...] = ("incidents",),
    children: int = CHILDREN,
    node_name: str = NODE_NAME,
    extra_toml: str = "",
) -> NodeWorld:
    """Build a complete, independent partnership under `root` (slowish: ~1 s)."""
    ca_dir = root / "ca"
    init_ca(ca_dir, PARTNERSHIP)
    authority = CertificateAuthority.load(ca_dir)
    node = init_node_folder(root / "node", name=node_name, partnership=PARTNERSHIP)
    issued = authority.sign_csr(load_csr(node.tls_csr), role="node", name=node_name)
    (root / "node.crt").write_bytes(certificate_pem(issued.certificate))
    install_certificate(node.root, root / "node.crt", ca_dir / "ca.crt")

    people = {}
    for key, role, name in [
        ("alice", "analyst", "alice"),
        ("bob", "analyst", "bob"),
        ("carol", "analyst", "carol"),
        ("auditor", "auditor", "audrey"),
    ]:
        issue_person_credentials(authority, role=role, name=name, out_dir=root / key)  # type: ignore[arg-type]
        people[key] = CredentialPaths(root / key)
    init_ca(root / "rogue-ca", PARTNERSHIP)
    rogue = CertificateAuthority.load(root / "rogue-ca")
    issue_person_credentials(rogue, role="analyst", name="alice", out_dir=root / "stranger")

    carol_fingerprint = certificate_fingerprint(load_certificate_file(people["carol"].tls_cert))
    _configure_node(node, revoked=carol_fingerprint, extra_toml=extra_toml)
    _load_synthetic_data(node, datasets, children)
    return NodeWorld(
        root=root,
        ca_dir=ca_dir,
        node=node,
        alice=people["alice"],
        bob=people["bob"],
        carol=people["carol"],
        auditor=people["auditor"],
        stranger=CredentialPaths(root / "stranger"),
    )


def _configure_node(node: NodePaths, *, revoked: str, extra_toml: str) -> None:
    text = node.settings_file.read_text(encoding="utf-8")
    replacements = {
        r"^allowed_analysts = .*$": 'allowed_analysts = ["alice", "carol"]',
        r"^revoked_fingerprints = .*$": f'revoked_fingerprints = ["{revoked}"]',
        r"^counties = .*$": "counties = [" + ", ".join(f'"{c}"' for c in COUNTIES) + "]",
    }
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text, flags=re.MULTILINE)
        assert count == 1, f"node.toml has no line matching {pattern}"
    population = "\n".join(f'"{year}" = {CHILDREN}' for year in range(FIRST_YEAR, LAST_YEAR + 1))
    text = text.replace("[child_population]\n", f"[child_population]\n{population}\n")
    node.settings_file.write_text(text + extra_toml, encoding="utf-8")


def _load_synthetic_data(node: NodePaths, datasets: tuple[str, ...], children: int) -> None:
    from node.synth import Jurisdiction, generate

    settings = load_settings(node.root)
    store = DataStore(node, node_schema(settings))
    jurisdiction = Jurisdiction(
        children=children, first_year=FIRST_YEAR, last_year=LAST_YEAR, counties=COUNTIES
    )
    for dataset in datasets:
        source = node.root / f"{dataset}-synthetic.parquet"
        generate(dataset, jurisdiction, seed=7).write_parquet(source)
        source.chmod(0o600)  # an export of case records in the node folder: owner only
        result = store.ingest(dataset, source)
        assert result.snapshot is not None, result.problem


# ---------------------------------------------------------------------------------
# Clients


def client_credentials(world: NodeWorld, who: CredentialPaths | None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=world.ca_pem,
        private_key=who.tls_key.read_bytes() if who else None,
        certificate_chain=who.tls_cert.read_bytes() if who else None,
    )


@contextmanager
def node_channel(
    world: NodeWorld, port: int, who: CredentialPaths | None
) -> Iterator[grpc.Channel]:
    """An mTLS channel to the node on localhost:port as `who` (None: no client cert)."""
    with grpc.secure_channel(
        f"localhost:{port}", client_credentials(world, who), options=list(CLIENT_OPTIONS)
    ) as channel:
        yield channel


@contextmanager
def node_stub(
    world: NodeWorld, port: int, who: CredentialPaths | None
) -> Iterator[node_pb2_grpc.NodeStub]:
    with node_channel(world, port, who) as channel:
        yield node_pb2_grpc.NodeStub(channel)


def count_spec(
    *, rho: str = "0.01", purpose: str = "test", query_id: uuid.UUID | None = None
) -> QuerySpec:
    """A simple count of incidents: the cheapest real query."""
    return QuerySpec(
        query_id=query_id or uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        privacy=PrivacyLoss(rho=Decimal(rho)),
        purpose=purpose,
    )


def sign_query(
    spec: QuerySpec,
    who: CredentialPaths,
    *,
    audience: str = NODE_NAME,
    cost_units: int | None = None,
    now: float | None = None,
) -> SignedRequest:
    """The analyst's signature over exactly what the node will parse."""
    normalized = normalize_spec(spec)
    if cost_units is None:
        rho = normalized.privacy.rho
        cost_units = rho_to_units_ceil(rho) if rho is not None else 10**12
    envelope = new_envelope(
        audience=audience,
        query_id=str(normalized.query_id),
        canonical_query=normalized.canonical_bytes(),
        cost_rho_units=cost_units,
        now=now,
    )
    return sign_request(envelope, load_ed25519_private_key(who.signing_key))


def query_request(spec: QuerySpec, who: CredentialPaths, **signing: object) -> pb.QueryRequest:
    return query_request_to_proto(spec, sign_query(spec, who, **signing))  # type: ignore[arg-type]


def ledger_size(world: NodeWorld) -> int:
    from privacy.ledger.reader import LedgerReader

    with LedgerReader.open_existing(world.node.ledger_db) as reader:
        return reader.size()
