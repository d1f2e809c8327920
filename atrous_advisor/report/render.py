"""Rich renderers for the analytic reports. Plain functions from a result model to console output."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from atrous_advisor.geometry.assessment import PADDING_PROBLEM
from atrous_advisor.report import format as fmt
from atrous_advisor.report.models import PPMReport, RateReport


def _verdict(console: Console, ok: bool, text: str) -> None:
    # soft_wrap: the terminal folds a long verdict; rich would break it inside a rate list such as (10×21, 20×42)
    console.print(Text(text, style="bold green" if ok else "bold yellow"), soft_wrap=True)


def _snippets(console: Console, snippets: dict[str, str]) -> None:
    """Each snippet on a line of its own, never wrapped (a wrapped line pastes as two); the framework's name
    above it is a comment in Python and YAML alike, so the block can be pasted whole."""
    if not snippets:  # nothing to change
        return
    console.print("\n[bold]Paste into your framework[/bold]")
    for framework, snippet in snippets.items():
        console.print(Text(f"# {framework}", style="dim"), soft_wrap=True)
        console.print(Text(snippet), soft_wrap=True)


def render_rate(report: RateReport, console: Console) -> None:
    r_star = fmt.pair(report.optimal_base_rate, digits=2)
    console.print(
        f"[bold]crop[/bold] {fmt.crop(report.crop)} px · [bold]output stride[/bold] {report.output_stride} · "
        f"[bold]feature map[/bold] {fmt.crop(report.feature_map)}"
    )
    console.print(
        f"[bold]optimal base rate[/bold] r* = (L − {report.margin}) / (2·{report.branches}·{report.output_stride})"
        f" = {r_star} → rates {fmt.rates(report.suggested_rates)}"
    )
    table = Table(show_header=True, header_style="bold", pad_edge=False)
    table.add_column("rate set")
    table.add_column("rate", justify="right")
    table.add_column("extent", justify="right")
    table.add_column("of F", justify="right")
    table.add_column("padding", justify="right")
    table.add_column("1×1?", justify="center")
    for ev in report.evaluations:
        # The set's name, rates and FOV stack down the first column beside its branch rows.
        label = [f"[bold]{ev.name}[/bold] {fmt.rates(ev.rates)}", f"FOV {fmt.px(ev.fov)}", f"= {fmt.percent_pair(ev.fov_ratio)} of crop"]
        rows = max(len(ev.branches), len(label))
        for i in range(rows):
            b = ev.branches[i] if i < len(ev.branches) else None
            cells = (
                [fmt.pair(b.rate), fmt.pair(b.kernel_extent), fmt.percent_pair(b.coverage), fmt.percent(b.padding_fraction),
                 "[red]yes[/red]" if b.degenerate else "no"]
                if b else [""] * 5
            )
            style = "" if b is None else ("red" if b.degenerate else ("yellow" if b.padding_fraction > PADDING_PROBLEM else ""))
            table.add_row(label[i] if i < len(label) else "", *cells, style=style, end_section=i == rows - 1)
    console.print(table)
    if report.single_int_rates is not None:
        console.print(
            f"Non-square crop: per-axis rates {fmt.rates(report.suggested_rates)}; "
            f"one int per branch: {fmt.rates(report.single_int_rates)}.",
            soft_wrap=True,
        )
    _verdict(console, report.ok, report.verdict)
    _snippets(console, report.snippets)


def render_ppm(report: PPMReport, console: Console) -> None:
    console.print(
        f"[bold]crop[/bold] {fmt.crop(report.crop)} px · [bold]output stride[/bold] {report.output_stride} · "
        f"[bold]feature map[/bold] {fmt.crop(report.feature_map)} · [bold]min cell[/bold] {report.min_cell} px"
    )
    table = Table(show_header=True, header_style="bold", pad_edge=False)
    table.add_column("scale", justify="right")
    table.add_column("cell (features)", justify="right")
    table.add_column("cell (px)", justify="right")
    table.add_column("status")
    for c in report.cells:
        status = []
        if c.below_min_cell:
            status.append(f"below {report.min_cell} px")
        if c.redundant:
            status.append("scale > F: bins repeat")
        table.add_row(
            f"{c.scale}×{c.scale}",
            fmt.pair(c.cell_features, digits=1),
            fmt.pair(c.cell_pixels, digits=0),
            ", ".join(status) or "ok",
            style="yellow" if status else "",
        )
    console.print(table)
    _verdict(console, report.ok, report.verdict)
    _snippets(console, report.snippets)
