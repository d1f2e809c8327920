"""Human output of ``erf``: one table, current and suggested side by side."""

from __future__ import annotations

from typing import Callable

from rich.console import Console
from rich.table import Table

from atrous_advisor.report import format as fmt
from atrous_advisor.report.erf_models import ErfMeasurement, ErfReport


def _signed_pair(values, unit: str) -> str:
    return f"{values[0]:+.1f}, {values[1]:+.1f} {unit}"


def render_erf(report: ErfReport, console: Console) -> None:
    table = Table(title=f"Effective receptive field of {report.model} at {fmt.crop(report.crop)}",
                  show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("current")
    if report.suggested is not None:
        table.add_column("suggested")
    variants = [report.current] + ([report.suggested] if report.suggested is not None else [])

    def row(label: str, cell: Callable[[ErfMeasurement], str]) -> None:
        table.add_row(label, *[cell(v) for v in variants])

    row("ASPP rates", lambda v: fmt.MISSING if v.rates is None else fmt.rates(v.rates))
    row("predicted span (2·n·r·s)", lambda v: fmt.px(v.predicted_span, none=fmt.MISSING))
    row("measured span (outer blobs)", lambda v: fmt.px(v.measured_span, 1, none=fmt.MISSING))
    row("measured / predicted", lambda v: fmt.pair(v.span_ratio, digits=3, none=fmt.MISSING))
    row("non-zero extent", lambda v: fmt.px(v.measured_extent, none=fmt.MISSING))
    row("taps outside the crop", lambda v: str(v.taps_outside_crop) if v.rates is not None else fmt.MISSING)
    row("Gaussian fit σ (y, x)", lambda v: fmt.MISSING if v.gaussian is None else fmt.px(v.gaussian.sigma, 1))
    row("spread σ (moments)", lambda v: fmt.MISSING if v.gaussian is None else fmt.px(v.gaussian.moment_sigma, 1))
    row("Gaussian centre shift", lambda v: fmt.MISSING if v.gaussian is None else _signed_pair(v.gaussian.centre_shift, "px"))
    row("raw map", lambda v: v.npy)
    console.print(table)
    source = f"data {report.data}" if report.source == "data" else f"noise (seed {report.seed})"
    console.print(
        f"{report.images} images from {source} on {report.device}, batches of {report.batch_size}: "
        f"{report.images_per_second:.1f} images/s. Heatmap: [bold]{report.png}[/bold]"
        + (" (log scale)" if report.log_scale else "")
    )
