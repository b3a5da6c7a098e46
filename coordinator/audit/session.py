"""What `npcs audit` starts from: the partnership, the auditor's credentials, the memory.

Refuses early, and clearly, anyone who is not an auditor of this partnership; set-up
problems are `CoordinatorError`s that say what to fix.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from coordinator.audit.memory import open_audit_memory
from coordinator.audit.report import AuditReport
from coordinator.audit.run import DEFAULT_TIMEOUT_SECONDS, audit_partnership
from coordinator.ca import CredentialPaths
from coordinator.checkpoints import CheckpointStore
from coordinator.client import ClientCredentials
from coordinator.errors import InvalidArgumentError, SetupError
from coordinator.ledger_resets import require_partnership_nodes
from coordinator.partnership import (
    IdentityFiles,
    NodeEntry,
    Partnership,
    PartnershipError,
    load_partnership,
    resolve_config_path,
)
from kernel.identity import IdentityError, identity_from_certificate
from kernel.keyfiles import KeyFileError, load_certificate_file


@dataclass(frozen=True)
class AuditSession:
    partnership: Partnership
    credentials: ClientCredentials
    auditor: str
    """The auditor's identity URI, as the report names it."""
    nodes: tuple[NodeEntry, ...]
    memory: CheckpointStore
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    accept_resets: frozenset[str] = frozenset()
    """Nodes whose recorded ledger reset the auditor accepts (`--accept-reset`)."""
    archived_ledgers: Mapping[str, Path] = field(default_factory=dict)
    """The archived ledger handed over for an accepted node (`--archived-ledger`)."""

    def audit(self) -> AuditReport:
        """Audit the selected nodes and remember the checkpoints of those that pass."""
        return audit_partnership(
            self.partnership,
            self.credentials,
            auditor=self.auditor,
            memory=self.memory,
            nodes=self.nodes,
            timeout=self.timeout,
            accept_resets=self.accept_resets,
            archived_ledgers=self.archived_ledgers,
        )


def open_audit_session(
    *,
    config: Path | None,
    identity_dir: Path | None = None,
    nodes: str | None = None,
    state_file: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    accept_resets: Collection[str] = (),
    archived_ledger: Path | None = None,
) -> AuditSession:
    """Load the partnership, the auditor's credentials and remembered checkpoints;
    refuse (nothing changed) an `accept_resets` node that is not audited or of which
    no checkpoint is remembered, and an `archived_ledger` without exactly one of them."""
    if timeout <= 0:
        raise InvalidArgumentError("--timeout must be a positive number of seconds")
    try:
        partnership = load_partnership(resolve_config_path(config))
        identity = partnership.identity
        if identity_dir is not None:
            identity = CredentialPaths(identity_dir.resolve()).identity_files()
        auditor = _auditor_uri(identity, partnership.name)
        credentials = ClientCredentials.load(identity)
        selected = partnership.select_listed(nodes)
    except (PartnershipError, IdentityError, KeyFileError) as exc:
        raise SetupError(str(exc)) from exc
    memory = open_audit_memory(state_file)
    _check_accept_resets(partnership, selected, memory, accept_resets)
    archived_ledgers = _archived_ledgers(accept_resets, archived_ledger)
    return AuditSession(
        partnership=partnership,
        credentials=credentials,
        auditor=auditor,
        nodes=selected,
        memory=memory,
        timeout=timeout,
        accept_resets=frozenset(accept_resets),
        archived_ledgers=archived_ledgers,
    )


def _archived_ledgers(
    accept_resets: Collection[str], archived_ledger: Path | None
) -> dict[str, Path]:
    """`--archived-ledger FILE` belongs to the one node of `--accept-reset`."""
    if archived_ledger is None:
        return {}
    names = sorted(set(accept_resets))
    if len(names) != 1:
        raise InvalidArgumentError(
            "--archived-ledger needs exactly one --accept-reset NODE (the node whose "
            f"ledger it is), got {len(names)}: accept one reset per audit, e.g. "
            f"`npcs audit --accept-reset NODE --archived-ledger {archived_ledger}`"
        )
    return {names[0]: archived_ledger}


def _check_accept_resets(
    partnership: Partnership,
    selected: tuple[NodeEntry, ...],
    memory: CheckpointStore,
    names: Collection[str],
) -> None:
    require_partnership_nodes(partnership, names, option="--accept-reset")
    audited = {entry.name for entry in selected}
    remembered = memory.remembered(partnership.name)
    for name in names:
        if name not in audited:
            raise InvalidArgumentError(
                f"--accept-reset {name}: node {name} is not audited; add it to --nodes"
            )
        if name not in remembered:
            raise InvalidArgumentError(
                f"--accept-reset {name}: no checkpoint of node {name} is remembered in "
                f"{memory.path}, so there is no reset to accept: run `npcs audit` without "
                "--accept-reset (its ledger is audited as new)"
            )


def _auditor_uri(identity: IdentityFiles, partnership: str) -> str:
    """The auditor's identity, refusing early (and clearly) anyone who is not one."""
    holder = identity_from_certificate(load_certificate_file(identity.certificate))
    if holder.role != "auditor" or holder.partnership != partnership:
        raise SetupError(
            f"`npcs audit` needs an auditor of partnership {partnership!r}, but "
            f"{identity.certificate} names {holder}: pass --identity with the folder "
            "`npcs identity init` and `npcs ca sign` made (or `npcs ca issue`, in a demo)"
        )
    return holder.uri
