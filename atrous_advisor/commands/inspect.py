"""`atrous-advisor inspect`: what a real model does at a crop — fields, heads, cost — from its traced graph.

torch is imported inside the command: ``rate``, ``ppm`` and ``lint`` must keep working without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from atrous_advisor.commands._common import emit_json, stdout, warn
from atrous_advisor.errors import InputError
from atrous_advisor.numbers import load_json, parse_pair, shown
from atrous_advisor.report.inspect_models import InspectReport


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


def _fmt(value, unit: str = "") -> str:
    h, w = value
    if h is None and w is None:
        return "global"
    f = lambda v: "global" if v is None else f"{round(v, 1):g}"  # noqa: E731
    return (f(h) if h == w else f"{f(h)}×{f(w)}") + unit


def _si(n: int) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return str(n)


def render_inspect(report: InspectReport, console: Console, layers: bool = False) -> None:
    console.print(f"[bold]{report.model}[/bold] at crop {_fmt(report.crop)} "
                  f"(built on {report.device}, captured with {report.capture})")
    facts = [
        f"output stride {_fmt(report.output_stride)}",
        f"field at the output {_fmt(report.receptive_field, ' px')} (smallest path {_fmt(report.receptive_field_min, ' px')})",
    ]
    if report.global_context:
        facts.append("global context")
    if report.gridding:
        facts.append("[red]gridding[/red]")
    if report.misaligned:
        facts.append("[yellow]misaligned paths[/yellow]")
    console.print("  " + " · ".join(facts))
    console.print(f"  cost: {_si(report.params)} params, {_si(report.macs)} MACs ({report.counter} counter): "
                  + ", ".join(f"{m.name} {_si(m.macs)}" for m in report.cost_by_module))

    for head in report.aspp:
        pool = " + image pooling" if head.image_pool else ""
        console.print(f"\n[bold]ASPP[/bold] {head.name}{pool}: {len(head.rates)} dilated branches on a "
                      f"{_fmt(head.feature_map)} map at stride {_fmt(head.stride)}")
        table = Table(box=None, pad_edge=False)
        for col in ("branch", "rate", "extent", "coverage", "padding", "degenerate"):
            table.add_column(col, justify="left" if col == "branch" else "right")
        for i, module in enumerate(head.branch_modules):
            table.add_row(
                module, _fmt(head.rates[i]), _fmt(head.kernel_extent[i]),
                _fmt(tuple(round(c * 100) for c in head.coverage[i]), "%"),
                f"{head.padding_fraction[i]:.0%}", "[red]yes[/red]" if head.degenerate[i] else "no",
            )
        console.print(table)
        console.print(f"  FOV {_fmt(head.fov, ' px')} = {_fmt(tuple(round(r, 2) for r in head.fov_ratio))}× the crop; "
                      f"analytic field at the head {_fmt(head.head_field, ' px')}; "
                      f"r* = {_fmt(tuple(round(r, 2) for r in head.optimal_base_rate))}")
        mark = "[green]ok[/green]" if head.ok else "[red]problem[/red]"
        console.print(f"  {mark}: {head.verdict}")
        if head.fix:
            console.print(f"  [bold]fix[/bold]: {head.fix}")
    for p in report.ppm:
        console.print(f"\n[bold]PPM[/bold] {p.name}: scales {tuple(p.scales)} on a {_fmt(p.feature_map)} map "
                      f"at stride {_fmt(p.stride)}")
        cells = ", ".join(f"{s}→{_fmt(tuple(round(c) for c in px), ' px')}" for s, px in zip(p.scales, p.cell_pixels))
        console.print(f"  cells: {cells}")
        mark = "[green]ok[/green]" if p.ok else "[red]problem[/red]"
        console.print(f"  {mark}: {p.verdict}")
        if p.fix:
            console.print(f"  [bold]fix[/bold]: {p.fix}")
    for f in report.fcn:
        mark = "[green]ok[/green]" if f.ok else "[red]problem[/red]"
        console.print(f"\n[bold]dilated FCN head[/bold] {f.name}: {mark}: {f.verdict}")
    if not (report.aspp or report.ppm or report.fcn):
        console.print("\nno ASPP, PPM or dilated FCN head found")

    if report.border_layer:
        n = len(report.unproductive_layers)
        console.print(f"\nborder layer (Size Matters): {report.border_layer} — its inputs already see more than "
                      f"the crop; {n} later layer{'' if n == 1 else 's'} likewise")
    else:
        console.print("\nno border layer: no layer's input field exceeds the crop")
    if report.field_map:
        console.print(f"field map written to {report.field_map}")
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")

    if layers:
        table = Table(title="per-layer fields", box=None, pad_edge=False)
        for col in ("layer", "op", "map", "rf max", "rf min", "jump", "flags"):
            table.add_column(col, justify="left" if col in ("layer", "op", "flags") else "right")
        for row in report.layers:
            flags = [name for name, pair in (("global", row.global_context), ("holes", row.holes), ("misaligned", row.misaligned)) if any(pair)]
            table.add_row(row.name or "<root>", row.op, _fmt(row.feature_map), _fmt(row.rf_max), _fmt(row.rf_min),
                          _fmt(row.jump), " ".join(flags))
        console.print(table)


def inspect(
    model: str = typer.Argument(..., metavar="MODEL", help="path/file.py, path/file.py:name or package.module:callable."),
    crop: str = typer.Option(..., "--crop", "-c", metavar="CROP", help="Input size: 512, 512x1024 (H×W) or 512,1024."),
    kwargs: Optional[str] = typer.Option(None, "--kwargs", metavar="JSON", help='Arguments for the callable, e.g. \'{"weights": null}\'.'),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    layers: bool = typer.Option(False, "--layers", help="Show the per-layer field table."),
    field_map: Optional[Path] = typer.Option(None, "--field-map", metavar="PNG", help="Draw the centre output's analytic field."),
    counter: str = typer.Option("fast", "--counter", metavar="fast|fvcore", help="MAC counter: FlopCounterMode on meta (fast) or fvcore on CPU."),
    capture: str = typer.Option("export", "--capture", metavar="export|dispatch", help="Graph capture: torch.export (falls back to dispatch tracing) or dispatch tracing only."),
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

    report = inspect_model(model, crop_pair, options, counter=counter, layers=True, field_map=field_map, prefer=capture)
    if json_out:
        emit_json(report)
    else:
        render_inspect(report, stdout, layers=layers)
        stdout.file.flush()
        shown = {f"{h.name}: {h.verdict}" for h in [*report.aspp, *report.ppm]}
        for message in report.warnings:
            if message not in shown:  # head verdicts are already in the summary
                warn(message)
    return 0


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
