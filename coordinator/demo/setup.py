"""Setting the demo partnership up: its CA, people, jurisdictions and node folders.

Each jurisdiction's IT does what a real deployment does, with the real `npcs-node`
command line: `init` (keys, CSR, node.toml), `install-cert` (after the CA signed the
CSR), `synth` (seeded synthetic records through the real ingest path); then node.toml
is edited, keeping its comments, to allow the demo analyst and budget the showcase
queries. The coordinator never imports node code, only the kernel and the schema.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tomlkit.toml_document import TOMLDocument

from coordinator.ca import (
    CertificateAuthority,
    CredentialPaths,
    init_ca,
    issue_person_credentials,
    load_csr,
)
from coordinator.demo.database_feed import DatabaseFeed, DatabaseFeedError
from coordinator.demo.processes import DemoError, run_node_cli
from coordinator.demo.questions import FIRST_YEAR, LAST_YEAR
from coordinator.partnership import NodeEntry, Partnership, save_partnership
from kernel.tomlfile import edit_toml
from privacy.schema import PARTNERSHIP_SCHEMA, UnitKind

PARTNERSHIP = "demo"
ANALYST = "demo-analyst"
AUDITOR = "demo-auditor"
NODE_BUDGET_RHO = "20"
"""Each privacy-unit kind's (child, staff) total rho at a demo node."""
NODE_MAX_RHO_PER_QUERY = "2"
RESULTS_DIR = "results"
DATASETS = PARTNERSHIP_SCHEMA.dataset_names


@dataclass(frozen=True)
class Jurisdiction:
    name: str
    kind: str
    children: int
    seed: int


JURISDICTIONS: tuple[Jurisdiction, ...] = (
    Jurisdiction("north-state", "state", 1_500_000, 101),
    Jurisdiction("south-state", "state", 600_000, 202),
    Jurisdiction("bay-county", "county", 250_000, 303),
    Jurisdiction("hill-county", "county", 90_000, 404),
    Jurisdiction("river-nation", "tribal nation", 3_000, 505),
)
"""Sizes differ by orders of magnitude, as real partnerships do."""


def select_jurisdictions(count: int, scale: float = 1.0) -> tuple[Jurisdiction, ...]:
    """`count` jurisdictions spread over the size range (largest and smallest first kept)."""
    if not 1 <= count <= len(JURISDICTIONS):
        raise DemoError(f"--nodes must be between 1 and {len(JURISDICTIONS)}, got {count}")
    if not 0 < scale <= 1:
        raise DemoError(f"--scale must be in (0, 1], got {scale}")
    last = len(JURISDICTIONS) - 1
    indices = sorted({round(i * last / max(count - 1, 1)) for i in range(count)})
    return tuple(
        Jurisdiction(j.name, j.kind, max(int(j.children * scale), 100), j.seed)
        for j in (JURISDICTIONS[i] for i in indices)
    )


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca"

    @property
    def analyst(self) -> CredentialPaths:
        return CredentialPaths(self.root / "analyst")

    @property
    def auditor(self) -> CredentialPaths:
        return CredentialPaths(self.root / "auditor")

    @property
    def nodes(self) -> Path:
        return self.root / "nodes"

    def node(self, name: str) -> Path:
        return self.nodes / name

    @property
    def config(self) -> Path:
        return self.root / "partnership.toml"

    @property
    def results(self) -> Path:
        return self.root / RESULTS_DIR


