"""deploy/npcs-node.service keeps the hardening the deploy guide promises."""

from __future__ import annotations

import configparser
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "npcs-node.service"


def _service() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep systemd's case
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return dict(parser["Service"])


def test_the_unit_runs_serve_as_its_own_user_with_the_file_system_locked_down() -> None:
    service = _service()
    assert service["User"] == "npcs"
    assert service["ExecStart"].split()[1:] == ["serve", "${NODE_DIR}"]
    assert service["ProtectSystem"] == "strict"
    # Only the node folder is writable, and it is the folder the node serves.
    assert service["ReadWritePaths"] == "/srv/npcs/county-a"
    assert "Environment=NODE_DIR=/srv/npcs/county-a\n" in UNIT.read_text(encoding="utf-8")
    for setting in ("PrivateTmp", "NoNewPrivileges"):
        assert service[setting] == "yes"
    assert service["Restart"] == "on-failure"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
