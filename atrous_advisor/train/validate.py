"""``validate``: fine-tune a model under its current head configuration and the suggested one, side by side.

The plan: find the model's ASPP/PPM heads (``atrous_advisor.graph``), derive variants (current, suggested,
a sweep of base rates, user-given PPM scales), and for each variant and seed build the model afresh under
the same seed, load ``--weights``, change the head by surgery, fine-tune and evaluate. Every finished run is
written to ``OUT/runs/`` at once (write to a temporary file, then ``os.replace``) and the report files are
rebuilt from those records, so an interrupted job loses at most the run in progress — and not even that
since the last periodic checkpoint. Rerunning the same command skips what is finished.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import math
import platform
import statistics
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Protocol, Sequence, cast

import torch

from atrous_advisor import numbers
from atrous_advisor.files import FolderLockedError, atomic_path, check_writable, folder_lock, remove_stale_temp_files
from atrous_advisor.errors import AdvisorError, DataError, InputError, ModelLoadError
from atrous_advisor.geometry import DEFAULT_BRANCHES, effective_base_rate, suggest_scales, suggested_rates
from atrous_advisor.report.validate_models import HeadVariant, RunResult, ValidateReport, VariantResult
from atrous_advisor.train import loop
from atrous_advisor.usercode import user_code
from atrous_advisor.train.data import SegmentationDataset, check_labels, discover, infer_num_classes
from atrous_advisor.graph.surgery import apply_rates, apply_scales
from atrous_advisor.graph.weights import check_fit, load_weights, read_weights
from atrous_advisor.report import format as fmt
from atrous_advisor.runtime import resolve_device, set_cpu_threads

IntPair = tuple[int, int]


# ---------------------------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    name: str
    heads: tuple[HeadVariant, ...]
    also: tuple[str, ...] = ()

    @property
    def key(self) -> tuple:
        return tuple((h.head, tuple(h.rates or ()), tuple(h.scales or ())) for h in self.heads)


def parse_sweep(text: str) -> list[int]:
    """``8:16`` (inclusive), ``8:16:2`` (with a step) or ``6,9,12``: base rates to try (at most MAX_LIST)."""
    raw = text.strip()
    if ":" not in raw:
        return list(numbers.parse_int_list(raw, "--sweep", numbers.RATE))
    parts = raw.split(":")
    if len(parts) not in (2, 3):
        raise InputError(f"--sweep {numbers.shown(text)}: expected START:STOP[:STEP] such as 8:16, or a list such as 6,9,12")
    start, stop = (numbers.parse_int(p, "--sweep", numbers.RATE) for p in parts[:2])
    step = numbers.parse_int(parts[2], "--sweep step", numbers.RATE) if len(parts) == 3 else 1
    if stop < start:
        raise InputError(f"--sweep {numbers.shown(text)}: STOP is below START")
    count = (stop - start) // step + 1
    if count > numbers.MAX_LIST:
        raise InputError(f"--sweep {numbers.shown(text)}: {count} rates; at most {numbers.MAX_LIST} are accepted")
    return list(range(start, stop + 1, step))


def _stride(head) -> IntPair:
    return (max(1, round(head.stride[0])), max(1, round(head.stride[1])))


def _capped_scales(scales: Sequence[int], crop: IntPair, fmap: IntPair) -> list[int]:
    """``suggest_scales`` keeps a set of distinct scales; the weights fix the number of branches, so each
    branch keeps its scale capped at the largest suggested one (duplicates allowed)."""
    cap = max(suggest_scales(scales, crop, fmap=(fmap[0], fmap[1])))
    return [min(int(s), cap) for s in scales]


def plan_variants(heads: Sequence, crop: IntPair, sweep: Sequence[int] = (), scale_sets: Sequence[Sequence[int]] = ()) -> tuple[list[Variant], list[str]]:
    """Variants to train, identical configurations merged (their other names kept in ``also``), and notes."""
    aspp = [h for h in heads if h.kind == "aspp"]
    ppm = [h for h in heads if h.kind == "ppm"]
    if not aspp and not ppm:
        found = ", ".join(f"{h.kind} {h.name}" for h in heads) or "no head at all"
        raise ModelLoadError(f"no ASPP or PPM head found in the model ({found}): validate has nothing to vary")
    notes: list[str] = []
    candidates: list[Variant] = []
    if aspp:
        if scale_sets:
            raise InputError("--scales applies to PPM heads; this model's heads are ASPP (use --sweep)")

        def rates_variant(name: str, rates_of: Callable) -> Variant:
            return Variant(name, tuple(HeadVariant(head=h.name, kind="aspp", rates=[tuple(r) for r in rates_of(h)]) for h in aspp))

        candidates.append(rates_variant("current", lambda h: h.rates))
        candidates.append(rates_variant("suggested", lambda h: suggested_rates(crop, _stride(h), branches=len(h.rates) or DEFAULT_BRANCHES)))
        for base in sweep:
            candidates.append(rates_variant(f"rate-{base}", lambda h, b=base: [(k * b, k * b) for k in range(1, len(h.rates) + 1)]))
        if ppm:
            notes.append(f"PPM head(s) {', '.join(h.name for h in ppm)} left as built: variants change the ASPP rates")
    else:
        if sweep:
            raise InputError("--sweep applies to ASPP heads; this model's heads are PPM (use --scales)")

        def scales_variant(name: str, scales_of: Callable) -> Variant:
            return Variant(name, tuple(HeadVariant(head=h.name, kind="ppm", scales=list(scales_of(h))) for h in ppm))

        candidates.append(scales_variant("current", lambda h: h.scales))
        candidates.append(scales_variant("suggested", lambda h: _capped_scales(h.scales, crop, h.feature_map)))
        for scales in scale_sets:
            for h in ppm:
                if len(scales) != len(h.scales):
                    raise InputError(
                        f"--scales {','.join(map(str, scales))}: head {h.name} has {len(h.scales)} pooling branches "
                        f"({','.join(map(str, h.scales))}); give {len(h.scales)} scales (repeats allowed)"
                    )
            candidates.append(scales_variant("scales-" + "-".join(map(str, scales)), lambda h, s=scales: s))
    variants: list[Variant] = []
    for candidate in candidates:
        same = next((i for i, v in enumerate(variants) if v.key == candidate.key), None)
        if same is None:
            variants.append(candidate)
        else:
            variants[same] = replace(variants[same], also=variants[same].also + (candidate.name,))
            notes.append(f"{candidate.name} is the same configuration as {variants[same].name}: trained once")
    return variants, notes


def apply_variant(model: torch.nn.Module, heads: Sequence, variant: Variant) -> None:
    by_name = {h.name: h for h in heads}
    for setting in variant.heads:
        head = by_name[setting.head]
        if setting.kind == "aspp":
            assert setting.rates is not None  # an ASPP setting carries rates, a PPM one scales
            apply_rates(model, head, setting.rates)
        else:
            assert setting.scales is not None
            apply_scales(model, head, setting.scales)


# ---------------------------------------------------------------------------------------------- request


@dataclass(frozen=True)
class ValidateRequest:
    model: str
    data: Path
    crop: IntPair
    out: Path
    kwargs: dict = field(default_factory=dict)
    weights: Optional[Path] = None
    sweep: tuple[int, ...] = ()
    scale_sets: tuple[tuple[int, ...], ...] = ()
    repeats: int = 1
    seed: int = 0
    steps: int = 1000
    batch_size: int = 8
    lr: Optional[float] = None  # None: 0.01 for SGD, 1e-4 for AdamW
    optimizer: str = "sgd"
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    channels_last: Optional[bool] = None  # None: on CUDA only
    num_classes: Optional[int] = None
    ignore_index: int = 255
    eval_mode: str = "whole"
    scale_range: tuple[float, float] = (0.5, 2.0)
    num_workers: Optional[int] = None  # None: 4 on CUDA, 0 on CPU
    checkpoint_every: int = 200
    threads: Optional[int] = None  # None: runtime.default_cpu_threads on CPU, torch's default on CUDA
    wait: bool = False  # another run holds --out: wait for it instead of stopping

    def check(self) -> None:
        caps = {"steps": numbers.COUNT, "batch_size": numbers.BATCH, "repeats": numbers.REPEATS, "seed": numbers.SEED,
                "ignore_index": numbers.LABEL, "checkpoint_every": numbers.CHECKPOINT_EVERY,
                "num_workers": numbers.WORKERS, "num_classes": numbers.CLASSES}
        for name, cap in caps.items():
            if getattr(self, name) is not None:
                numbers.check_int(getattr(self, name), "--" + name.replace("_", "-").replace("num-workers", "workers"), cap)
        if self.seed + self.repeats - 1 > numbers.SEED.high:
            raise InputError(f"--seed {self.seed} with --repeats {self.repeats}: the seeds run past {numbers.SEED.high}")
        for side in self.crop:
            numbers.check_int(side, "--crop", numbers.CROP)
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"--lr {self.lr}: must be positive")
        if self.optimizer not in ("sgd", "adamw"):
            raise InputError(f"--optimizer {self.optimizer!r}: expected sgd or adamw")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise InputError(f"--precision {self.precision!r}: expected auto, bf16 or fp32")
        if self.eval_mode not in ("whole", "slide"):
            raise InputError(f"--eval {self.eval_mode!r}: expected whole or slide")
        low, high = self.scale_range
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high <= 100):
            raise InputError(f"--scale-range {low},{high}: expected 0 < low <= high <= 100")
        if self.checkpoint_every < 0:
            raise InputError(f"--checkpoint-every {self.checkpoint_every}: must be 0 (none) or a number of steps")
        if self.num_classes is not None and self.num_classes < 1:
            raise InputError(f"--num-classes {self.num_classes}: must be at least 1")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


# ---------------------------------------------------------------------------------------------- progress


class Reporter(Protocol):
    def plan(self, run_ids: list[str], steps: int) -> None: ...
    def skip(self, run_id: str, run: RunResult) -> None: ...
    def start(self, run_id: str) -> None: ...
    def step(self, run_id: str, step: int, loss: float) -> None: ...
    def evaluating(self, run_id: str) -> None: ...
    def finish(self, run_id: str, run: RunResult) -> None: ...


class SilentReporter:
    def plan(self, run_ids, steps):
        pass

    def skip(self, run_id, run):
        pass

    def start(self, run_id):
        pass

    def step(self, run_id, step, loss):
        pass

    def evaluating(self, run_id):
        pass

    def finish(self, run_id, run):
        pass


# ---------------------------------------------------------------------------------------------- output


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def results_csv(report: ValidateReport) -> str:
    """One row per finished run."""
    buffer = io.StringIO()
    classes = [f"iou_{i}" for i in range(report.num_classes)]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["variant", "rates", "scales", "seed", "steps", "miou", "images_per_second", "train_seconds", *classes])
    for variant in report.variants:
        rates = " ".join(f"{h}x{w}" if h != w else str(h) for h, w in variant.rates) if variant.rates else ""
        scales = " ".join(map(str, variant.scales)) if variant.scales else ""
        for run in variant.runs:
            ious = ["" if v is None else f"{v:.6f}" for v in run.per_class_iou]
            writer.writerow([variant.name, rates, scales, run.seed, run.steps, f"{run.miou:.6f}",
                             f"{run.images_per_second:.3f}", f"{run.train_seconds:.2f}", *ious])
    return buffer.getvalue()


def plot_png(report: ValidateReport) -> bytes:
    """mIoU (mean ± std over repeats) against the base rate for ASPP variants, or per scale set for PPM."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    done = [v for v in report.variants if v.miou is not None]
    fig = Figure(figsize=(6, 4), dpi=120)
    ax = fig.add_subplot()
    rated = [(v.base_rate, v) for v in done if v.base_rate is not None]
    if done and len(rated) == len(done):
        rated.sort(key=lambda pair: pair[0][0])
        ordered = [v for _, v in rated]
        xs = [base[0] for base, _ in rated]
        ax.errorbar(xs, [v.miou for v in ordered], yerr=[v.miou_std or 0.0 for v in ordered], marker="o", capsize=3)
        for x, v in zip(xs, ordered):
            label = "/".join((v.name, *v.also)) if v.name in ("current", "suggested") or any(a in ("current", "suggested") for a in v.also) else None
            if label:
                ax.annotate(label, (x, v.miou), textcoords="offset points", xytext=(4, 6), fontsize=8)
        ax.set_xlabel("base rate r (branches r, 2r, 3r, …)" + ("" if all(base[0] == base[1] for base, _ in rated) else ", height axis"))
    else:
        names = ["/".join((v.name, *v.also)) + (f"\n{','.join(map(str, v.scales))}" if v.scales else "") for v in done]
        ax.bar(range(len(done)), [v.miou for v in done], yerr=[v.miou_std or 0.0 for v in done], capsize=3)
        ax.set_xticks(range(len(done)), names, fontsize=8)
        ax.set_xlabel("variant (pooling scales)")
    ax.set_ylabel("val mIoU")
    ax.set_title(f"{Path(report.model).name} at crop {fmt.crop(report.crop)}, {report.settings.get('steps')} steps", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- running


def _run_id(variant: Variant, seed: int) -> str:
    return f"{variant.name}-seed{seed}"


def _fingerprint(common: dict, variant: Variant) -> str:
    text = json.dumps({"common": common, "heads": [h.model_dump() for h in variant.heads]}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_run(path: Path) -> Optional[RunResult]:
    try:
        return RunResult.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None  # a torn or foreign file: the run is simply redone


LOCK = ".validate.lock"  # in --out: held by the run writing there, with its PID


def check_out(out: Path) -> None:
    """``--out`` must be new, empty, or a folder an earlier ``validate`` wrote: nobody else's files are replaced."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    if not out.is_dir() or not any(p.name != LOCK for p in out.iterdir()):
        return
    ours = (
        any(_read_run(p) is not None for p in out.glob("runs/*.json"))
        or any(out.glob("checkpoints/*-seed*.pt"))  # killed before its first run finished
    )
    if not ours:
        raise InputError(
            f"--out {out}: a folder with other files and no validate runs in it; choose a new or empty folder "
            "(results.json, results.csv and miou_vs_rate.png would be written there)"
        )


def _variant_result(variant: Variant, runs: list[RunResult], request: ValidateRequest) -> VariantResult:
    first_aspp = next((h for h in variant.heads if h.kind == "aspp"), None)
    first_ppm = next((h for h in variant.heads if h.kind == "ppm"), None)
    base = None
    if first_aspp is not None and first_aspp.rates:
        base = effective_base_rate(first_aspp.rates)
    mious = [r.miou for r in runs]
    per_class: list[Optional[float]] = []
    if runs:
        for values in zip(*(r.per_class_iou for r in runs)):
            present = [v for v in values if v is not None]
            per_class.append(statistics.fmean(present) if present else None)
    return VariantResult(
        name=variant.name,
        rates=first_aspp.rates if first_aspp else None,
        scales=first_ppm.scales if first_ppm else None,
        base_rate=base,
        heads=list(variant.heads),
        also=list(variant.also),
        miou=statistics.fmean(mious) if mious else None,
        miou_std=statistics.stdev(mious) if len(mious) > 1 else None,
        per_class_iou=per_class,
        seed=request.seed,
        seeds=[r.seed for r in runs],
        steps=request.steps,
        images_per_second=statistics.fmean(r.images_per_second for r in runs) if runs else None,
        complete=len(runs) == request.repeats,
        runs=runs,
    )


class _Job:
    """Everything resolved once: data, heads, variants, device, settings; then runs one (variant, seed) at a time."""

    def __init__(self, request: ValidateRequest, reporter: Reporter) -> None:
        from atrous_advisor.graph.heads import find_heads
        from atrous_advisor.graph.loading import load_model, primary_output

        request.check()
        self.request, self.reporter = request, reporter
        self.ctx = loop.distributed_from_env()
        self.device = resolve_device(request.device, self.ctx.local_rank if self.ctx.enabled else None)
        set_cpu_threads(request.threads, self.device.type, self.ctx.world_size if self.ctx.enabled else 1)
        loop.init_distributed(self.ctx, self.device)
        self.notes: list[str] = []

        self.train_files = discover(request.data, "train")
        self.val_files = discover(request.data, "val")
        if request.num_classes is None:
            self.num_classes = infer_num_classes([self.train_files, self.val_files], request.ignore_index)
            self.notes.append(f"{self.num_classes} classes inferred from the masks (largest label + 1); set --num-classes to override")
        else:
            self.num_classes = request.num_classes
        if request.num_classes is not None or self.train_files.layout == "cityscapes":
            # Inferred from folder masks, the count covers every label; given, or Cityscapes' fixed 19, it may not.
            check_labels(self.train_files.samples + self.val_files.samples, self.num_classes, request.ignore_index)

        # Heads and the class count are read from a meta-device build: nothing allocated, nothing run.
        described = load_model(request.model, request.kwargs, device="meta")
        self.heads = find_heads(described.model, request.crop)
        self.variants, notes = plan_variants(self.heads, request.crop, request.sweep, request.scale_sets)
        self.notes += notes
        with torch.no_grad():
            meta_input = torch.zeros(1, 3, *request.crop, device=described.device)
            try:
                channels = primary_output(described.model(meta_input)).shape[1]
            except Exception:  # noqa: BLE001 - the meta forward is only a pre-check; the real run will tell
                channels = None
        if channels is not None and channels < self.num_classes:
            raise InputError(
                f"the model predicts {channels} classes but the data has {self.num_classes}: "
                f"pass --kwargs '{{\"num_classes\": {self.num_classes}}}' (or your model's own argument)"
            )
        self._load_model = load_model
        self.weights = None
        if request.weights is not None:  # refused now, not after the first run has started
            self.weights = read_weights(request.weights)
            check_fit(described.model, self.weights, request.weights)
        if len(self.train_files.samples) // self.ctx.world_size < request.batch_size:
            raise DataError(
                f"the train split has {len(self.train_files.samples)} images: fewer than --batch-size "
                f"{request.batch_size} × {self.ctx.world_size} process(es); lower --batch-size"
            )

        cuda = self.device.type == "cuda"
        precision = request.precision if request.precision != "auto" else ("bf16" if cuda else "fp32")
        self.settings = loop.TrainSettings(
            steps=request.steps, batch_size=request.batch_size,
            lr=request.lr if request.lr is not None else (0.01 if request.optimizer == "sgd" else 1e-4),
            # the strings were checked by ValidateRequest.check against exactly these literals
            optimizer=cast(Literal["sgd", "adamw"], request.optimizer), precision=cast(loop.Precision, precision),
            channels_last=cuda if request.channels_last is None else request.channels_last,
            eval_mode=cast(Literal["whole", "slide"], request.eval_mode), crop=request.crop, num_classes=self.num_classes,
            ignore_index=request.ignore_index,
            num_workers=request.num_workers if request.num_workers is not None else (4 if cuda else 0),
            checkpoint_every=request.checkpoint_every,
        )
        self.common = self._common_settings()
        self.train_set = SegmentationDataset(self.train_files.samples, request.crop, train=True,
                                             ignore_index=request.ignore_index, scale_range=request.scale_range)
        self.val_set = SegmentationDataset(self.val_files.samples, request.crop, train=False, ignore_index=request.ignore_index)

    def _common_settings(self) -> dict[str, Any]:
        """What makes two runs comparable: everything but where outputs go and how many workers load data."""
        request, weights_id = self.request, None
        if request.weights:
            stat = request.weights.stat()
            weights_id = f"{request.weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        settings = asdict(self.settings)
        settings["weight_decay"] = self.settings.resolved_weight_decay
        for transient in ("num_workers", "checkpoint_every"):
            settings.pop(transient)
        return {
            "model": request.model, "kwargs": request.kwargs, "weights": weights_id,
            "data": str(Path(request.data).resolve()), "scale_range": list(request.scale_range),
            "world_size": self.ctx.world_size, **settings,
        }

    def public_settings(self) -> dict[str, Any]:
        settings = dict(self.common)
        settings.update(repeats=self.request.repeats, seed=self.request.seed,
                        weights=str(self.request.weights) if self.request.weights else None,
                        checkpoint_every=self.settings.checkpoint_every, num_workers=self.settings.num_workers)
        return settings

    # -- one run -------------------------------------------------------------------------------------------

    def build(self, variant: Variant, seed: int) -> torch.nn.Module:
        loop.seed_everything(seed)  # same seed → same initialisation under every variant
        model = self._load_model(self.request.model, self.request.kwargs, device="cpu").model
        if self.weights is not None and self.request.weights is not None:
            load_weights(model, self.weights, self.request.weights)
        apply_variant(model, self.heads, variant)
        return model.to(self.device)

    def run(self, variant: Variant, seed: int, checkpoint: Path, on_step: Optional[Callable[[int, float], None]]) -> RunResult:
        run_id = _run_id(variant, seed)
        fingerprint = _fingerprint(self.common, variant)
        model = self.build(variant, seed)
        out_of_memory = False
        try:
            stats = loop.train(model, self.train_set, self.settings, seed, self.device, self.ctx,
                               checkpoint=checkpoint, checkpoint_tag={"fingerprint": fingerprint, "seed": seed},
                               on_step=on_step)
        except torch.OutOfMemoryError:
            out_of_memory = True  # handled outside the except block, so the traceback no longer pins the model
        if out_of_memory:
            del model
            self._out_of_memory(variant, seed)
        self.reporter.evaluating(run_id)
        try:
            confusion = loop.evaluate(model, self.val_set, self.settings, self.device, self.ctx)
        except torch.OutOfMemoryError:
            hint = "use --eval slide (windows of the crop size)" if self.settings.eval_mode == "whole" else "use a smaller --crop"
            raise AdvisorError(
                f"out of memory on {device_name(self.device)} evaluating {variant.name}: {hint}; the trained weights of "
                f"this run are lost, finished runs are kept"
            ) from None
        per_class, miou = loop.iou_from_confusion(confusion)
        return RunResult(
            variant=variant.name, seed=seed, steps=self.settings.steps, miou=miou, per_class_iou=per_class,
            images_per_second=stats.images_per_second, train_seconds=stats.seconds, final_loss=stats.final_loss,
            resumed_from_step=stats.resumed_from, fingerprint=fingerprint,
        )

    def _free(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _out_of_memory(self, variant: Variant, seed: int) -> None:
        """Turn an out-of-memory error into one line that names a batch size that fits."""
        self._free()

        def try_batch(batch: int) -> None:
            model = self.build(variant, seed)
            try:
                loop.train_step_probe(model, self.settings, batch, self.device)
            finally:
                del model
                self._free()

        fits = largest_fitting_batch(try_batch, self.settings.batch_size)
        where = f"{device_name(self.device)} ({self.device})"
        done = "finished variants are kept; " if any(self.request.out.glob("runs/*.json")) else ""
        if fits is None:
            raise AdvisorError(
                f"out of memory on {where} training {variant.name} at crop {fmt.crop(self.request.crop)}, "
                "even at --batch-size 1: use a smaller --crop or a smaller model"
            )
        raise AdvisorError(
            f"out of memory on {where} training {variant.name} at --batch-size {self.settings.batch_size} and crop "
            f"{fmt.crop(self.request.crop)}: --batch-size {fits} fits; {done}rerun with --batch-size {fits} "
            "and a new --out (runs at another batch size are not comparable)"
        )


def largest_fitting_batch(try_batch: Callable[[int], None], failed: int) -> Optional[int]:
    """Halve ``failed`` until ``try_batch(b)`` stops raising ``torch.OutOfMemoryError``; None if even 1 fails."""
    batch = failed // 2
    while batch >= 1:
        try:
            try_batch(batch)
            return batch
        except torch.OutOfMemoryError:
            batch //= 2
    return None


def _best(variants: Sequence[VariantResult]) -> Optional[str]:
    """The variant with the highest mean mIoU; None when that top score is shared (nothing to choose)."""
    ranked = sorted(variants, key=lambda v: float("-inf") if v.miou is None else v.miou, reverse=True)
    if not ranked or (len(ranked) > 1 and ranked[0].miou == ranked[1].miou):
        return None
    return ranked[0].name


def build_report(job: _Job, finished: dict[str, RunResult]) -> ValidateReport:
    request = job.request
    variants = [
        _variant_result(v, [finished[_run_id(v, request.seed + i)] for i in range(request.repeats) if _run_id(v, request.seed + i) in finished], request)
        for v in job.variants
    ]
    complete = [v for v in variants if v.complete and v.miou is not None]
    return ValidateReport(
        model=request.model, data=str(request.data), layout=cast(Literal["folders", "cityscapes"], job.train_files.layout), crop=request.crop,
        num_classes=job.num_classes, device=job.device.type, device_name=device_name(job.device),
        world_size=job.ctx.world_size, settings=job.public_settings(), variants=variants,
        best=_best(complete),
        complete=all(v.complete for v in variants), notes=job.notes,
    )


def write_outputs(report: ValidateReport, out: Path) -> None:
    atomic_write_text(out / "results.json", report.model_dump_json(indent=2) + "\n")
    atomic_write_text(out / "results.csv", results_csv(report))
    if any(v.miou is not None for v in report.variants):
        atomic_write_bytes(out / "miou_vs_rate.png", plot_png(report))


def _step_reporter(reporter: Reporter, run_id: str) -> Callable[[int, float], None]:
    def on_step(step: int, loss: float) -> None:
        reporter.step(run_id, step, loss)

    return on_step


@user_code()  # the model runs in here: it prints to stderr and cannot end the process
def run_validation(request: ValidateRequest, reporter: Optional[Reporter] = None) -> ValidateReport:
    """Train and evaluate every (variant, seed) not already finished in ``request.out``; return the report.

    Only rank 0 writes, holding an exclusive lock on ``request.out`` (a second run into the same folder is
    refused naming the first one's PID, or waits with ``wait``); every rank returns the same report.
    """
    reporter = reporter or SilentReporter()
    out = Path(request.out)
    check_out(out)
    job = _Job(request, reporter)  # every input is checked before --out is created or locked
    if not job.ctx.is_main:
        return _run_validation(job, request, reporter)

    def waiting(pid: str) -> None:
        sys.stderr.write(f"waiting for validate process {pid or '(unknown)'} to finish writing {out}\n")

    try:
        with folder_lock(out, LOCK, wait=request.wait, on_wait=waiting):
            check_out(out)  # again, now that no other run can be writing there
            check_writable(out, "--out")  # before an hour of training, not after
            return _run_validation(job, request, reporter)
    except FolderLockedError as exc:
        raise InputError(
            f"--out {out}: validate process {exc.pid or '(unknown)'} is writing there; wait for it (--wait) or "
            "choose another --out"
        ) from None


def _clean_out(out: Path, finished: dict[str, RunResult]) -> None:
    """Leftovers of killed runs: temp files of interrupted writes, checkpoints of runs that did finish."""
    remove_stale_temp_files(out, recursive=True)
    for run_id in finished:
        (out / "checkpoints" / f"{run_id}.pt").unlink(missing_ok=True)


def _run_validation(job: _Job, request: ValidateRequest, reporter: Reporter) -> ValidateReport:
    ctx, out = job.ctx, Path(request.out)
    runs_dir, checkpoints = out / "runs", out / "checkpoints"

    plan = [(v, request.seed + i) for v in job.variants for i in range(request.repeats)]
    finished: dict[str, RunResult] = {}
    for variant, seed in plan:
        record = _read_run(runs_dir / f"{_run_id(variant, seed)}.json")
        if record is None:
            continue
        if record.fingerprint != _fingerprint(job.common, variant):
            raise InputError(
                f"{out} holds a finished run {_run_id(variant, seed)} made with other settings: "
                "use another --out (or delete that folder) to start a new comparison"
            )
        finished[_run_id(variant, seed)] = record
    finished = ctx.broadcast(finished)  # rank 0's view of the disk decides for everyone
    if ctx.is_main:
        _clean_out(out, finished)

    if ctx.is_main:
        reporter.plan([_run_id(v, s) for v, s in plan], request.steps)
    for variant, seed in plan:
        run_id = _run_id(variant, seed)
        if run_id in finished:
            if ctx.is_main:
                reporter.skip(run_id, finished[run_id])
            continue
        if ctx.is_main:
            reporter.start(run_id)
        checkpoint = checkpoints / f"{run_id}.pt"
        result = job.run(variant, seed, checkpoint, on_step=_step_reporter(reporter, run_id) if ctx.is_main else None)
        finished[run_id] = result
        if ctx.is_main:
            atomic_write_text(runs_dir / f"{run_id}.json", result.model_dump_json(indent=2) + "\n")
            checkpoint.unlink(missing_ok=True)
            write_outputs(build_report(job, finished), out)
            reporter.finish(run_id, result)
        ctx.barrier()
    report = build_report(job, finished)
    if ctx.is_main:
        write_outputs(report, out)
    ctx.barrier()
    return report
