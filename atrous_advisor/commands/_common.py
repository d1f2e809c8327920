"""Helpers shared by the command modules: consoles and JSON output."""

from __future__ import annotations

import sys

from pydantic import BaseModel
from rich.console import Console

stdout = Console(highlight=False, soft_wrap=False)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # a warning is one line, however long


def emit_json(result: BaseModel) -> None:
    """Print a result model as JSON on stdout (plain, no rich markup)."""
    sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/yellow] {message}")
