"""`atrous-advisor plan`: the largest crop a GPU budget can train, and the rates that go with it.

torch is imported inside the command: ``rate``, ``ppm`` and ``lint`` must keep working without it.
"""

from __future__ import annotations

from typing import Optional

import typer

from atrous_advisor.commands._common import emit_json, stderr, stdout, warn
from atrous_advisor.errors import InputError


def plan(
    model: str = typer.Argument(..., metavar="MODEL", help="path/file.py, path/file.py:name or package.module:callable."),
    memory: str = typer.Option(..., "--memory", "-m", metavar="SIZE", help="GPU memory: 24GiB, 24G, 24000MB, 0.5TiB."),
    batch: str = typer.Option(..., "--batch", "-b", metavar="N", help="Images per GPU per step."),
    precision: str = typer.Option("fp32", "--precision", metavar="fp32|bf16|fp16", help="Training precision (bf16/fp16: autocast)."),
    crops: Optional[str] = typer.Option(None, "--crops", metavar="CROPS", help="START:STOP:STEP (square) or a list 512,769,512x1024 [default 384:1024:64]."),
    image: Optional[str] = typer.Option(None, "--image", metavar="HxW", help="Image size: only crops that fit in it, plus the whole image."),
    strides: Optional[str] = typer.Option(None, "--strides", metavar="S,S", help="Output strides to try, through the builder's encoder_output_stride/output_stride."),
    kwargs: Optional[str] = typer.Option(None, "--kwargs", metavar="JSON", help='Arguments for the callable, e.g. \'{"weights": null}\'.'),
    optimizer: str = typer.Option("sgd", "--optimizer", metavar="sgd|adamw|adam", help="Optimizer whose state is counted (sgd: momentum 0.9)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> int:
    """Peak training memory per crop (fake tensors, no GPU needed), the largest crop that fits, and its rates."""
    from atrous_advisor.commands.inspect import parse_kwargs
    from atrous_advisor.geometry import parse_crop, parse_int_list
    from atrous_advisor.numbers import BATCH, parse_int
    from atrous_advisor.plan.budget import parse_memory

    budget = parse_memory(memory)
    batch_value = parse_int(batch, "--batch", BATCH)
    options = parse_kwargs(kwargs)
    try:
        image_pair = parse_crop(image) if image is not None else None
    except InputError as exc:
        raise InputError(f"--image {image!r}: {exc}") from exc
    stride_values = parse_int_list(strides, "strides") if strides is not None else None
    from atrous_advisor.graph.loading import _torch

    _torch()  # a clear MissingExtraError before anything else when torch is absent
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from atrous_advisor.plan.planner import DEFAULT_CROPS, parse_crops, plan_model
    from atrous_advisor.report.plan_render import render_plan

    crop_list = parse_crops(crops if crops is not None else DEFAULT_CROPS)
    with Progress(TextColumn("planning {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=stderr, transient=True) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        report = plan_model(model, budget, batch_value, precision, crop_list, image_pair, stride_values, options,
                            optimizer, progress)
    if json_out:
        emit_json(report)
    else:
        render_plan(report, stdout)
    if report.recommended is None:
        warn(f"no candidate crop fits {memory} at batch {batch_value}")
        return 1
    return 0


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
