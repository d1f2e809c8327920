"""Human output of ``validate``: one table of the variants, mIoU and the difference to the current head."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

from atrous_advisor.report import format as fmt
from atrous_advisor.report.validate_models import ValidateReport, VariantResult


def _config_text(variant: VariantResult) -> str:
    if variant.rates is not None:
        return fmt.rates(variant.rates)
    return fmt.ints(variant.scales or [])


def render_validate(report: ValidateReport, out: Path, console: Console) -> None:
    table = Table(title=f"{report.model} at crop {fmt.crop(report.crop)}: {report.settings['steps']} steps × "
                        f"{report.settings['repeats']} seed(s) on {report.device_name}"
                        + (f" × {report.world_size} processes" if report.world_size > 1 else ""),
                  header_style="bold")
    scales = all(v.rates is None for v in report.variants)
    columns: list[tuple[str, Literal["left", "right"]]] = [
        ("variant", "left"), ("scales" if scales else "rates", "left"), ("mIoU", "right"),
        ("Δ vs current", "right"), ("images/s", "right"), ("", "left"),
    ]
    for column, justify in columns:
        table.add_column(column, justify=justify)
    current = next((v for v in report.variants if v.name == "current"), None)
    for v in report.variants:
        name = v.name + (f" (= {', '.join(v.also)})" if v.also else "")
        if v.miou is None:
            miou = delta = fmt.MISSING
        else:
            miou = f"{v.miou:.4f}" + (f" ± {v.miou_std:.4f}" if v.miou_std is not None else "")
            delta = "" if current is None or current.miou is None or v is current else f"{(v.miou - current.miou) * 100:+.1f} pts"
        speed = f"{v.images_per_second:.1f}" if v.images_per_second else fmt.MISSING
        status = "[green]best[/green]" if v.name == report.best else ("" if v.complete else f"{len(v.runs)}/{report.settings['repeats']} runs")
        table.add_row(name, _config_text(v), miou, delta, speed, status)
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")
    console.print(f"wrote {out / 'results.json'}, {out / 'results.csv'}, {out / 'miou_vs_rate.png'}")
