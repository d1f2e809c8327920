"""The human rendering of an ``inspect`` report (``--json`` is the report itself)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from atrous_advisor.report import format as fmt
from atrous_advisor.report.inspect_models import InspectReport


def _fmt(value, unit: str = "") -> str:
    """A per-axis pair as every command writes it, to one decimal; ``global`` for an axis with no finite field."""
    return fmt.pair(value, unit, digits=1)


def render_inspect(report: InspectReport, console: Console, layers: bool = False) -> None:
    # one line however long the model's path: it is what people paste into an issue (the terminal wraps it)
    console.print(f"[bold]{report.model}[/bold] at crop {_fmt(report.crop)} "
                  f"(built on {report.device}, captured with {report.capture})", soft_wrap=True)
    # name the output when it is not the obvious one (a query-based model's masks, one of several)
    described = f" (output {report.output!r})" if report.output not in (None, "out", "logits") else ""
    if report.unknown:
        console.print(f"  [yellow]unknown[/yellow]{described}: {report.unknown}; no output stride or field is given")
        facts = []
    else:
        facts = [
            f"output stride {_fmt(report.output_stride)}" if report.output_stride else "output stride unknown",
            f"field at the output {_fmt(report.receptive_field, ' px')} (smallest path {_fmt(report.receptive_field_min, ' px')})"
            + described,
        ]
    if report.global_context:
        facts.append("global context")
    if report.gridding:
        facts.append("[red]gridding[/red]")
    if report.misaligned:
        facts.append("[yellow]misaligned paths[/yellow]")
    if facts:
        console.print("  " + " · ".join(facts))
    console.print(f"  cost: {fmt.si(report.params)} params, {fmt.si(report.macs)} MACs ({report.counter} counter): "
                  + ", ".join(f"{m.name} {fmt.si(m.macs)}" for m in report.cost_by_module))

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
                      f"r* = {fmt.pair(head.optimal_base_rate, digits=2) if head.optimal_base_rate else 'unknown'}")
        mark = "[green]ok[/green]" if head.ok else "[red]problem[/red]"
        console.print(f"  {mark}: {head.verdict}", soft_wrap=True)
        if head.fix:
            console.print(f"  [bold]fix[/bold]: {head.fix}", soft_wrap=True)  # a fix is pasted: never broken mid-expression
    for p in report.ppm:
        console.print(f"\n[bold]PPM[/bold] {p.name}: scales {tuple(p.scales)} on a {_fmt(p.feature_map)} map "
                      f"at stride {_fmt(p.stride)}")
        cells = ", ".join(f"{s}→{_fmt(tuple(round(c) for c in px), ' px')}" for s, px in zip(p.scales, p.cell_pixels))
        console.print(f"  cells: {cells}")
        mark = "[green]ok[/green]" if p.ok else "[red]problem[/red]"
        console.print(f"  {mark}: {p.verdict}", soft_wrap=True)
        if p.fix:
            console.print(f"  [bold]fix[/bold]: {p.fix}", soft_wrap=True)  # a fix is pasted: never broken mid-expression
    for f in report.fcn:
        mark = "[green]ok[/green]" if f.ok else "[red]problem[/red]"
        console.print(f"\n[bold]dilated FCN head[/bold] {f.name}: {mark}: {f.verdict}")
    for u in report.unassessed:
        what = {"aspp": f"ASPP rates {fmt.rates(u.rates)}", "ppm": f"PPM scales {fmt.ints(u.scales)}", "fcn": f"dilated FCN head rate {fmt.rates(u.rates)}"}[u.kind]
        console.print(f"\n[bold]{what}[/bold] {u.name}: no advice — {u.reason}")
    if not (report.aspp or report.ppm or report.fcn or report.unassessed):
        console.print("\nno ASPP, PPM or dilated FCN head found")

    if report.border_layer:
        n = len(report.unproductive_layers)
        console.print(f"\nborder layer (Size Matters): {report.border_layer} — its inputs already see more than "
                      f"the crop; {n} later layer{'' if n == 1 else 's'} likewise")
    elif report.unknown:
        console.print("\nborder layer (Size Matters): unknown — the output's field is unknown")
    else:
        console.print("\nno border layer: no layer's input field exceeds the crop")
    if report.unsupported_ops:
        console.print("\n[yellow]not followed[/yellow] (every field computed from these is unknown):")
        for kind, where in report.unsupported_ops.items():
            modules = ", ".join(sorted(where)[:3]) + (" …" if len(where) > 3 else "")
            why = report.unsupported_reasons.get(kind, "")
            why = "" if why in ("", "no handler") else f" — {why}"
            console.print(f"  {kind.split('.', 1)[-1]} ×{sum(where.values())} in {modules}{why}")
        console.print("  (a handler for your own op: atrous_advisor.graph.register_op_handler)")
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
