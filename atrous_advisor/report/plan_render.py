"""Rich rendering of a ``PlanReport``: one table of candidates with the recommendation marked, then the answer."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from atrous_advisor.advice import fmt_pair, fmt_rates
from atrous_advisor.plan.budget import ALLOCATOR_MARGIN, CONTEXT_RESERVE, fmt_bytes
from atrous_advisor.report.plan_models import PlanCandidate, PlanReport


def _rates(c: PlanCandidate) -> str:
    if c.suggested_rates is not None:
        return fmt_rates(c.suggested_rates)
    if c.suggested_scales is not None:
        return "scales " + str(tuple(c.suggested_scales))
    return "—"


def _r_star(c: PlanCandidate) -> str:
    return fmt_pair(tuple(round(r, 2) for r in c.optimal_base_rate)) if c.optimal_base_rate else "—"


def render_plan(report: PlanReport, console: Console) -> None:
    console.print(
        f"[bold]{report.model}[/bold] · batch {report.batch} · {report.precision} · budget "
        f"{fmt_bytes(report.memory_budget_bytes)} → {fmt_bytes(report.usable_bytes)} for tensors "
        f"(minus {fmt_bytes(CONTEXT_RESERVE)} CUDA context, {ALLOCATOR_MARGIN:.0%} allocator margin)"
    )
    console.print(f"  head: {report.head}")
    table = Table(show_header=True, header_style="bold", pad_edge=False, box=box.SIMPLE_HEAD)
    for name, justify in (("", "left"), ("crop", "right"), ("stride", "right"), ("peak", "right"),
                          ("act.", "right"), ("fits", "center"), ("F", "right"), ("r*", "right"),
                          ("rates", "left"), ("MACs", "right")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for c in report.candidates:
        chosen = c is report.recommended
        whole = report.image is not None and tuple(c.crop) == tuple(report.image)
        table.add_row(
            "→" if chosen else "",
            fmt_pair(c.crop) + (" (image)" if whole else ""),
            str(c.output_stride) if c.output_stride else "?",
            fmt_bytes(c.peak_bytes),
            fmt_bytes(c.breakdown.activations),
            "[green]yes[/green]" if c.fits else "[red]no[/red]",
            fmt_pair(c.feature_map) if c.feature_map else "—",
            _r_star(c),
            _rates(c),
            f"{c.macs / 1e9:.1f} G",
            style="bold" if chosen else "",
        )
    console.print(table)
    best = report.recommended
    if best is None:
        smallest = min(report.candidates, key=lambda c: c.peak_bytes)
        console.print(Text(
            f"Nothing fits: the smallest candidate ({fmt_pair(smallest.crop)}) needs {fmt_bytes(smallest.peak_bytes)} "
            f"at batch {report.batch}; lower the batch, use bf16/fp16, or plan smaller crops.", style="bold yellow"))
    else:
        b = best.breakdown
        stride = f"output stride {best.output_stride}" if best.output_stride else "output stride unknown"
        console.print(Text(
            f"Train at {fmt_pair(best.crop)} px, {stride}: peak {fmt_bytes(best.peak_bytes)} "
            f"(parameters {fmt_bytes(b.parameters)}, gradients {fmt_bytes(b.gradients)}, optimizer {fmt_bytes(b.optimizer)}, "
            f"activations {fmt_bytes(b.activations)}, temporary {fmt_bytes(b.temporary)}).", style="bold green"))
        if best.suggested_rates is not None:
            console.print(f"  feature map {fmt_pair(best.feature_map)}, r* = {_r_star(best)} → rates {_rates(best)}")
        elif best.suggested_scales is not None:
            console.print(f"  feature map {fmt_pair(best.feature_map)} → pool scales {tuple(best.suggested_scales)}")
        if report.fix:
            console.print(f"  [bold]fix[/bold]: {report.fix}")
    if report.image is not None:
        whole = next((c for c in report.candidates if tuple(c.crop) == tuple(report.image)), None)
        if whole is not None:
            console.print(f"Whole-image training ({fmt_pair(report.image)}) "
                          + ("fits." if whole.fits else f"does not fit ({fmt_bytes(whole.peak_bytes)})."))
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")
