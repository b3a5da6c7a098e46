"""The README's two commands are the ones CI and users run."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_readme_has_exactly_the_demo_and_the_test_command() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("npcs demo")
    assert commands[0].startswith('pip install ".[demo]"'), "the demo needs the demo extra"
    assert "pytest" in commands[1]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    match = re.search(r"^README_TEST_COMMAND='(.+)'$", ci, re.MULTILINE)
    assert match is not None
    assert match.group(1) == _readme_commands()[1]
