"""Every ``--help`` shows examples: ``ftclient``, each of its subcommands, and ``ftserver``.

Walks the real parser, so a subcommand added later without examples fails here.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from ftclient.cli.main import build_parser


def subcommands() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("ftclient has no subcommands")


def example_lines(help_text: str, program: str) -> list[str]:
    """Command lines shown after an "example:" or "examples:" heading."""
    _, found, after = help_text.partition("example")
    assert found, help_text
    return [line for line in after.splitlines() if re.match(rf"\s+{program}\b", line)]


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_each_subcommand_help_has_an_example(name: str) -> None:
    help_text = subcommands()[name].format_help()
    assert any(f" {name}" in line for line in example_lines(help_text, "ftclient")), help_text


@pytest.mark.parametrize("program", ["ftclient", "ftserver"])
def test_top_level_help_has_examples(program: str) -> None:
    result = subprocess.run([sys.executable, "-m", program, "--help"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert len(example_lines(result.stdout, program)) >= 3, result.stdout


def test_client_help_mentions_the_office_features() -> None:
    help_text = build_parser().format_help()
    for needle in ("--limit-rate", "--profile", "discover"):
        assert needle in help_text
