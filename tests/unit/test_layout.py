"""The importable packages resolve inside this repository (PyPI has `node` and `coordinator`)."""

import importlib
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", ["node", "coordinator", "privacy", "npcs", "npcs.v1"])
def test_package_imports_from_this_repository(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(REPO)


def test_no_module_named_proto_is_importable_from_the_repository() -> None:
    """`proto` belongs to proto-plus; our wire package imports as `npcs`."""
    spec = importlib.util.find_spec("proto")
    assert spec is None or not Path(str(spec.origin)).resolve().is_relative_to(REPO)
