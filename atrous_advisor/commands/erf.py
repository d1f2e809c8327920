"""`atrous-advisor erf`: measure the effective receptive field and check the ASPP star against the prediction."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from atrous_advisor.commands._common import emit_json, stderr, stdout, warn
from atrous_advisor.commands.inspect import parse_kwargs  # one --kwargs syntax and message for every command
from atrous_advisor.errors import InputError, MissingExtraError
from atrous_advisor.numbers import BATCH, COUNT, SEED, option, parse_float, parse_pair
from atrous_advisor.report.erf_render import render_erf
from atrous_advisor.runtime import THREADS_HELP


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
    batch_size: int = typer.Option(8, "--batch-size", "-b", parser=option("--batch-size", BATCH), metavar="N", help="Images per forward/backward pass."),
    device: str = typer.Option("auto", "--device", metavar="DEVICE", help="auto (cuda when available, else cpu), cpu, cuda, cuda:N."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", help=THREADS_HELP, show_default=False),
    log: bool = typer.Option(False, "--log", help="Log colour scale (shows the faint outer taps)."),
    out: Path = typer.Option(Path("erf.png"), "--out", "-o", metavar="PNG",
                             help="Heatmap PNG; the raw map goes to the same name with .npy."),
    compare: bool = typer.Option(False, "--compare", help="Also measure under the suggested rates; both side by side."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing output files."),
    seed: int = typer.Option(0, "--seed", metavar="SEED", parser=option("--seed", SEED), help="Seed of the noise images and of a randomly initialised model."),
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
        from atrous_advisor.erf.run import ErfRequest, run_erf
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

        request = ErfRequest(
            model, crop_hw, out=out, data=data, noise=noise, images=images, weights=weights, kwargs=model_kwargs,
            batch_size=batch_size, device=device, threads=threads, log=log, compare=compare, force=force, seed=seed,
            extent_threshold=threshold,
        )
        report = run_erf(request, progress=progress)
    for message in report.warnings:
        warn(message)
    if json_out:
        emit_json(report)
    else:
        render_erf(report, stdout)
    return 0


def register(app: typer.Typer) -> None:
    app.command("erf")(erf)
