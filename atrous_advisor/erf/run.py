"""``erf`` as a library call: a request in, the PNG and ``.npy`` map(s) written, an ErfReport out."""

from __future__ import annotations

import copy
from pathlib import Path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional, Sequence, cast

import numpy as np

from atrous_advisor.erf.accumulate import (
    ErfAccumulation,
    _check_counts,
    accumulate_erf,
    dataset_batches,
    noise_batches,
)
from atrous_advisor.erf.render import ErfPanel, atomic_render, panel_notes
from atrous_advisor.erf.star import (
    FloatPair,
    IntPair,
    StarMeasurement,
    StarPrediction,
    fit_gaussian,
    measure_star,
    nonzero_extent,
    predict_star,
    star_centre,
)
from atrous_advisor.errors import DataError, InputError
from atrous_advisor.files import atomic_path, check_writable
from atrous_advisor.report import format as fmt
from atrous_advisor.runtime import resolve_device, set_cpu_threads
from atrous_advisor.usercode import user_code

if TYPE_CHECKING:  # pragma: no cover
    import torch

# --------------------------------------------------------------------------------------------------------------
# The whole measurement: model spec in, files written, report out (what the CLI calls)

ProgressFactory = Callable[[str, int], Callable[[int], None]]
"""``factory(description, total_images)`` starts a progress display and returns its ``advance(n)``."""


