"""Accepting a node's new ledger on purpose, after a recorded `npcs-node ledger reset`.

Both ways replace the one checkpoint remembered for the node, and say which one, so the
person who did it has a record: `npcs nodes --forget-checkpoint NODE` (an analyst, who
trusts the auditor's word) simply forgets it; `npcs audit --accept-reset NODE` (the
auditor) first requires the new ledger's genesis entry to name exactly the remembered
checkpoint (`genesis_mismatch`), signed by the node's pinned ledger key, or, with
`--archived-ledger FILE`, the archived ledger to bridge the two
(`coordinator.audit.archive_checks`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from coordinator.errors import InvalidArgumentError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from coordinator.checkpoints import RememberedCheckpoint
    from coordinator.partnership import Partnership
    from privacy.tlog import SignedCheckpoint


def require_partnership_nodes(
    partnership: Partnership, names: Collection[str], *, option: str
) -> None:
    """Refuse (nothing changed) a NODE of `option` that is not in the partnership."""
    known = {entry.name for entry in partnership.nodes}
    for name in names:
        if name not in known:
            raise InvalidArgumentError(
                f"{option} {name}: {name!r} is not a node of partnership "
                f"{partnership.name!r}; known nodes: {', '.join(sorted(known)) or 'none'}"
            )


def described(checkpoint: RememberedCheckpoint) -> str:
    """The remembered checkpoint as a record names it: size, full root, when seen."""
    return (
        f"checkpoint of {checkpoint.size} entries (origin {checkpoint.origin!r}, root "
        f"{checkpoint.root.hex()}, seen {checkpoint.seen_at})"
    )


def forgotten_line(node: str, forgotten: RememberedCheckpoint | None) -> str:
    """What `--forget-checkpoint` tells its user."""
    if forgotten is None:
        return f"no checkpoint was remembered for node {node}"
    return (
        f"forgot node {node}'s {described(forgotten)}: keep this line as your record; "
        "its current ledger is remembered as new"
    )


def accepted_line(
    replaced: RememberedCheckpoint, size: int, root: bytes, *, archive: str | None = None
) -> str:
    """What `--accept-reset` records in the audit report (and prints); `archive` says how
    the archived ledger bridged the remembered checkpoint and the one the genesis names."""
    how = "is named by this ledger's genesis entry"
    if archive is not None:
        how = f"is extended by {archive}"
    return (
        f"ledger reset accepted: the remembered {described(replaced)} {how} and is "
        f"replaced by this ledger's checkpoint of {size} entries (root {root.hex()}); "
        "keep this line as your record"
    )


def genesis_mismatch(
    remembered: RememberedCheckpoint, previous: SignedCheckpoint, key: Ed25519PublicKey
) -> str | None:
    """Why a genesis entry naming `previous` does not close the remembered ledger (None
    when it names exactly the remembered checkpoint, signed by the pinned `key`)."""
    named = previous.checkpoint
    if (named.origin, named.size, named.root) != (
        remembered.origin,
        remembered.size,
        remembered.root,
    ):
        return (
            f"its genesis entry names a checkpoint of {named.size} entries (origin "
            f"{named.origin!r}, root {named.root.hex()}), not the remembered "
            f"{described(remembered)}: entries may have been recorded after your last audit "
            "or lost. Ask the operator for a copy of the archived ledger (the file in the "
            "node's ledger/archive/ folder the reset named) and pass it with "
            "--archived-ledger FILE, so the audit checks that it bridges the two"
        )
    if not previous.verify(key):
        return (
            "its genesis entry names the remembered checkpoint with a signature that does "
            "not verify with the node's pinned ledger key: it was forged or altered"
        )
    return None
