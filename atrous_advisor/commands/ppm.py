"""`atrous-advisor ppm`: pyramid-pooling cell sizes at a crop, and the scales to use."""

from __future__ import annotations

import typer

from atrous_advisor.advice import advise_ppm
from atrous_advisor.commands._common import emit_json, stdout, warn
from atrous_advisor.geometry import DEFAULT_MIN_CELL, DEFAULT_SCALES
from atrous_advisor.numbers import MIN_CELL, SCALE, STRIDE, parse_int, parse_int_list, parse_pair
from atrous_advisor.report.render import render_ppm


def ppm(
    crop: str = typer.Option(..., "--crop", "-c", metavar="CROP", help="Training crop: 512, 512x1024 (H×W) or 512,1024."),
    stride: str = typer.Option(..., "--stride", "-s", metavar="STRIDE", help="Output stride of the features the PPM pools."),
    scales: str = typer.Option(
        ",".join(map(str, DEFAULT_SCALES)), "--scales", metavar="SCALES", help="Pool scales (bins per side), e.g. 1,2,3,6."
    ),
    min_cell: str = typer.Option(str(DEFAULT_MIN_CELL), "--min-cell", metavar="PX", help="Smallest useful cell in px."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> int:
    """Cell sizes of a PSPNet pyramid pooling module at this crop, and better pool scales."""
    stride_value = parse_int(stride, "--stride", STRIDE)
    min_cell_value = parse_int(min_cell, "--min-cell", MIN_CELL)
    report = advise_ppm(parse_pair(crop, "--crop"), stride_value, parse_int_list(scales, "--scales", SCALE), min_cell_value)
    for message in report.warnings:
        warn(message)
    if json_out:
        emit_json(report)
    else:
        render_ppm(report, stdout)
    return 0


def register(app: typer.Typer) -> None:
    app.command("ppm")(ppm)
