"""`atrous-advisor rate`: the optimal ASPP base rate for a crop and output stride."""

from __future__ import annotations

from typing import Optional

import typer

from atrous_advisor.advice import advise_rates
from atrous_advisor.commands._common import emit_json, stdout, warn
from atrous_advisor.geometry import DEFAULT_MARGIN
from atrous_advisor.numbers import BRANCHES, MARGIN, RATE, STRIDE, parse_int, parse_int_list, parse_pair
from atrous_advisor.report.render import render_rate


def rate(
    crop: str = typer.Option(..., "--crop", "-c", metavar="CROP", help="Training crop: 512, 512x1024 (H×W) or 512,1024."),
    stride: str = typer.Option(..., "--stride", "-s", metavar="STRIDE", help="Output stride of the backbone at the head (8, 16, …)."),
    rates: Optional[str] = typer.Option(None, "--rates", "-r", metavar="RATES", help="Your current dilated rates, e.g. 12,24,36."),
    branches: Optional[str] = typer.Option(
        None, "--branches", "-n", metavar="N", help="Dilated 3×3 branches (default: 3, or the number of --rates)."
    ),
    margin: str = typer.Option(str(DEFAULT_MARGIN), "--margin", metavar="PX", help="Fixed FOV margin in px beyond the star."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> int:
    """Optimal ASPP rates for a crop and output stride, and what the default (and your) rates really cover."""
    # Numbers are parsed here rather than by click so every bad value gets the same one-line error.
    stride_value = parse_int(stride, "--stride", STRIDE)
    n = parse_int(branches, "--branches", BRANCHES) if branches is not None else None
    margin_value = parse_int(margin, "--margin", MARGIN)
    current = parse_int_list(rates, "--rates", RATE) if rates is not None else None
    report = advise_rates(parse_pair(crop, "--crop"), stride_value, n, margin_value, current)
    for message in report.warnings:
        warn(message)
    if json_out:
        emit_json(report)
    else:
        render_rate(report, stdout)
    return 0


def register(app: typer.Typer) -> None:
    app.command("rate")(rate)