def output_paths(out: Path, compare: bool) -> dict[str, Path]:
    """The files ``erf`` writes for ``--out out.png``: the PNG and the raw map(s) beside it."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InputError(f"--out {out}: the heatmap is written as PNG; name it *.png")
    paths = {"png": out, "current": out.with_suffix(".npy")}
    if compare:
        paths["suggested"] = out.with_name(out.stem + ".suggested.npy")
    return paths


def check_outputs(paths: dict[str, Path], force: bool) -> None:
    """Refuse to replace existing files unless ``force``: nothing the user has is overwritten unasked."""
    for p in paths.values():
        if p.is_symlink() and not p.exists():
            raise InputError(f"--out {p}: a symlink to a missing file; remove it or choose another --out")
    check_writable(paths["png"].parent, "--out")
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not force:
        raise InputError(f"{', '.join(existing)} already exist(s); pass --force to overwrite or choose another --out")
    for p in paths.values():
        if p.exists() and p.is_dir():
            raise InputError(f"--out {p}: is a directory")


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def _find_aspp(model, crop: IntPair, warnings: list[str]):
    """The ASPP head ``inspect`` detects (the one nearest the output when there are several), or None."""
    from atrous_advisor.graph.heads import find_heads

    heads = [h for h in find_heads(model, crop) if h.kind == "aspp" and h.rates]
    if not heads:
        return None
    if len(heads) > 1:
        warnings.append(f"{len(heads)} ASPP heads found; the star is predicted for the last, {heads[-1].name}")
    return heads[-1]


def _open_dataset(data: Path, crop: IntPair):
    """The whole images of the val split (else train) of a dataset folder in a layout ``validate`` reads."""
    from atrous_advisor.train.data import SegmentationDataset, detect_layout, discover  # shared with ``validate``

    data = Path(data)
    val_dir = data / "leftImg8bit" / "val" if detect_layout(data) == "cityscapes" else data / "val"
    # Train only when there is no val split at all: a broken val split is reported, not silently replaced.
    files = discover(data, "val" if val_dir.is_dir() else "train")
    return SegmentationDataset(files.samples, crop, train=False)


def _measurement(
    name: Literal["current", "suggested"],
    acc: ErfAccumulation,
    star: Optional[StarPrediction],
    stride: IntPair,
    npy: Path,
    extent_threshold: float,
):
    from atrous_advisor.report.erf_models import Blobs, ErfMeasurement, Gaussian

    measured = measure_star(acc.erf, star.centre if star is not None else acc.centre_input, stride, halves=acc.halves)
    extent = nonzero_extent(acc.erf, extent_threshold)
    fit = fit_gaussian(acc.erf, acc.centre_input)
    predicted = star.span if star is not None else None
    ratio = tuple(
        (m / p if m is not None and p else None) for m, p in zip(measured.span, predicted or (None, None))
    )
    H, W = acc.erf.shape
    outside = 0
    if star is not None:
        outside = sum(1 for t in star.taps() if not (0 <= t.y <= H - 1 and 0 <= t.x <= W - 1))
    result = ErfMeasurement(
        name=name,
        rates=list(star.rates) if star is not None else None,
        predicted_span=predicted,
        measured_span=_rounded_pair(measured.span, 2),
        span_ratio=_rounded_pair(ratio, 4),
        blobs=Blobs(rows=_rounded(measured.rows.positions, 2), cols=_rounded(measured.cols.positions, 2)),
        measured_extent=extent.size if extent else None,
        extent_box=extent.box if extent else None,
        extent_threshold=extent_threshold,
        taps_outside_crop=outside,
        gaussian=Gaussian(centre=_rounded_floats(fit.centre, 2), centre_shift=_rounded_floats(fit.centre_shift, 2),
                          sigma=_rounded_floats(fit.sigma, 2), method=cast(Literal["curve_fit", "moments"], fit.method),
                          moment_sigma=_rounded_floats(fit.moment_sigma, 2))
        if fit
        else None,
        npy=str(npy),
    )
    return result, measured


def _short_name(spec: str) -> str:
    """``path/to/net.py:build`` → ``net.py:build``; ``pkg.mod:deeplabv3_resnet50`` → ``deeplabv3_resnet50``."""
    where, _, attr = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if where.endswith(".py"):
        return Path(where).name + (f":{attr}" if attr else "")
    return attr or Path(spec).name


def _star_centre_of(acc: ErfAccumulation, stride: Sequence[int]) -> FloatPair:
    return star_centre(acc.centre_output, acc.output_size, acc.erf.shape, stride)


def _as_list(notes) -> list[str]:
    if not notes:
        return []
    return [notes] if isinstance(notes, str) else [str(n) for n in notes]


def _rounded(values, digits: int) -> list:
    return [None if v is None else round(float(v), digits) for v in values]


def _rounded_pair(values, digits: int) -> tuple[Optional[float], Optional[float]]:
    h, w = _rounded(values, digits)
    return (h, w)


def _rounded_floats(values, digits: int) -> tuple[float, float]:
    h, w = values
    return (round(float(h), digits), round(float(w), digits))


@dataclass(frozen=True)
class ErfRequest:
    """What ``erf`` was asked, as typed: checked by :meth:`check` before torch is imported or a model built."""

    model: str
    crop: IntPair
    out: Path
    data: Optional[Path] = None
    noise: bool = False
    images: int = 16
    weights: Optional[Path] = None
    kwargs: Optional[dict] = None
    batch_size: int = 8
    device: str = "auto"
    threads: Optional[int] = None  # None: runtime's default on CPU
    log: bool = False
    compare: bool = False
    force: bool = False
    seed: int = 0
    extent_threshold: float = 0.0

    def check(self) -> dict[str, Path]:
        """Every user input checked; the files that will be written (none of them exists, unless ``force``)."""
        if self.data is not None and self.noise:
            raise InputError("--data and --noise exclude each other: measure on a dataset or on noise, not both")
        if not 0.0 <= self.extent_threshold < 1.0:
            raise InputError(f"--extent-threshold {self.extent_threshold}: must be in [0, 1)")
        _check_counts(self.images, self.batch_size)
        paths = output_paths(self.out, self.compare)
        check_outputs(paths, self.force)
        if self.data is not None and not Path(self.data).is_dir():
            raise DataError(f"--data {self.data}: no such folder")
        return paths


@dataclass
class _Variants:
    """The model as built and, with ``--compare``, a copy under the suggested rates."""

    model: "torch.nn.Module"
    head: Optional[Any]  # the ASPP HeadSite, or None
    suggested_model: Optional["torch.nn.Module"] = None
    suggested_rates: Optional[list[IntPair]] = None
    notes: list[str] = field(default_factory=list)


def _build(request: ErfRequest, warnings: list[str]) -> _Variants:
    """Load the model (and weights), find its ASPP, and make the suggested copy the one assessment asks for."""
    import torch

    from atrous_advisor.graph.loading import load_model
    from atrous_advisor.graph.weights import load_weights, read_weights

    torch.manual_seed(request.seed)  # a randomly initialised model is then the same model on every run
    loaded = load_model(request.model, request.kwargs, device="cpu")
    model = loaded.model
    if request.weights is not None:
        path = Path(request.weights)
        load_weights(model, read_weights(path), path)
    head = _find_aspp(model, request.crop, warnings)
    variants = _Variants(model, head, notes=_as_list(getattr(loaded, "notes", None)))
    if head is None:
        warnings.append("no ASPP head detected: nothing to predict the star from (predicted_span is null)")
        if request.compare:
            raise InputError(f"--compare needs an ASPP head to change the rates of; none found in {request.model}")
        return variants
    if request.compare:
        from atrous_advisor.geometry import assess_aspp
        from atrous_advisor.graph.surgery import apply_rates

        assessment = assess_aspp(head.rates, request.crop, tuple(head.stride), feature_map=tuple(head.feature_map))
        if assessment.suggested_rates is None:
            raise InputError(f"--compare: no rates can be suggested: {assessment.reason}")
        variants.suggested_rates = assessment.suggested_rates
        variants.suggested_model = copy.deepcopy(model)
        apply_rates(variants.suggested_model, head, assessment.suggested_rates)
        if assessment.suggested_rates == [tuple(r) for r in head.rates]:
            warnings.append("the model's rates already are the suggested ones: both panels show the same rates")
    return variants


def _measure(net: "torch.nn.Module", label: str, request: ErfRequest, dataset, device: str,
             progress: Optional[ProgressFactory]) -> ErfAccumulation:
    count = request.images if dataset is None else min(request.images, len(dataset))
    advance = progress(f"ERF ({label})", count) if progress else None
    if dataset is not None:
        batches = dataset_batches(dataset, request.crop, request.images, request.batch_size)
    else:
        batches = noise_batches(request.crop, request.images, request.batch_size, seed=request.seed)
    return accumulate_erf(net, batches, device=device, progress=advance)


@user_code()  # the model runs in here: it prints to stderr and cannot end the process
def run_erf(request: ErfRequest, progress: Optional[ProgressFactory] = None):
    """Measure the ERF of ``request.model`` at its crop, write the PNG and ``.npy`` map(s), return an ErfReport."""
    from atrous_advisor.report.erf_models import AsppSite, ErfReport

    paths = request.check()  # everything the user typed, before torch is imported or a model is built
    dataset = _open_dataset(Path(request.data), request.crop) if request.data is not None else None
    import torch

    resolved = resolve_device(request.device)
    set_cpu_threads(request.threads, resolved.type)
    device = str(resolved)
    warnings: list[str] = []
    variants = _build(request, warnings)
    head = variants.head
    if dataset is not None and len(dataset) < request.images:
        warnings.append(f"--images {request.images}: the dataset has only {len(dataset)}; measured on all of them")

    acc = _measure(variants.model, "current", request, dataset, device, progress)
    stride = tuple(head.stride) if head is not None else (1, 1)
    star = predict_star(head.rates, head.stride, _star_centre_of(acc, head.stride)) if head is not None else None
    paths["png"].parent.mkdir(parents=True, exist_ok=True)
    _atomic_save_npy(paths["current"], acc.erf.astype(np.float32))
    current, current_peaks = _measurement("current", acc, star, stride, paths["current"], request.extent_threshold)
    title = _short_name(request.model)
    panels = [ErfPanel(acc.erf, f"{title}\ncurrent rates" if request.compare else title,
                       star.centre if star is not None else acc.centre_input,
                       star, current_peaks, panel_notes(current))]
    suggested = None
    seconds, total_images = acc.seconds, acc.images
    if variants.suggested_model is not None and head is not None and variants.suggested_rates is not None:
        if device.startswith("cuda"):  # the current variant is measured: free the GPU for the copy
            variants.model.to("cpu")
            torch.cuda.empty_cache()
        acc_s = _measure(variants.suggested_model, "suggested", request, dataset, device, progress)
        seconds, total_images = seconds + acc_s.seconds, total_images + acc_s.images
        star_s = predict_star(variants.suggested_rates, head.stride, _star_centre_of(acc_s, head.stride))
        _atomic_save_npy(paths["suggested"], acc_s.erf.astype(np.float32))
        suggested, peaks_s = _measurement("suggested", acc_s, star_s, stride, paths["suggested"],
                                          request.extent_threshold)
        panels.append(ErfPanel(acc_s.erf, f"{title}\nsuggested rates", star_s.centre, star_s, peaks_s,
                               panel_notes(suggested)))
        panels[0].title += f" {fmt.rates(head.rates)}"
        panels[1].title += f" {fmt.rates(variants.suggested_rates)}"
    atomic_render(panels, paths["png"], request.log)
    if device.startswith("cuda"):
        torch.cuda.empty_cache()

    return ErfReport(
        model=request.model,
        crop=request.crop,
        device=device,
        source="data" if dataset is not None else "noise",
        data=str(request.data) if request.data is not None else None,
        weights=str(request.weights) if request.weights is not None else None,
        images=acc.images,
        batch_size=request.batch_size,
        seed=request.seed,
        seconds=seconds,
        images_per_second=total_images / seconds if seconds > 0 else 0.0,
        output_size=acc.output_size,
        centre=acc.centre_input,
        star_centre=star.centre if star is not None else None,
        aspp=AsppSite(name=head.name, rates=[tuple(r) for r in head.rates], stride=tuple(head.stride),
                      feature_map=tuple(head.feature_map)) if head is not None else None,
        predicted_span=current.predicted_span,
        measured_span=current.measured_span,
        span_ratio=current.span_ratio,
        measured_extent=current.measured_extent,
        gaussian=current.gaussian,
        current=current,
        suggested=suggested,
        png=str(paths["png"]),
        log_scale=request.log,
        warnings=[*variants.notes, *warnings],
    )
