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
from rich.table import Table

from atrous_advisor.commands._common import emit_json, stderr, stdout
from atrous_advisor.commands.inspect import parse_kwargs
from atrous_advisor.errors import InputError
from atrous_advisor.numbers import (
    BATCH, CHECKPOINT_EVERY, CLASSES, COUNT, LABEL, REPEATS, SCALE, SEED, WORKERS, option, optional_option, parse_float,
    parse_float_list, parse_int_list, parse_pair,
)
from atrous_advisor.report.validate_models import RunResult, ValidateReport


def _pair_text(pair) -> str:
    h, w = pair
    return f"{h:g}" if h == w else f"{h:g}×{w:g}"


def _config_text(variant) -> str:
    if variant.rates is not None:
        return ", ".join(_pair_text(r) for r in variant.rates)
    return ", ".join(map(str, variant.scales or []))


class RichReporter:
    """Progress on stderr: rich bars with ETA on a terminal (one for the job, one per run); plain lines otherwise,
    so that a log file or a killed job keeps what happened."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
        )

        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
        ) if self.live else None
        self.overall = self.current = None
        self.steps = self.done = 0

    def _log(self, text: str) -> None:
        (self.progress.console if self.live else self.console).print(text, highlight=False)

    def plan(self, run_ids, steps):
        self.steps = steps
        if self.live:
            self.progress.start()
            self.overall = self.progress.add_task("all runs", total=len(run_ids) * steps, info="")
        else:
            self._log(f"{len(run_ids)} run(s) of {steps} steps: {', '.join(run_ids)}")

    def skip(self, run_id, run: RunResult):
        self._log(f"skipping {run_id}: finished earlier (mIoU {run.miou:.4f})")
        if self.live:
            self.progress.advance(self.overall, self.steps)

    def start(self, run_id):
        self.done = 0
        if self.live:
            self.current = self.progress.add_task(run_id, total=self.steps, info="")
        else:
            self._log(f"training {run_id}")

    def step(self, run_id, step, loss):
        if self.live:
            self.progress.update(self.current, completed=step, info=f"loss {loss:.4f}")
            self.progress.advance(self.overall, step - self.done)
        self.done = step

    def evaluating(self, run_id):
        if self.live:
            self.progress.update(self.current, info="evaluating")

    def finish(self, run_id, run: RunResult):
        resumed = f", resumed at step {run.resumed_from_step}" if run.resumed_from_step else ""
        if self.live:
            self.progress.update(self.current, info=f"mIoU {run.miou:.4f}{resumed}")
        else:
            self._log(f"finished {run_id}: mIoU {run.miou:.4f}, {run.images_per_second:.1f} images/s, "
                      f"{run.train_seconds:.0f} s{resumed}")

    def close(self):
        if self.live:
            self.progress.stop()


def render_validate(report: ValidateReport, out: Path, console: Console) -> None:
    table = Table(title=f"{report.model} at crop {_pair_text(report.crop)}: {report.settings['steps']} steps × "
                        f"{report.settings['repeats']} seed(s) on {report.device_name}"
                        + (f" × {report.world_size} processes" if report.world_size > 1 else ""),
                  header_style="bold")
    scales = all(v.rates is None for v in report.variants)
    for column, justify in (("variant", "left"), ("scales" if scales else "rates", "left"), ("mIoU", "right"),
                            ("Δ vs current", "right"), ("images/s", "right"), ("", "left")):
        table.add_column(column, justify=justify)
    current = next((v for v in report.variants if v.name == "current"), None)
    for v in report.variants:
        name = v.name + (f" (= {', '.join(v.also)})" if v.also else "")
        if v.miou is None:
            miou = delta = "—"
        else:
            miou = f"{v.miou:.4f}" + (f" ± {v.miou_std:.4f}" if v.miou_std is not None else "")
            delta = "" if current is None or current.miou is None or v is current else f"{(v.miou - current.miou) * 100:+.1f} pts"
        speed = f"{v.images_per_second:.1f}" if v.images_per_second else "—"
        status = "[green]best[/green]" if v.name == report.best else ("" if v.complete else f"{len(v.runs)}/{report.settings['repeats']} runs")
        table.add_row(name, _config_text(v), miou, delta, speed, status)
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")
    console.print(f"wrote {out / 'results.json'}, {out / 'results.csv'}, {out / 'miou_vs_rate.png'}")


def validate(
    model: str = typer.Argument(..., help="path/file.py, path/file.py:name or package.module:callable (as for inspect).", show_default=False),
    data: Path = typer.Option(..., "--data", help="DATA/{train,val}/{images,masks} or a Cityscapes root.", show_default=False),
    crop: str = typer.Option("512", "--crop", help="Training crop: 512, 512x1024 (H×W)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="State dict, or checkpoint with a 'state_dict'/'model' key."),
    kwargs: Optional[str] = typer.Option(None, "--kwargs", help='Model keyword arguments as JSON, e.g. \'{"num_classes": 19}\'.'),
    out: Path = typer.Option(Path("validate-out"), "--out", help="Output folder; rerunning with the same folder resumes."),
    sweep: Optional[str] = typer.Option(None, "--sweep", help="ASPP base rates to add: 8:16, 8:16:2 or 6,9,12."),
    scales: Optional[list[str]] = typer.Option(None, "--scales", help="PPM scale set to add, one per branch (repeatable): 1,2,3,6."),
    repeats: int = typer.Option(1, "--repeats", parser=option("--repeats", REPEATS), help="Seeds per variant (seed, seed+1, …); mIoU is reported as mean ± std."),
    seed: int = typer.Option(0, "--seed", parser=option("--seed", SEED), help="First seed."),
    steps: int = typer.Option(1000, "--steps", parser=option("--steps", COUNT), help="Optimiser steps per run."),
    batch_size: int = typer.Option(8, "--batch-size", parser=option("--batch-size", BATCH), help="Images per step per process."),
    lr: Optional[str] = typer.Option(None, "--lr", metavar="LR", help="Peak learning rate (default: 0.01 for sgd, 1e-4 for adamw)."),
    optimizer: str = typer.Option("sgd", "--optimizer", help="sgd (momentum 0.9, poly schedule) or adamw (poly schedule)."),
    device: str = typer.Option("auto", "--device", help="auto (cuda when available, else cpu), cpu, cuda, cuda:N."),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 autocast on CUDA, fp32 on CPU), bf16 or fp32."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="Channels-last memory format (default: on CUDA only).", show_default=False),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", parser=optional_option("--num-classes", CLASSES), help="Classes (default: largest mask label + 1; 19 for Cityscapes)."),
    ignore_index: int = typer.Option(255, "--ignore-index", parser=option("--ignore-index", LABEL), help="Mask value that is not a class."),
    eval_mode: str = typer.Option("whole", "--eval", help="whole images, or slide: windows of the crop size, 2/3 stride."),
    scale_range: str = typer.Option("0.5,2.0", "--scale-range", help="Random rescaling range for training."),
    workers: Optional[int] = typer.Option(None, "--workers", parser=optional_option("--workers", WORKERS), help="Data loading processes (default: 4 on CUDA, 0 on CPU)."),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every", parser=option("--checkpoint-every", CHECKPOINT_EVERY), help="Steps between checkpoints inside a run (0: none)."),
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
        checkpoint_every=checkpoint_every,
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