def prepare_workdir(workdir: Path | None) -> Path:
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="npcs-demo-"))
    if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
        raise DemoError(
            f"{workdir} already exists and is not an empty folder: pass a new folder to "
            "--workdir (the demo never overwrites a partnership)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def create_partnership_pki(layout: Layout) -> CertificateAuthority:
    init_ca(layout.ca, PARTNERSHIP)
    authority = CertificateAuthority.load(layout.ca)
    issue_person_credentials(authority, role="analyst", name=ANALYST, out_dir=layout.analyst.root)
    issue_person_credentials(authority, role="auditor", name=AUDITOR, out_dir=layout.auditor.root)
    return authority


@dataclass(frozen=True)
class ProvisionedNode:
    jurisdiction: Jurisdiction
    root: Path
    rows: dict[str, int]


def provision_node(
    layout: Layout,
    authority: CertificateAuthority,
    jurisdiction: Jurisdiction,
    feed: DatabaseFeed | None = None,
) -> ProvisionedNode:
    """What a jurisdiction's IT runs, as real `npcs-node` subprocesses."""
    from kernel.keyfiles import certificate_pem, write_public_file

    root = layout.node(jurisdiction.name)
    log = layout.nodes / f"{jurisdiction.name}.setup.log"
    run_node_cli(
        ["init", str(root), "--name", jurisdiction.name, "--partnership", PARTNERSHIP], log
    )
    # The CA operator signs the node's CSR (the node's private key never leaves it).
    issued = authority.sign_csr(
        load_csr(root / "keys" / "tls.csr"), role="node", name=jurisdiction.name
    )
    certificate = layout.nodes / f"{jurisdiction.name}.crt"
    write_public_file(certificate, certificate_pem(issued.certificate))
    run_node_cli(
        ["install-cert", str(root), str(certificate), "--ca", str(layout.ca / "ca.crt")], log
    )
    synth_args = [
        "--children",
        str(jurisdiction.children),
        "--years",
        f"{FIRST_YEAR}-{LAST_YEAR}",
        "--seed",
        str(jurisdiction.seed),
    ]
    if feed is not None:  # the agency's database, read by `npcs-node refresh`
        try:
            rows = feed.feed(root, run_node_cli, log, synth_args)
        except DatabaseFeedError as exc:
            raise DemoError(str(exc)) from None
    else:
        summary = run_node_cli(["synth", str(root), *synth_args, "--format", "json"], log)
        rows = {dataset: int(facts["rows"]) for dataset, facts in json.loads(summary).items()}
    configure_node(root)
    return ProvisionedNode(jurisdiction, root, rows)


def database_jurisdiction(jurisdictions: Sequence[Jurisdiction]) -> str:
    """The jurisdiction fed from the database: the first county (else the first)."""
    counties = [j for j in jurisdictions if j.kind == "county"]
    return (counties or list(jurisdictions))[0].name


def configure_node(root: Path) -> None:
    """Allow the demo analyst and budget the showcase queries, in node.toml.

    Edits the file as the node's operator would (NodeSettings' documented keys, see
    node/settings.py), keeping its comments; the coordinator never imports node code.
    """

    def allow_demo_analyst(settings: TOMLDocument) -> None:
        settings["allowed_analysts"] = [ANALYST]
        budget = settings.setdefault("budget", {})
        budget["max_rho_per_query"] = NODE_MAX_RHO_PER_QUERY
        budget.pop("total_rho_per_dataset", None)  # replaced by one budget per person
        totals = budget.setdefault("total_rho_per_unit_kind", {})
        for kind in UnitKind:
            totals[kind.value] = NODE_BUDGET_RHO

    edit_toml(root / "node.toml", allow_demo_analyst)


def write_partnership(
    layout: Layout, addresses: dict[str, str], provisioned: Sequence[ProvisionedNode]
) -> Partnership:
    from kernel.keyfiles import load_ed25519_public_key
    from privacy import tlog

    nodes = tuple(
        NodeEntry(
            name=node.jurisdiction.name,
            address=addresses[node.jurisdiction.name],
            ledger_key_fingerprint=tlog.key_fingerprint(
                load_ed25519_public_key(node.root / "keys" / "ledger.pub")
            ),
        )
        for node in provisioned
    )
    partnership = Partnership(
        name=PARTNERSHIP, identity=layout.analyst.identity_files(), nodes=nodes
    )
    save_partnership(partnership, layout.config)
    return partnership
