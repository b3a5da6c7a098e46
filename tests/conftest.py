"""Fixtures shared across test folders: a node with data and a running node server.

Helpers live in tests/support_node.py (import it as `support_node`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support_node import NodeWorld, make_node_world

from node.server import RunningNode, running_node


@pytest.fixture(scope="session")
def node_world(tmp_path_factory: pytest.TempPathFactory) -> NodeWorld:
    """CA, node county-a with synthetic incidents data, and every kind of caller."""
    return make_node_world(tmp_path_factory.mktemp("node-world"))


@pytest.fixture(scope="module")
def node_server(node_world: NodeWorld) -> Iterator[RunningNode]:
    """node_world's node serving on 127.0.0.1, port 0; stopped after the module."""
    with running_node(node_world.node.root) as node:
        yield node
