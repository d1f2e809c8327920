"""Rich rendering of a ``PlanReport``: one table of candidates with the recommendation marked, then the answer."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from atrous_advisor.report import format as fmt
from atrous_advisor.report.plan_models import PlanCandidate, PlanReport


def _rates(c: PlanCandidate) -> str:
    if c.suggested_rates is not None:
        return fmt.rates(c.suggested_rates)
    if c.suggested_scales is not None:
        return "scales " + fmt.ints(c.suggested_scales)
    return "—"


def _r_star(c: PlanCandidate) -> str:
    return fmt.pair(c.optimal_base_rate, digits=2) if c.optimal_base_rate else "—"


def render_plan(report: PlanReport, console: Console) -> None:
    console.print(
        f"[bold]{report.model}[/bold] · batch {report.batch} · {report.precision} · budget "
        f"{fmt.size(report.memory_budget_bytes)} → {fmt.size(report.usable_bytes)} for tensors "
        f"(minus {fmt.size(report.context_reserve_bytes)} CUDA context, {report.allocator_margin:.0%} allocator margin)"
    )
    console.print(f"  head: {report.head}")
    console.print("  OS: output stride · peak: one step's tensors · F: feature map at the head · MACs per image")
    table = Table(show_header=True, header_style="bold", pad_edge=False, box=box.SIMPLE_HEAD)
    for name, justify in (("crop", "right"), ("OS", "right"), ("peak", "right"), ("fits", "center"),
                          ("F", "right"), ("r*", "right"), ("rates / scales", "left"), ("MACs", "right")):
        table.add_column(name, justify=justify, no_wrap=name != "rates / scales")  # type: ignore[arg-type]
    for c in report.candidates:
        chosen = c is report.recommended
        table.add_row(
            ("→ " if chosen else "") + fmt.crop(c.crop),
            str(c.output_stride) if c.output_stride else "?",
            fmt.size(c.peak_bytes),
            "[green]yes[/green]" if c.fits else "[red]no[/red]",
            fmt.crop(c.feature_map) if c.feature_map else "—",
            _r_star(c),
            _rates(c),
            fmt.si(c.macs),
            style="bold" if chosen else "",
        )
    console.print(table)
    best = report.recommended
    if best is None:
        smallest = min(report.candidates, key=lambda c: c.peak_bytes)
        console.print(Text(
            f"Nothing fits: the smallest candidate ({fmt.crop(smallest.crop)}) needs {fmt.size(smallest.peak_bytes)} "
            f"at batch {report.batch}; lower the batch, use bf16/fp16, or plan smaller crops.", style="bold yellow"))
    else:
        b = best.breakdown
        stride = f"output stride {best.output_stride}" if best.output_stride else "output stride unknown"
        console.print(Text(
            f"Train at {fmt.crop(best.crop)} px, {stride}: peak {fmt.size(best.peak_bytes)} "
            f"(parameters {fmt.size(b.parameters)}, gradients {fmt.size(b.gradients)}, optimizer {fmt.size(b.optimizer)}, "
            f"activations {fmt.size(b.activations)}, temporary {fmt.size(b.temporary)}).", style="bold green"))
        fmap = fmt.crop(best.feature_map) if best.feature_map else "—"
        if best.suggested_rates is not None:
            console.print(f"  feature map {fmap}, r* = {_r_star(best)} → rates {_rates(best)}")
        elif best.suggested_scales is not None:
            console.print(f"  feature map {fmap} → pool scales {fmt.ints(best.suggested_scales)}")
        if report.fix:
            console.print(f"  [bold]fix[/bold]: {report.fix}", soft_wrap=True)  # a fix is pasted: never broken mid-expression
    if report.image is not None:
        whole = next((c for c in report.candidates if tuple(c.crop) == tuple(report.image)), None)
        if whole is not None:
            console.print(f"Whole-image training ({fmt.crop(report.image)}) "
                          + ("fits." if whole.fits else f"does not fit ({fmt.size(whole.peak_bytes)})."))
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")
