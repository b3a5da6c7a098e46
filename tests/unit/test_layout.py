"""The importable packages resolve inside this repository (PyPI has `node` and `coordinator`)."""

import importlib
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", ["privacy", "kernel", "npcs", "npcs.v1", "node", "coordinator"])
def test_package_imports_from_this_repository(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(REPO)


def test_repository_defines_no_module_named_proto() -> None:
    """`proto` belongs to proto-plus; our wire package imports as `npcs`.

    The `proto/` folder holds no `__init__.py`, so at most it is seen as a namespace
    package, which never shadows a real `proto` package installed elsewhere.
    """
    assert not (REPO / "proto" / "__init__.py").exists()
    assert not (REPO / "proto.py").exists()
    spec = importlib.util.find_spec("proto")
    if spec is not None and spec.origin is not None:
        assert not Path(spec.origin).resolve().is_relative_to(REPO)


MODULE_LINE_LIMIT = 400
LONGER_BY_DESIGN = {"privacy/plan.py", "privacy/validate.py", "privacy/schema.py", "node/synth.py"}
"""Each states at its top why it is one module (one OpenDP plan, one validator, one
schema, one generator)."""


def test_production_modules_stay_within_the_line_limit() -> None:
    packages = ("privacy", "kernel", "proto/npcs", "node", "coordinator")
    too_long = {
        str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines())
        for package in packages
        for path in (REPO / package).rglob("*.py")
        if not path.name.endswith(("_pb2.py", "_pb2_grpc.py"))
    }
    too_long = {
        name: lines
        for name, lines in too_long.items()
        if lines > MODULE_LINE_LIMIT and name not in LONGER_BY_DESIGN
    }
    assert too_long == {}, f"split these modules (at most {MODULE_LINE_LIMIT} lines): {too_long}"
