"""The ledger's integrity and history: signed checkpoint, every entry, root, and prefix.

The entries must hash to the root the node signed; the checkpoint remembered from the
last audit must be a prefix of today's ledger (`coordinator.checkpoints` decides whether
it shrank or forked; the consistency proof the node sent with its checkpoint must verify
as well).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from coordinator.audit.findings import Findings
from coordinator.checkpoints import RememberedCheckpoint, check_continuity, ledger_regression
from coordinator.client import NodeClient, UnreadableEntryError
from coordinator.errors import NodeCallError
from coordinator.ledger_resets import accepted_line, genesis_mismatch
from coordinator.partnership import NodeEntry
from kernel.messages import ConsistencyFromRemembered, PublishedCheckpoint
from privacy import tlog
from privacy.ledger.entry import LedgerEntry
from privacy.ledger.genesis import GenesisFormatError, LedgerReset, is_genesis, read_reset


def signed_checkpoint(
    checkpoint: PublishedCheckpoint,
    key: Ed25519PublicKey,
    entry: NodeEntry,
    findings: Findings,
) -> PublishedCheckpoint:
    """The node's latest checkpoint, which must be signed by its pinned ledger key."""
    if checkpoint.key_fingerprint not in ("", entry.ledger_key_fingerprint):
        findings.fail(
            f"the checkpoint says it was signed by key {checkpoint.key_fingerprint[:16]}..., "
            "not the pinned ledger key"
        )
    if not checkpoint.signed.verify(key):
        raise findings.stop(
            f"the latest checkpoint (size {checkpoint.size}) is not signed by the node's "
            "pinned ledger key: it was forged or altered"
        )
    return checkpoint


def fetch_entries(client: NodeClient, size: int, findings: Findings) -> list[LedgerEntry]:
    """Entries [0, size) in pages; each must parse and agree with its own leaf data."""
    entries: list[LedgerEntry] = []
    while len(entries) < size:
        try:
            page, _ = client.get_ledger(len(entries), size)
        except UnreadableEntryError as exc:
            raise findings.stop(f"entry {exc.seq}: {exc}") from exc
        if not page:
            raise findings.stop(
                f"the node signed a ledger of {size} entries but serves only {len(entries)}"
            )
        for item in page:
            index = len(entries)
            if item.seq != index:
                raise findings.stop(
                    f"entry {index} is missing: the node served entry {item.seq} in its place"
                )
            entries.append(item)
    return entries


def rewrite_message(
    client: NodeClient,
    tree: tlog.InMemoryTree,
    checkpoint: PublishedCheckpoint,
    entries: Sequence[LedgerEntry],
) -> str:
    """The finding for entries that do not hash to the signed root, naming the first
    changed entry where the node's consistency proofs allow."""
    size = checkpoint.size
    message = (
        f"the {size} ledger entries do not hash to the root the node signed at size {size}: "
        "entries were changed after they were recorded"
    )
    first = _first_changed_entry(client, tree, checkpoint)
    if first is None:
        return message
    changed = entries[first]
    return (
        f"{message}; the first changed entry is {first} (query_id {changed.query_id}, "
        f"dataset {changed.dataset}, analyst {changed.analyst})"
    )


def _first_changed_entry(
    client: NodeClient, tree: tlog.InMemoryTree, checkpoint: PublishedCheckpoint
) -> int | None:
    """Binary search with the node's consistency proofs for the smallest prefix whose
    recomputed root the signed tree does not extend; its last entry is the first change.

    Best effort: the proofs come from the node's stored tree, so a node that rewrote
    that too makes the named entry only a hint (the failure itself stands regardless).
    """
    size = checkpoint.size
    low, high = 1, size
    while low < high:
        middle = (low + high) // 2
        try:
            proof, _ = client.get_consistency_proof(middle, size)
        except NodeCallError:
            return None
        if tlog.verify_consistency(middle, size, tree.root(middle), checkpoint.root, proof):
            low = middle + 1
        else:
            high = middle
    return low - 1


def check_remembered(  # noqa: PLR0917 - the checks share all of these
    tree: tlog.InMemoryTree,
    checkpoint: PublishedCheckpoint,
    consistency: ConsistencyFromRemembered | None,
    remembered: RememberedCheckpoint,
    key: Ed25519PublicKey,
    findings: Findings,
) -> None:
    """Today's ledger must extend the checkpoint remembered from the last audit, and the
    node's `consistency` proof (sent with its checkpoint) must show it."""
    when = f"at the audit of {remembered.seen_at}"
    if not remembered.signed.verify(key):
        findings.warn(
            f"the checkpoint remembered {when} is not signed by the current ledger key "
            "(the key was replaced, or the remembered file was edited)"
        )
    if remembered.origin != checkpoint.signed.checkpoint.origin:
        findings.fail(
            f"the ledger's origin is now {checkpoint.signed.checkpoint.origin!r}, it was "
            f"{remembered.origin!r} {when}: the node started a new ledger"
        )
    known_prefix = 0 < remembered.size <= checkpoint.size
    regression = ledger_regression(
        remembered,
        size=checkpoint.size,
        root_at_remembered_size=tree.root(remembered.size) if known_prefix else None,
    )
    if regression == "shrank":
        findings.fail(
            f"the ledger shrank from {remembered.size} entries {when} to {checkpoint.size}: "
            "entries were removed (truncated or forked ledger)"
        )
        return
    if remembered.size == 0:
        return
    if regression == "forked":
        findings.fail(
            f"the first {remembered.size} entries differ from the ledger signed {when}: "
            "the ledger was rewritten or forked"
        )
        return
    untrusted = check_continuity(remembered.node, remembered, checkpoint, consistency, key)
    if untrusted is not None:
        findings.fail(untrusted.detail)


REFUSED = "--accept-reset refused, the remembered checkpoint is kept: {}"


def genesis_reset(entries: Sequence[LedgerEntry], findings: Findings) -> LedgerReset | None:
    """`--accept-reset`: the reset recorded by the new ledger's entry 0, which must be a
    genesis entry; None (a problem) when it is not."""
    if not entries or not is_genesis(entries[0]):
        findings.fail(
            REFUSED.format(
                "the ledger does not start with a genesis entry, so it was not reset by "
                "`npcs-node ledger reset`; audit it without --accept-reset"
            )
        )
        return None
    try:
        return read_reset(entries[0])
    except GenesisFormatError as exc:
        findings.fail(REFUSED.format(exc))
        return None


def check_accepted_reset(
    reset: LedgerReset,
    checkpoint: PublishedCheckpoint,
    remembered: RememberedCheckpoint,
    key: Ed25519PublicKey,
    findings: Findings,
) -> str | None:
    """`--accept-reset` without an archived ledger: the genesis entry must name exactly
    the `remembered` checkpoint. The record of the acceptance, or None (a problem) when
    it is refused."""
    mismatch = genesis_mismatch(remembered, reset.previous, key)
    if mismatch is not None:
        findings.fail(REFUSED.format(mismatch))
        return None
    return accepted_line(remembered, checkpoint.size, checkpoint.root)
