"""`atrous-advisor erf`: measure the effective receptive field and check the ASPP star against the prediction."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from atrous_advisor.commands._common import emit_json, stderr, stdout, warn
from atrous_advisor.commands.inspect import parse_kwargs  # one --kwargs syntax and message for every command
from atrous_advisor.errors import InputError, MissingExtraError
from atrous_advisor.numbers import BATCH, COUNT, SEED, option, parse_float, parse_pair


def _fmt(values, digits: int = 0) -> str:
    if values is None:
        return "—"
    parts = ["—" if v is None else f"{v:.{digits}f}" for v in values]
    return parts[0] if len(set(parts)) == 1 else "×".join(parts)


def _render(report, console) -> None:
    from rich.table import Table

    table = Table(title=f"Effective receptive field of {report.model} at {report.crop[0]}×{report.crop[1]}",
                  show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("current")
    if report.suggested is not None:
        table.add_column("suggested")
    variants = [report.current] + ([report.suggested] if report.suggested is not None else [])

    def row(label, cell):
        table.add_row(label, *[cell(v) for v in variants])

    row("ASPP rates", lambda v: "—" if v.rates is None else ", ".join(_fmt(r) for r in v.rates))
    row("predicted span (2·n·r·s)", lambda v: _fmt(v.predicted_span) + (" px" if v.predicted_span else ""))
    row("measured span (outer blobs)", lambda v: _fmt(v.measured_span, 1) + " px")
    row("measured / predicted", lambda v: _fmt(v.span_ratio, 3))
    row("non-zero extent", lambda v: _fmt(v.measured_extent) + " px")
    row("taps outside the crop", lambda v: str(v.taps_outside_crop) if v.rates is not None else "—")
    row("Gaussian fit σ (y, x)", lambda v: "—" if v.gaussian is None else
        f"{v.gaussian.sigma[0]:.1f}, {v.gaussian.sigma[1]:.1f} px")
    row("spread σ (moments)", lambda v: "—" if v.gaussian is None else
        f"{v.gaussian.moment_sigma[0]:.1f}, {v.gaussian.moment_sigma[1]:.1f} px")
    row("Gaussian centre shift", lambda v: "—" if v.gaussian is None else
        f"{v.gaussian.centre_shift[0]:+.1f}, {v.gaussian.centre_shift[1]:+.1f} px")
    row("raw map", lambda v: v.npy)
    console.print(table)
    source = f"data {report.data}" if report.source == "data" else f"noise (seed {report.seed})"
    console.print(
        f"{report.images} images from {source} on {report.device}, batches of {report.batch_size}: "
        f"{report.images_per_second:.1f} images/s. Heatmap: [bold]{report.png}[/bold]"
        + (" (log scale)" if report.log_scale else "")
    )


def erf(
    model: str = typer.Argument(..., metavar="MODEL", help="file.py, file.py:name or package.module:callable."),
    crop: str = typer.Option(..., "--crop", "-c", metavar="CROP", help="Input crop: 512, 512x1024 (H×W) or 512,1024."),
    data: Optional[Path] = typer.Option(None, "--data", metavar="DATA",
                                        help="Dataset folder (DATA/{train,val}/{images,masks} or Cityscapes); "
                                             "images are centre-cropped or zero-padded to the crop."),
    noise: bool = typer.Option(False, "--noise", help="Measure on standard-normal noise images (the default)."),
    images: int = typer.Option(16, "--images", "-n", parser=option("--images", COUNT), metavar="N", help="Images to accumulate over."),
    weights: Optional[Path] = typer.Option(None, "--weights", metavar="CKPT",
                                           help="State dict, or checkpoint with a state_dict/model key."),
    kwargs: Optional[str] = typer.Option(None, "--kwargs", metavar="JSON", help="Keyword arguments for the model builder."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", parser=option("--batch-size", BATCH), metavar="B", help="Images per forward/backward pass."),
    device: str = typer.Option("auto", "--device", metavar="DEVICE", help="auto (cuda when available), cpu, cuda, cuda:N."),
    log: bool = typer.Option(False, "--log", help="Log colour scale (shows the faint outer taps)."),
    out: Path = typer.Option(Path("erf.png"), "--out", "-o", metavar="PNG",
                             help="Heatmap PNG; the raw map goes to the same name with .npy."),
    compare: bool = typer.Option(False, "--compare", help="Also measure under the suggested rates; both side by side."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing output files."),
    seed: int = typer.Option(0, "--seed", parser=option("--seed", SEED), help="Seed of the noise images and of a randomly initialised model."),
    extent_threshold: str = typer.Option("0", "--extent-threshold", metavar="FRACTION",
                                           help="Extent counts pixels above this fraction of the maximum (0: non-zero)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> int:
    """Measure the effective receptive field (paper Eq. 1) and check the ASPP star against 2·n·r·s."""
    crop_hw = parse_pair(crop, "--crop")
    threshold = parse_float(extent_threshold, "--extent-threshold", 0.0, 1.0)
    model_kwargs = parse_kwargs(kwargs) if kwargs is not None else None
    if data is not None and noise:
        raise InputError("--data and --noise exclude each other: measure on a dataset or on noise, not both")
    try:
        import torch  # noqa: F401
        from atrous_advisor.train.erf import run_erf
    except ImportError as exc:
        raise MissingExtraError(f"erf needs the torch extra: pip install 'atrous-advisor[torch]' ({exc})") from None

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
        TimeRemainingColumn(), console=stderr, transient=True,
        disable=not stderr.is_terminal,  # off a terminal it would only leave a blank line on stderr
    ) as bar:

        def progress(description: str, total: int):
            task = bar.add_task(description, total=total)
            return lambda n: bar.advance(task, n)

        report = run_erf(
            model, crop_hw, out=out, data=data, noise=noise, images=images, weights=weights, kwargs=model_kwargs,
            batch_size=batch_size, device=device, log=log, compare=compare, force=force, seed=seed,
            extent_threshold=threshold, progress=progress,
        )
    for message in report.warnings:
        warn(message)
    if json_out:
        emit_json(report)
    else:
        _render(report, stdout)
    return 0


def register(app: typer.Typer) -> None:
    app.command("erf")(erf)
