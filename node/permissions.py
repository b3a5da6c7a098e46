"""A node folder is for its operator only: folders 0700, confidential files 0600.

Snapshots, manifests, reject reports (raw values), the ledger (with its WAL and SHM) and
private keys are confidential. Every node command runs with umask 077
(`private_umask`), and the node's own writes pin their modes, so nothing it creates is
readable by others whatever the caller's umask. `serve` checks the whole folder at
start-up (`check_node_permissions`) and refuses to start, naming the files and the
chmod that fixes them. Certificates, CSRs and public keys (*.crt, *.csr, *.pub) are
public and may stay 0644: their folder is 0700 anyway.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kernel.files import PRIVATE_FILE_MODE
from node.errors import NodeSetupError

PRIVATE_DIR_MODE = 0o700
PUBLIC_SUFFIXES = frozenset({".crt", ".csr", ".pub"})
"""Files that may be readable by others (their folder still is not)."""
OTHERS = 0o077
SHOWN_PATHS = 10


class InsecurePermissionsError(NodeSetupError):
    """Some of the node's folders or confidential files are open to other users."""


def private_umask() -> None:
    """New files and folders of this process: owner only (files 0600, folders 0700)."""
    os.umask(OTHERS)


def make_private_dir(path: Path) -> None:
    """Create `path` and its missing parents as 0700; pin an existing `path` to 0700."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        folder.chmod(PRIVATE_DIR_MODE)
    path.chmod(PRIVATE_DIR_MODE)


def create_private_file(path: Path) -> None:
    """Create an empty 0600 `path` if it does not exist (e.g. before SQLite opens it,
    so the database and the WAL and SHM files SQLite gives its mode are private)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.fchmod(descriptor, PRIVATE_FILE_MODE)
    os.close(descriptor)


def insecure_paths(root: Path) -> list[tuple[Path, int]]:
    """Folders and confidential files under `root` (itself included) that other users
    may access, with their modes. Symbolic links are not followed."""
    found: list[tuple[Path, int]] = []
    for folder, subfolders, files in os.walk(root):
        base = Path(folder)
        mode = stat.S_IMODE(base.lstat().st_mode)
        if mode & OTHERS:
            found.append((base, mode))
        for name in files:
            path = base / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode) or path.suffix in PUBLIC_SUFFIXES:
                continue
            if stat.S_IMODE(info.st_mode) & OTHERS:
                found.append((path, stat.S_IMODE(info.st_mode)))
        subfolders.sort()
    return found


def check_node_permissions(root: Path) -> None:
    """Raise InsecurePermissionsError, naming the paths and the fix, unless only the
    owner can open the node's folders and confidential files."""
    found = insecure_paths(root)
    if not found:
        return
    shown = "; ".join(f"{path} is {mode:04o}" for path, mode in found[:SHOWN_PATHS])
    more = f" and {len(found) - SHOWN_PATHS} more" if len(found) > SHOWN_PATHS else ""
    raise InsecurePermissionsError(
        f"the node folder holds confidential data, but other users can open some of it: "
        f"{shown}{more}. Folders must be 0700 and files 0600: run "
        f"`chmod -R go-rwx {root}`, then start the node again."
    )
