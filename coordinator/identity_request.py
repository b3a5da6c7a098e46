"""A person makes their own partnership identity: keys that never leave them, and a CSR.

`npcs identity init DIR --partnership P --role analyst --name alice` writes, in DIR,
the TLS key and Ed25519 request-signing key (both 0600), the signing key's public half
and `tls.csr`. The person sends the CSR and `signing.pub` to the CA operator, who runs
`npcs ca sign ... --signing-key signing.pub`; the certificate comes back as `tls.crt`
and the CA certificate as `ca.crt`, completing the folder `npcs` reads
(`coordinator.ca.CredentialPaths`). The CA never sees a private key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from coordinator.ca import CaError, CredentialPaths
from kernel.identity import Identity, Role
from kernel.keyfiles import (
    build_csr,
    generate_ed25519_key,
    generate_tls_key,
    private_key_pem,
    public_key_pem,
    refuse_existing,
    write_private_file,
    write_public_file,
)
from privacy.tlog import key_fingerprint

CSR_FILE = "tls.csr"


@dataclass(frozen=True)
class IdentityRequest:
    identity: Identity
    folder: CredentialPaths
    csr: Path
    signing_key_fingerprint: str


def init_person_identity(
    out_dir: Path, *, partnership: str, role: Role, name: str
) -> IdentityRequest:
    """Make a person's keys and CSR in `out_dir`; refuses to overwrite anything."""
    if role == "node":
        raise CaError("nodes make their keys with `npcs-node init`, not `npcs identity init`")
    identity = Identity(partnership=partnership, role=role, name=name)
    folder = CredentialPaths(out_dir)
    csr_path = out_dir / CSR_FILE
    refuse_existing([*folder.all(), csr_path])
    out_dir.mkdir(parents=True, exist_ok=True)
    tls_key = generate_tls_key()
    signing_key = generate_ed25519_key()
    write_private_file(folder.tls_key, private_key_pem(tls_key))
    write_private_file(folder.signing_key, private_key_pem(signing_key))
    write_public_file(folder.signing_public_key, public_key_pem(signing_key.public_key()))
    csr = build_csr(tls_key, identity)
    write_public_file(csr_path, csr.public_bytes(Encoding.PEM))
    return IdentityRequest(identity, folder, csr_path, key_fingerprint(signing_key.public_key()))
