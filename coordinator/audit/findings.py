"""What the checks of one node collect: problems (each fails the node) and warnings."""

from __future__ import annotations

from dataclasses import dataclass, field


class StopAudit(Exception):  # noqa: N818 - control flow: nothing further can be checked
    """A finding that makes the remaining checks meaningless."""


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def stop(self, message: str) -> StopAudit:
        """Record a problem; raise the result to skip the checks that depend on it."""
        self.problems.append(message)
        return StopAudit(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
