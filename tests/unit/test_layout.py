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
