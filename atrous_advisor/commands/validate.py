"""`atrous-advisor validate MODEL --data DATA --crop 512`: fine-tune the current and suggested head side by side.

torch is imported inside the command: ``rate``, ``ppm`` and ``lint`` must keep working without it. Under
``torchrun`` every process runs this command; only rank 0 prints and writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)

from atrous_advisor.commands._common import emit_json, stderr, stdout
from atrous_advisor.commands.inspect import parse_kwargs
from atrous_advisor.errors import InputError
from atrous_advisor.numbers import (
    BATCH, CHECKPOINT_EVERY, CLASSES, COUNT, LABEL, REPEATS, SCALE, SEED, WORKERS, option, optional_option, parse_float,
    parse_float_list, parse_int_list, parse_pair,
)
from atrous_advisor.report.validate_models import RunResult
from atrous_advisor.report.validate_render import render_validate
from atrous_advisor.runtime import THREADS_HELP


class RichReporter:
    """Progress on stderr: rich bars with ETA on a terminal (one for the job, one per run); plain lines otherwise,
    so that a log file or a killed job keeps what happened."""

    def __init__(self, console: Console) -> None:
        self.console = console
        # A live display only on a terminal; ``progress`` is None otherwise and progress is logged as lines.
        self.progress: Optional[Progress] = Progress(
            TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
        ) if console.is_terminal else None
        self.overall = self.current = TaskID(0)
        self.steps = self.done = 0

    @property
    def live(self) -> bool:
        return self.progress is not None

    def _log(self, text: str) -> None:
        (self.progress.console if self.progress is not None else self.console).print(text, highlight=False)

    def plan(self, run_ids, steps):
        self.steps = steps
        if self.progress is not None:
            self.progress.start()
            self.overall = self.progress.add_task("all runs", total=len(run_ids) * steps, info="")
        else:
            self._log(f"{len(run_ids)} run(s) of {steps} steps: {', '.join(run_ids)}")

    def skip(self, run_id, run: RunResult):
        self._log(f"skipping {run_id}: finished earlier (mIoU {run.miou:.4f})")
        if self.progress is not None:
            self.progress.advance(self.overall, self.steps)

    def start(self, run_id):
        self.done = 0
        if self.progress is not None:
            self.current = self.progress.add_task(run_id, total=self.steps, info="")
        else:
            self._log(f"training {run_id}")

    def step(self, run_id, step, loss):
        if self.progress is not None:
            self.progress.update(self.current, completed=step, info=f"loss {loss:.4f}")
            self.progress.advance(self.overall, step - self.done)
        self.done = step

    def evaluating(self, run_id):
        if self.progress is not None:
            self.progress.update(self.current, info="evaluating")

    def finish(self, run_id, run: RunResult):
        resumed = f", resumed at step {run.resumed_from_step}" if run.resumed_from_step else ""
        if self.progress is not None:
            self.progress.update(self.current, info=f"mIoU {run.miou:.4f}{resumed}")
        else:
            self._log(f"finished {run_id}: mIoU {run.miou:.4f}, {run.images_per_second:.1f} images/s, "
                      f"{run.train_seconds:.0f} s{resumed}")

    def close(self):
        if self.progress is not None:
            self.progress.stop()


def validate(
    model: str = typer.Argument(..., metavar="MODEL", help="path/file.py, path/file.py:name or package.module:callable (as for inspect).", show_default=False),
    data: Path = typer.Option(..., "--data", metavar="DATA", help="DATA/{train,val}/{images,masks} or a Cityscapes root.", show_default=False),
    crop: str = typer.Option("512", "--crop", "-c", metavar="CROP", help="Training crop: 512, 512x1024 (H×W)."),
    weights: Optional[Path] = typer.Option(None, "--weights", metavar="CKPT", help="State dict, or checkpoint with a 'state_dict'/'model' key."),
    kwargs: Optional[str] = typer.Option(None, "--kwargs", metavar="JSON", help='Model keyword arguments as JSON, e.g. \'{"num_classes": 19}\'.'),
    out: Path = typer.Option(Path("validate-out"), "--out", "-o", metavar="DIR", help="Output folder; rerunning with the same folder resumes."),
    sweep: Optional[str] = typer.Option(None, "--sweep", metavar="RATES", help="ASPP base rates to add: 8:16, 8:16:2 or 6,9,12."),
    scales: Optional[list[str]] = typer.Option(None, "--scales", metavar="SCALES", help="PPM scale set to add, one per branch (repeatable): 1,2,3,6."),
    repeats: int = typer.Option(1, "--repeats", metavar="N", parser=option("--repeats", REPEATS), help="Seeds per variant (seed, seed+1, …); mIoU is reported as mean ± std."),
    seed: int = typer.Option(0, "--seed", metavar="SEED", parser=option("--seed", SEED), help="First seed."),
    steps: int = typer.Option(1000, "--steps", metavar="N", parser=option("--steps", COUNT), help="Optimiser steps per run."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", metavar="N", parser=option("--batch-size", BATCH), help="Images per step per process."),
    lr: Optional[str] = typer.Option(None, "--lr", metavar="LR", help="Peak learning rate (default: 0.01 for sgd, 1e-4 for adamw)."),
    optimizer: str = typer.Option("sgd", "--optimizer", metavar="sgd|adamw", help="sgd (momentum 0.9, poly schedule) or adamw (poly schedule)."),
    device: str = typer.Option("auto", "--device", metavar="DEVICE", help="auto (cuda when available, else cpu), cpu, cuda, cuda:N."),
    precision: str = typer.Option("auto", "--precision", metavar="auto|bf16|fp32", help="auto (bf16 autocast on CUDA, fp32 on CPU), bf16 or fp32."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="Channels-last memory format (default: on CUDA only).", show_default=False),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", metavar="N", parser=optional_option("--num-classes", CLASSES), help="Classes (default: largest mask label + 1; 19 for Cityscapes)."),
    ignore_index: int = typer.Option(255, "--ignore-index", metavar="LABEL", parser=option("--ignore-index", LABEL), help="Mask value that is not a class."),
    eval_mode: str = typer.Option("whole", "--eval", metavar="whole|slide", help="whole images, or slide: windows of the crop size, 2/3 stride."),
    scale_range: str = typer.Option("0.5,2.0", "--scale-range", metavar="LOW,HIGH", help="Random rescaling range for training."),
    workers: Optional[int] = typer.Option(None, "--workers", metavar="N", parser=optional_option("--workers", WORKERS), help="Data loading processes (default: 4 on CUDA, 0 on CPU)."),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every", metavar="STEPS", parser=option("--checkpoint-every", CHECKPOINT_EVERY), help="Steps between checkpoints inside a run (0: none)."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", help=THREADS_HELP, show_default=False),
    wait: bool = typer.Option(False, "--wait", help="If another validate run is writing to --out, wait for it to finish instead of stopping."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON (the same as OUT/results.json)."),
) -> int:
    """Fine-tune MODEL under its current head and the suggested one (and a sweep), same seeds, and compare mIoU."""
    low, high = parse_float_list(scale_range, "--scale-range", 2, 0.0, 100.0, open_low=True)
    if low > high:
        raise InputError(f"--scale-range {scale_range!r}: expected LOW,HIGH with LOW <= HIGH, such as 0.5,2.0")
    lr_value = parse_float(lr, "--lr", 0.0, 1e6, open_low=True) if lr is not None else None
    crop_value = parse_pair(crop, "--crop")
    from atrous_advisor.train.validate import ValidateRequest, parse_sweep, run_validation  # torch: after the cheap checks

    request = ValidateRequest(
        model=model, data=data, crop=crop_value, out=out, kwargs=parse_kwargs(kwargs), weights=weights,
        sweep=tuple(parse_sweep(sweep)) if sweep else (),
        scale_sets=tuple(parse_int_list(s, "--scales", SCALE) for s in scales or ()),
        repeats=repeats, seed=seed, steps=steps, batch_size=batch_size, lr=lr_value, optimizer=optimizer.lower(),
        device=device, precision=precision.lower(), channels_last=channels_last, num_classes=num_classes,
        ignore_index=ignore_index, eval_mode=eval_mode.lower(), scale_range=(low, high), num_workers=workers,
        checkpoint_every=checkpoint_every, threads=threads, wait=wait,
    )
    main_process = int(os.environ.get("RANK", "0")) == 0
    reporter = RichReporter(stderr) if main_process else None
    try:
        report = run_validation(request, reporter)
    finally:
        if reporter is not None:
            reporter.close()
    if not main_process:
        return 0
    if json_output:
        emit_json(report)
    else:
        render_validate(report, out, stdout)
    return 0


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
