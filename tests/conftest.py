"""Shared test fixtures: the CLI with every command registered, and the paper's reference tables."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atrous_advisor.cli import load_commands

DATA = Path(__file__).parent / "data"


def read_reference(name: str) -> list[dict[str, str]]:
    """Rows of a CSV in tests/data, skipping its '#' comment header."""
    with open(DATA / name, newline="") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


@pytest.fixture(scope="session")
def app():
    return load_commands()


@pytest.fixture
def run_cli(app):
    """Invoke the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke
