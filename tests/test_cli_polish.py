"""The CLI's surface: --version, one --help style, thread defaults, no silent overwrite, unwrapped snippets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import atrous_advisor
from atrous_advisor.cli import COMMAND_MODULES
from atrous_advisor.runtime import available_cores, default_cpu_threads

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_version(run_cli):
    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"atrous-advisor {atrous_advisor.__version__}"


@pytest.mark.parametrize("command", [None, *COMMAND_MODULES])
def test_help_has_one_placeholder_style(run_cli, command):
    """No typer type placeholders (<bool> on flags, <str>, <list[Path]>): values are UPPERCASE names."""
    result = run_cli(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    assert not re.search(r"<(bool|str|int|float|path|list)", result.stdout), result.stdout


@pytest.mark.parametrize("command", ["validate", "erf"])
def test_thread_count_is_an_option_with_its_reason(run_cli, command):
    result = run_cli(command, "--help")
    text = " ".join(result.stdout.replace("│", " ").split())  # help text re-joined across the box lines
    assert "--threads" in text and "load average" in text


def test_default_threads_leave_busy_cores_alone():
    threads = default_cpu_threads()
    assert 1 <= threads <= available_cores()
    assert default_cpu_threads(processes=available_cores() * 4) == 1  # shared among torchrun processes, at least 1


def test_rate_snippets_are_never_wrapped():
    """At 40 columns the paste lines are still one line each (a wrapped line pastes as two)."""
    out = subprocess.run(
        [sys.executable, "-m", "atrous_advisor", "rate", "--crop", "512x1024", "--stride", "8"],
        capture_output=True, text=True, env={**__import__("os").environ, "COLUMNS": "40"}, check=True,
    ).stdout
    lines = out.splitlines()
    assert "DeepLabHead(in_channels, num_classes, atrous_rates=(14, 28, 42))" in lines
    assert "Conv2d(..., dilation=d, padding=d) with d in (10, 21), (20, 42), (30, 63)" in lines
    assert any(line.startswith("Retune:") and line.endswith("(r* = 10×20.67).") for line in lines)


def test_inspect_field_map_is_not_overwritten_without_force(run_cli, tmp_path):
    pytest.importorskip("torch")
    target = tmp_path / "field.png"
    target.write_bytes(b"the user's picture")
    result = run_cli("inspect", str(EXAMPLES / "tiny_aspp.py"), "--crop", "64", "--field-map", str(target))
    assert result.exit_code == 2 and "--force" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert target.read_bytes() == b"the user's picture"
    result = run_cli("inspect", str(EXAMPLES / "tiny_aspp.py"), "--crop", "64", "--field-map", str(target), "--force")
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*"))  # written through a temp file that is gone


def test_inspect_fix_is_one_line_at_any_width():
    pytest.importorskip("torch")
    out = subprocess.run(
        [sys.executable, "-m", "atrous_advisor", "inspect", str(EXAMPLES / "tiny_aspp.py"), "--crop", "128"],
        capture_output=True, text=True, env={**__import__("os").environ, "COLUMNS": "60"}, check=True,
    ).stdout
    fix = [line for line in out.splitlines() if line.strip().startswith("fix:")]
    assert fix and fix[0].rstrip().endswith("aspp.branches.3.0: dilation=padding=6"), out
