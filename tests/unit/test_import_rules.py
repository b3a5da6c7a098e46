"""The layers' import rules, read from the repository's own source with `ast`.

privacy <- kernel <- npcs (wire) <- node | coordinator: imports run one way. Every
import counts, also one deferred into a function or kept for type checking only, since
each is a dependency of the module all the same. A runtime check then imports every
coordinator module in a fresh interpreter and looks for the node's data stack.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

GRPC = ("grpc", "grpc_health", "grpc_reflection")
PROTOBUF = ("google.protobuf",)
NODE_DATA_STACK = ("polars", "opendp", "numpy", "pyarrow")
CLI_AND_TERMINAL = ("click", "rich")

# Folders of each importable package (the wire package `npcs` lives in proto/npcs).
PACKAGE_FOLDERS = {
    "privacy": REPO / "privacy",
    "kernel": REPO / "kernel",
    "npcs": REPO / "proto" / "npcs",
    "node": REPO / "node",
    "coordinator": REPO / "coordinator",
}
# Service-layer exceptions: command lines, the demo, and modules that exist to render.
NOT_SERVICE_MODULES = ("node/cli/", "coordinator/cli/", "coordinator/demo/")
RENDERING_MODULES = ("coordinator/charts.py",)


@dataclass(frozen=True)
class SourceModule:
    name: str  # dotted import name, e.g. coordinator.cli.query
    path: Path

    @property
    def relative(self) -> str:
        return self.path.relative_to(REPO).as_posix()


def _is_generated(path: Path) -> bool:
    return "_pb2" in path.name


def modules_of(package: str) -> list[SourceModule]:
    """Every hand-written module of `package` (generated protobuf stubs excluded)."""
    root = PACKAGE_FOLDERS[package]
    found = []
    for path in sorted(root.rglob("*.py")):
        if _is_generated(path):
            continue
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found.append(SourceModule(".".join(parts), path))
    return found


def imported_names(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `source` imports, anywhere in the file, as absolute dotted names.

    `from a import b` yields both `a` and `a.b` (b may be a submodule); relative imports
    are resolved against `module`.
    """
    names: set[str] = set()
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                kept = len(package_parts) - (node.level - 1)
                base = ".".join([*package_parts[:kept], *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _matches(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)


def violations(modules: list[SourceModule], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for module in modules:
        source = module.path.read_text(encoding="utf-8")
        is_package = module.path.name == "__init__.py"
        names = imported_names(source, module.name, is_package=is_package)
        bad = sorted(name for name in names if _matches(name, forbidden))
        # `from rich.console import Console` is one import of rich.console, not two.
        found += [
            f"{module.relative} imports {name}"
            for name in bad
            if not any(name.startswith(other + ".") for other in bad)
        ]
    return found


def service_modules() -> list[SourceModule]:
    """node/ and coordinator/ outside their cli/ subpackages, the demo and renderers."""
    return [
        module
        for package in ("node", "coordinator")
        for module in modules_of(package)
        if not module.relative.startswith(NOT_SERVICE_MODULES)
        and module.relative not in RENDERING_MODULES
    ]


@dataclass(frozen=True)
class Rule:
    name: str
    why: str
    modules: list[SourceModule]
    forbidden: tuple[str, ...]


def rules() -> Iterator[Rule]:
    yield Rule(
        "privacy",
        "privacy is the pure domain: no gRPC, no command line, nothing above it",
        modules_of("privacy"),
        (*GRPC, *PROTOBUF, *CLI_AND_TERMINAL, "kernel", "npcs", "node", "coordinator"),
    )
    yield Rule(
        "kernel",
        "kernel is protobuf-free and knows neither the wire nor either side",
        modules_of("kernel"),
        (*PROTOBUF, *GRPC, "npcs", "node", "coordinator"),
    )
    yield Rule(
        "npcs",
        "the wire package npcs knows neither side",
        modules_of("npcs"),
        ("node", "coordinator"),
    )
    yield Rule(
        "coordinator",
        "the coordinator never imports the node's data stack, nor node code",
        modules_of("coordinator"),
        (*NODE_DATA_STACK, "node"),
    )
    yield Rule(
        "node", "the node never imports coordinator code", modules_of("node"), ("coordinator",)
    )
    yield Rule(
        "services",
        "service modules neither use click nor print with rich",
        service_modules(),
        CLI_AND_TERMINAL,
    )


RULES = {rule.name: rule for rule in rules()}


@pytest.mark.parametrize("rule_name", list(RULES))
def test_import_rule(rule_name: str) -> None:
    rule = RULES[rule_name]
    assert rule.modules, f"no modules found for rule {rule_name!r}"
    found = violations(rule.modules, rule.forbidden)
    assert found == [], f"{rule.why}, but:\n" + "\n".join(found)


def test_the_reader_sees_deferred_type_checking_and_relative_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from rich.console import Console\n"
        "def draw():\n    import polars as pl\n"
        "from . import sibling\n"
        "from ..kernel import files\n"
        "from google import protobuf\n"
    )
    names = imported_names(source, "coordinator.sub.module")
    assert {"rich.console", "polars", "coordinator.sub.sibling", "coordinator.kernel.files"} <= (
        names
    )
    assert _matches("google.protobuf", PROTOBUF)
    assert not _matches("grpcio_tools", GRPC)


def test_service_modules_exclude_command_lines_the_demo_and_renderers() -> None:
    relative = {module.relative for module in service_modules()}
    assert "coordinator/querying.py" in relative
    assert "node/engine.py" in relative
    assert not {path for path in relative if path.startswith(NOT_SERVICE_MODULES)}
    assert not relative & set(RENDERING_MODULES)


_IMPORT_EVERY_COORDINATOR_MODULE = """
import importlib, json, pkgutil, sys
import coordinator
for info in pkgutil.walk_packages(coordinator.__path__, "coordinator."):
    importlib.import_module(info.name)
print(json.dumps(sorted(name for name in {stack!r} if name in sys.modules)))
"""


def test_importing_every_coordinator_module_loads_no_node_data_stack() -> None:
    """At run time too: what the coordinator's modules pull in through privacy and kernel."""
    code = _IMPORT_EVERY_COORDINATOR_MODULE.format(stack=NODE_DATA_STACK)
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == []
