"""Install extras: pyproject.toml and kernel.extras agree, and a missing extra is a clear
one-line error naming the install command, never a traceback."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordinator.cli import cli
from kernel.extras import (
    DISTRIBUTION,
    EXTRA_MODULES,
    MissingExtraError,
    missing_modules,
    require_extra,
)

REPO = Path(__file__).resolve().parents[2]
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\[([^\]]*)\])?")


def _project() -> dict[str, object]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert isinstance(project, dict)
    return project


def _distributions(requirements: list[str], extras: dict[str, list[str]]) -> set[str]:
    """Distribution names `requirements` install, following `npcs-federation[...]`."""
    names: set[str] = set()
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        assert match is not None, requirement
        name, wanted = match.group(1).lower(), match.group(2)
        if name == DISTRIBUTION:
            for extra in (wanted or "").split(","):
                names |= _distributions(extras[extra.strip()], extras)
        else:
            names.add(name)
    return names


def _module_name(distribution: str) -> str:
    return distribution.replace("-", "_")


@pytest.mark.parametrize("extra", sorted(EXTRA_MODULES))
def test_each_extra_provides_exactly_the_modules_kernel_extras_checks(extra: str) -> None:
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    provided = {_module_name(name) for name in _distributions(extras[extra], extras)}
    assert provided == set(EXTRA_MODULES[extra])


def test_the_base_install_has_none_of_the_node_or_chart_packages() -> None:
    base = _project()["dependencies"]
    assert isinstance(base, list)
    heavy = {module for modules in EXTRA_MODULES.values() for module in modules}
    assert {_module_name(name) for name in _distributions(base, {})} & heavy == set()


def test_the_dev_extra_installs_everything_the_tests_import() -> None:
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    dev = {_module_name(name) for name in _distributions(extras["dev"], extras)}
    assert set(EXTRA_MODULES["demo"]) <= dev


def test_a_missing_module_is_named_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert missing_modules("node") == ()
    # A None entry in sys.modules is how Python spells "this module cannot be imported".
    monkeypatch.setitem(sys.modules, "polars", None)
    assert missing_modules("node") == ("polars",)
    with pytest.raises(MissingExtraError) as raised:
        require_extra("node", needed_by="serving")
    message = str(raised.value)
    assert message.startswith("serving needs polars")
    assert 'pip install "npcs-federation[node]"' in message
    assert 'pip install ".[node]"' in message


@pytest.mark.parametrize("hidden", ["opendp", "matplotlib"])
def test_npcs_demo_without_its_extra_says_what_to_install_and_creates_nothing(
    hidden: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, hidden, None)
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(workdir)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"needs {hidden}" in result.stderr
    assert 'pip install "npcs-federation[demo]"' in result.stderr
    assert "Traceback" not in result.output
    assert not workdir.exists()


def test_npcs_node_data_commands_without_the_node_extra_name_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from node.cli import cli as node_cli

    monkeypatch.setitem(sys.modules, "polars", None)
    result = CliRunner().invoke(node_cli, ["status", str(tmp_path)])
    assert result.exit_code == 1
    assert "`npcs-node status` needs polars" in result.stderr
    assert 'pip install "npcs-federation[node]"' in result.stderr
    assert "Traceback" not in result.output
    # Key and certificate handling needs no node extra.
    init = CliRunner().invoke(
        node_cli, ["init", str(tmp_path / "n"), "--name", "a", "--partnership", "p"]
    )
    assert init.exit_code == 0, init.output


def test_the_health_probe_needs_no_node_extra() -> None:
    from node.cli import NEEDS_NODE_EXTRA

    assert "health" not in NEEDS_NODE_EXTRA
    assert {"serve", "ingest", "status"} <= NEEDS_NODE_EXTRA


def test_npcs_query_plot_without_matplotlib_fails_before_any_node_is_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    missing_config = tmp_path / "no-partnership.toml"
    result = CliRunner().invoke(
        cli,
        [
            "query", "count", "incidents", "--rho", "0.01", "--purpose", "trend",
            "--plot", str(tmp_path / "trend.png"), "--config", str(missing_config),
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "`npcs query --plot` needs matplotlib" in result.stderr
    assert "nothing was asked of any node" in result.stderr
    # The refusal comes before the partnership is even opened (the config does not exist).
    assert "no-partnership.toml" not in result.output
    assert not (tmp_path / "trend.png").exists()
