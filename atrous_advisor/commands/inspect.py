"""`atrous-advisor inspect`: what a real model does at a crop — fields, heads, cost — from its traced graph.

torch is imported inside the command: ``rate``, ``ppm`` and ``lint`` must keep working without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from atrous_advisor.commands._common import emit_json, stdout, warn
from atrous_advisor.errors import InputError
from atrous_advisor.numbers import load_json, parse_pair, shown
from atrous_advisor.report.inspect import render_inspect


def parse_kwargs(text: Optional[str]) -> dict:
    """``--kwargs '{"weights": null}'`` → dict, or a one-line error naming the bad JSON."""
    if text is None or not text.strip():
        return {}
    try:
        value = load_json(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--kwargs {shown(text, 40)}: invalid JSON: {exc.msg} at position {exc.pos}") from None
    except ValueError as exc:  # an integer past the cap, nesting past Python's stack
        raise InputError(f"--kwargs {shown(text, 40)}: {exc}") from None
    if not isinstance(value, dict):
        raise InputError(f"--kwargs {shown(text, 40)}: expected a JSON object such as '{{\"num_classes\": 19}}'")
    return value


def inspect(
    model: str = typer.Argument(..., metavar="MODEL", help="path/file.py, path/file.py:name or package.module:callable."),
    crop: str = typer.Option(..., "--crop", "-c", metavar="CROP", help="Input size: 512, 512x1024 (H×W) or 512,1024."),
    kwargs: Optional[str] = typer.Option(None, "--kwargs", metavar="JSON", help='Arguments for the callable, e.g. \'{"weights": null}\'.'),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    layers: bool = typer.Option(False, "--layers", help="Show the per-layer field table."),
    field_map: Optional[Path] = typer.Option(None, "--field-map", metavar="PNG", help="Draw the centre output's analytic field."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing --field-map file."),
    counter: str = typer.Option("fast", "--counter", metavar="fast|fvcore", help="MAC counter: FlopCounterMode on meta (fast) or fvcore on CPU."),
    capture: str = typer.Option("dispatch", "--capture", metavar="dispatch|export", help="Graph capture: dispatch tracing of one meta forward (default), or torch.export (falls back to dispatch tracing)."),
) -> int:
    """Receptive fields, ASPP/PPM heads and cost of a PyTorch model at a crop, from its traced graph."""
    crop_pair = parse_pair(crop, "--crop")
    options = parse_kwargs(kwargs)
    if counter not in ("fast", "fvcore"):
        raise InputError(f"--counter {counter!r}: expected fast or fvcore")
    if capture not in ("export", "dispatch"):
        raise InputError(f"--capture {capture!r}: expected export or dispatch")
    from atrous_advisor.graph.loading import _torch

    _torch()  # a clear MissingExtraError before anything else when torch is absent
    from atrous_advisor.graph.inspection import inspect_model

    report = inspect_model(model, crop_pair, options, counter=counter, layers=True, field_map=field_map, prefer=capture,
                           force=force)
    if json_out:
        emit_json(report)
    else:
        render_inspect(report, stdout, layers=layers)
        stdout.file.flush()
        shown = {f"{h.name}: {h.verdict}" for h in report.aspp} | {f"{p.name}: {p.verdict}" for p in report.ppm}
        for message in report.warnings:
            if message not in shown:  # head verdicts are already in the summary
                warn(message)
    return 0


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
