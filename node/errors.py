"""Errors about the node folder that its operator can fix; the CLI shows them without a trace."""

from __future__ import annotations


class NodeSetupError(Exception):
    """A problem with the node's folder or settings; the message says what to do."""
