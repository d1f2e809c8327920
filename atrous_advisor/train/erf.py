"""Effective receptive field (ERF) of a segmentation network, measured by autograd (paper Eq. 1).

For every image: the gradient of the centre output pixel, summed over classes, with respect to the input;
summed over colour channels; negatives clipped to zero; accumulated over images.

Batching: the centre outputs of the images in one batch are independent samples as long as nothing mixes
samples, so the gradient of their *sum* with respect to the batch is the stack of the per-image gradients —
one backward per batch instead of one per image. BatchNorm in training mode does mix samples (batch
statistics), which is why the model always runs in eval mode here.

Then the measurement side, all numpy/scipy on the accumulated map:

- ``predict_star``: the analytic taps of a detected ASPP — for a branch of rate (rh, rw) at stride (sh, sw),
  the 3×3 taps sit at the centre ± (rh·sh, rw·sw) px; the outermost branch gives the span 2·n·r·s.
- ``measure_star``: the outermost blobs found as local maxima of the central row and column profiles.
- ``nonzero_extent``: the bounding box of the non-zero map.
- ``fit_gaussian``: a 2-D Gaussian (moments as the start, then ``scipy.optimize.curve_fit``).
- ``render_erf_png``: one or more heatmaps with the crop drawn and the predicted taps overlaid.

No torch import at module level is needed by callers that only analyse a saved ``.npy``; torch is imported
where the gradients are computed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Literal, Optional, Sequence, cast

import numpy as np

from atrous_advisor.files import atomic_path, check_writable
from atrous_advisor.errors import DataError, InputError, ModelLoadError
from atrous_advisor.report import format as fmt
from atrous_advisor.runtime import resolve_device, set_cpu_threads
from atrous_advisor.usercode import user_code

if TYPE_CHECKING:  # pragma: no cover
    import torch

IntPair = tuple[int, int]
FloatPair = tuple[float, float]

DEFAULT_PEAK_HEIGHT = 0.05
"""A blob counts as a star tap when its peak reaches this fraction of the profile's maximum…"""

DEFAULT_PEAK_PROMINENCE = 0.05
"""…and stands out from its surroundings by this fraction of its own height…"""

DEFAULT_NOISE_FACTOR = 3.0
"""…and by this many times the local noise of the accumulation (estimated from two half-maps)."""


# --------------------------------------------------------------------------------------------------------------
# Inputs


def noise_batches(
    crop: IntPair, images: int, batch_size: int, seed: int = 0, channels: int = 3
) -> Iterator["torch.Tensor"]:
    """``images`` standard-normal images (already "normalised") in batches of at most ``batch_size``.

    The generator is seeded, so the same arguments give the same images whatever the batch size.
    """
    import torch

    _check_counts(images, batch_size)
    gen = torch.Generator().manual_seed(seed)
    all_images = torch.randn((images, channels, *crop), generator=gen)
    for start in range(0, images, batch_size):
        yield all_images[start : start + batch_size]


def fit_to_crop(image: "torch.Tensor", crop: IntPair) -> "torch.Tensor":
    """Centre-crop a CHW image to ``crop``, zero-padding (the normalised mean) an axis that is too short."""
    import torch.nn.functional as F

    h, w = image.shape[-2:]
    ch, cw = crop
    top, left = max(0, (h - ch) // 2), max(0, (w - cw) // 2)
    image = image[..., top : top + ch, left : left + cw]
    h, w = image.shape[-2:]
    if (h, w) != (ch, cw):
        pad_h, pad_w = ch - h, cw - w
        image = F.pad(image, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    return image


def dataset_batches(dataset, crop: IntPair, images: int, batch_size: int) -> Iterator["torch.Tensor"]:
    """Images of a dataset (items ``image`` or ``(image, mask, …)``), fitted to the crop, in batches."""
    import torch

    _check_counts(images, batch_size)
    available = len(dataset)
    if available == 0:
        raise DataError("the dataset has no images")
    count = min(images, available)
    batch: list[torch.Tensor] = []
    for index in range(count):
        item = dataset[index]
        image = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(image, torch.Tensor) or image.ndim != 3:
            raise DataError(f"dataset item {index}: expected a CHW image tensor, got {type(image).__name__}")
        batch.append(fit_to_crop(image.float(), crop))
        if len(batch) == batch_size:
            yield torch.stack(batch)
            batch = []
    if batch:
        yield torch.stack(batch)


def _check_counts(images: int, batch_size: int) -> None:
    if images <= 0:
        raise InputError(f"--images {images}: must be a positive integer")
    if batch_size <= 0:
        raise InputError(f"--batch-size {batch_size}: must be a positive integer")


# --------------------------------------------------------------------------------------------------------------
# Accumulation


@dataclass(frozen=True)
class ErfAccumulation:
    """The accumulated ERF over the input crop and where it was taken."""

    erf: np.ndarray  # (H, W) float64, ≥ 0
    halves: np.ndarray  # (2, H, W): the sums over even- and odd-numbered images (erf = their sum)
    images: int
    output_size: IntPair  # spatial size of the model's primary output
    centre_output: IntPair  # index of the output pixel whose gradient was taken
    centre_input: FloatPair  # that pixel's position in input pixel coordinates
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("inf")


def centre_pixel(output_size: IntPair, input_size: IntPair) -> tuple[IntPair, FloatPair]:
    """The centre output pixel (index ``size // 2``) and its centre in input pixel coordinates.

    An output at the input's resolution maps index to index; a coarser output of stride s = L / size maps
    index i to i·s, where the features of a conv backbone with 'same' padding ((k_eff − 1)/2) are centred.
    """
    index = (output_size[0] // 2, output_size[1] // 2)
    position = tuple(float(i * L / o) for i, o, L in zip(index, output_size, input_size))
    return index, position  # type: ignore[return-value]


def _out_of_memory(batch: int, device: str) -> InputError:
    hint = f"--batch-size {max(1, batch // 2)}" if batch > 1 else "a smaller --crop or --device cpu"
    return InputError(f"out of memory on {device} with batches of {batch} images: try {hint}")


def accumulate_erf(
    model: "torch.nn.Module",
    batches: Iterable["torch.Tensor"],
    device: str = "cpu",
    progress: Optional[Callable[[int], None]] = None,
) -> ErfAccumulation:
    """Run ``model`` (eval mode, on ``device``) on every batch and accumulate paper Eq. 1 over the images.

    ``progress(n)`` is called after each batch with the number of images it held.
    """
    import torch

    from atrous_advisor.graph.loading import primary_output  # dict → "out", tuple → first: as `inspect` reads it

    model.eval()
    model.to(device)
    # Only the input gradient is needed: parameters that do not require grad skip their weight gradients.
    saved_flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in saved_flags:
        p.requires_grad_(False)
    total: Optional[torch.Tensor] = None
    images = 0
    output_size = centre_index = None
    centre_position: FloatPair = (0.0, 0.0)
    input_size: Optional[IntPair] = None
    start = time.perf_counter()
    try:
        with torch.enable_grad():
            for batch in batches:
                x = batch.to(device, dtype=torch.float32, non_blocking=True).requires_grad_(True)
                size = (int(x.shape[-2]), int(x.shape[-1]))
                if input_size is None:
                    input_size = size
                elif size != input_size:
                    raise DataError(f"batch of size {fmt.crop(size)} after batches of {fmt.crop(input_size)}")
                try:
                    out = primary_output(model(x))
                except torch.OutOfMemoryError as exc:
                    raise _out_of_memory(x.shape[0], device) from exc
                except (RuntimeError, ValueError, TypeError) as exc:
                    raise ModelLoadError(
                        f"forward pass failed at {fmt.crop(size)}: {' '.join(str(exc).split())[:300]}"
                    ) from exc
                if out.ndim != 4:
                    raise ModelLoadError(f"the model's output has shape {tuple(out.shape)}, expected (N, classes, H, W)")
                if output_size is None:
                    output_size = (int(out.shape[-2]), int(out.shape[-1]))
                    centre_index, centre_position = centre_pixel(output_size, input_size)
                assert centre_index is not None  # set with output_size by the first batch
                cy, cx = centre_index
                # Σ over the batch and the classes of the centre outputs: each image's input gradient is its own.
                try:
                    (grad,) = torch.autograd.grad(out[:, :, cy, cx].sum(), x)
                except torch.OutOfMemoryError as exc:
                    raise _out_of_memory(x.shape[0], device) from exc
                per_image = grad.sum(dim=1).clamp_(min=0)  # Σ colour channels, then clip negatives (Eq. 1)
                # Two half-maps, even- and odd-numbered images: their difference measures the noise.
                parity = (torch.arange(per_image.shape[0], device=per_image.device) + images) % 2
                halves = torch.stack([per_image[parity == k].sum(dim=0, dtype=torch.float64) for k in (0, 1)])
                total = halves if total is None else total + halves
                images += int(x.shape[0])
                if progress is not None:
                    progress(int(x.shape[0]))
    finally:
        for p, flag in saved_flags:
            p.requires_grad_(flag)
    if total is None:
        raise DataError("no images to measure the ERF on")
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return ErfAccumulation(
        erf=total.sum(dim=0).cpu().numpy(),
        halves=total.cpu().numpy(),
        images=images,
        output_size=output_size,  # type: ignore[arg-type]
        centre_output=centre_index,  # type: ignore[arg-type]
        centre_input=centre_position,
        seconds=seconds,
    )


# --------------------------------------------------------------------------------------------------------------
# The analytic star


@dataclass(frozen=True)
class StarTap:
    y: float
    x: float
    rate: IntPair  # the branch it belongs to; (0, 0) for the centre


@dataclass(frozen=True)
class StarPrediction:
    """Where the dilated 3×3 branches of an ASPP at ``stride`` read, around the centre output pixel."""

    rates: tuple[IntPair, ...]
    stride: IntPair
    centre: FloatPair

    @property
    def span(self) -> IntPair:
        """Centre-to-centre distance of the outermost taps: 2·(largest rate)·s per axis (2·n·r·s)."""
        return (
            2 * max(r[0] for r in self.rates) * self.stride[0],
            2 * max(r[1] for r in self.rates) * self.stride[1],
        )

    def taps(self) -> list[StarTap]:
        cy, cx = self.centre
        sh, sw = self.stride
        taps = [StarTap(cy, cx, (0, 0))]
        for rh, rw in self.rates:
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if dy or dx:
                        taps.append(StarTap(cy + dy * rh * sh, cx + dx * rw * sw, (rh, rw)))
        return taps


def star_centre(centre_output: IntPair, output_size: IntPair, input_size: IntPair, stride: Sequence[int]) -> FloatPair:
    """Where the head's centre feature reads, for the centre output pixel, in input pixel coordinates.

    Head features of stride s sit at input i·s (conv backbones with 'same' padding). An output at the input's
    resolution was upsampled from them bilinearly without corner alignment (torchvision, smp, mmseg): output
    pixel i interpolates the features around (i + 0.5)/s − 0.5, i.e. input position i + (1 − s)/2. A coarser
    output pixel i is the feature at i·(L/size).
    """
    position = []
    for i, o, L, s in zip(centre_output, output_size, input_size, stride):
        position.append(float(i) + (1 - int(s)) / 2 if o == L else float(i * L / o))
    return (position[0], position[1])


def predict_star(rates: Sequence[Sequence[int]], stride: Sequence[int], centre: Sequence[float]) -> StarPrediction:
    if not rates:
        raise InputError("an ASPP star needs at least one dilated branch")
    return StarPrediction(
        rates=tuple((int(r[0]), int(r[1])) for r in rates),
        stride=(int(stride[0]), int(stride[1])),
        centre=(float(centre[0]), float(centre[1])),
    )


# --------------------------------------------------------------------------------------------------------------
# Measurements on the map


@dataclass(frozen=True)
class AxisPeaks:
    """Local maxima of one profile through the centre (positions in input px, sub-pixel)."""

    positions: tuple[float, ...]
    heights: tuple[float, ...]
    centre: float  # the centre of the star along this axis
    tolerance: float  # a blob closer than this to the centre is the centre blob

    @property
    def span(self) -> Optional[float]:
        """Distance between the outermost maxima — None unless there is a blob on each side of the centre.

        (One side alone is not a span: the other side's outer blob was too faint to be told from its
        neighbour or from noise; ``positions`` still lists what was found.)
        """
        before = [p for p in self.positions if p < self.centre - self.tolerance]
        after = [p for p in self.positions if p > self.centre + self.tolerance]
        if not before or not after:
            return None
        return max(after) - min(before)


@dataclass(frozen=True)
class StarMeasurement:
    rows: AxisPeaks  # along the central column: blob positions in y
    cols: AxisPeaks  # along the central row: blob positions in x
    band: IntPair  # half-width (px) of the band around the centre row / column that the profiles take the max over
    smoothing: float  # σ (px) of the Gaussian smoothing before peak finding

    @property
    def span(self) -> tuple[Optional[float], Optional[float]]:
        return (self.rows.span, self.cols.span)


def _refine(profile: np.ndarray, index: int) -> float:
    """Sub-pixel position of a maximum by a parabola through it and its neighbours."""
    if 0 < index < len(profile) - 1:
        left, mid, right = profile[index - 1], profile[index], profile[index + 1]
        denom = left - 2 * mid + right
        if denom < 0:
            return index + 0.5 * (left - right) / denom
    return float(index)


def _profile_peaks(
    profile: np.ndarray,
    centre: float,
    min_distance: int,
    rel_height: float,
    rel_prominence: float,
    noise: Optional[np.ndarray] = None,
    noise_factor: float = 3.0,
) -> AxisPeaks:
    from scipy.signal import find_peaks

    top = float(profile.max()) if profile.size else 0.0
    if top <= 0:
        return AxisPeaks((), (), centre, float(min_distance))
    peaks, props = find_peaks(profile, height=rel_height * top, prominence=0.0, distance=max(1, min_distance))
    # A blob stands out from what surrounds it; a shoulder of a brighter blob, a ripple on a plateau (e.g. the
    # uniform floor of an image-pooling branch) or noise on a broad field does not.
    keep = props["prominences"] >= rel_prominence * props["peak_heights"]
    if noise is not None:  # and it stands out by more than the noise of the accumulation where it is
        keep &= props["prominences"] >= noise_factor * noise[peaks]
    peaks = peaks[keep]
    return AxisPeaks(
        positions=tuple(float(_refine(profile, int(i))) for i in peaks),
        heights=tuple(float(profile[i]) for i in peaks),
        centre=centre,
        tolerance=float(min_distance),
    )


def measure_star(
    erf: np.ndarray,
    centre: Sequence[float],
    stride: Sequence[int] = (1, 1),
    rel_height: float = DEFAULT_PEAK_HEIGHT,
    rel_prominence: float = DEFAULT_PEAK_PROMINENCE,
    halves: Optional[np.ndarray] = None,
    noise_factor: float = DEFAULT_NOISE_FACTOR,
) -> StarMeasurement:
    """Find the star's blobs as local maxima of the central row and column of the ERF.

    The map is first smoothed with a Gaussian of σ = s/2 px (one blob per feature position: with a bilinear
    upsampling head a tap shows as two overlapping copies s px apart). A profile takes, at every position
    along the axis, the mean over a band of ±s px around the centre line (blobs are at least 2s wide, so one
    a few pixels off the centre line still counts; the mean averages the pixel noise of a short
    accumulation). Maxima must be at least s px apart, reach
    ``rel_height`` of the profile's maximum, and rise above their surroundings by ``rel_prominence`` of their
    own height (scipy's prominence).

    With ``halves`` (the maps of the even- and odd-numbered images, summing to ``erf``) a maximum must also
    rise above its surroundings by ``noise_factor`` times the local noise of the accumulation: the two
    halves' profiles differ only by noise, and the RMS of that difference over ±s px estimates the noise of
    the full profile (Var(A − B) = Var(A + B) for independent halves). This keeps noise bumps on the broad
    ERF of a deep, untrained backbone from being reported as star blobs.
    """
    from scipy.ndimage import gaussian_filter, uniform_filter1d

    if erf.ndim != 2:
        raise InputError(f"an ERF map must be 2-D, got shape {erf.shape}")
    sh, sw = (max(1, int(s)) for s in stride)
    sigma = (sh / 2.0, sw / 2.0)
    H, W = erf.shape
    cy = int(round(min(max(centre[0], 0), H - 1)))
    cx = int(round(min(max(centre[1], 0), W - 1)))

    def profiles(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        smooth = gaussian_filter(image.astype(np.float64), sigma=sigma, mode="constant")
        along_x = smooth[max(0, cy - sh) : cy + sh + 1, :].mean(axis=0)
        along_y = smooth[:, max(0, cx - sw) : cx + sw + 1].mean(axis=1)
        return along_y, along_x

    col_profile, row_profile = profiles(erf)
    noise_y = noise_x = None
    if halves is not None and halves.shape == (2, H, W):
        (ay, ax), (by, bx) = profiles(halves[0]), profiles(halves[1])
        # (the running mean of squares can dip a rounding error below zero)
        noise_y = np.sqrt(np.maximum(uniform_filter1d((ay - by) ** 2, size=2 * sh + 1, mode="nearest"), 0.0))
        noise_x = np.sqrt(np.maximum(uniform_filter1d((ax - bx) ** 2, size=2 * sw + 1, mode="nearest"), 0.0))
    return StarMeasurement(
        rows=_profile_peaks(col_profile, float(centre[0]), sh, rel_height, rel_prominence, noise_y, noise_factor),
        cols=_profile_peaks(row_profile, float(centre[1]), sw, rel_height, rel_prominence, noise_x, noise_factor),
        band=(sh, sw),
        smoothing=sigma[0] if sigma[0] == sigma[1] else float(min(sigma)),
    )


@dataclass(frozen=True)
class Extent:
    size: IntPair  # (h, w) px of the bounding box
    box: tuple[int, int, int, int]  # y0, x0, y1, x1 (inclusive)
    threshold: float  # relative to the map's maximum; 0 means strictly non-zero


def nonzero_extent(erf: np.ndarray, threshold: float = 0.0) -> Optional[Extent]:
    """Bounding box of the pixels above ``threshold``·max (strictly > 0 with the default); None if empty."""
    top = float(erf.max()) if erf.size else 0.0
    if top <= 0:
        return None
    mask = erf > threshold * top
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = int(ys[0]), int(ys[-1]), int(xs[0]), int(xs[-1])
    return Extent(size=(y1 - y0 + 1, x1 - x0 + 1), box=(y0, x0, y1, x1), threshold=threshold)


@dataclass(frozen=True)
class GaussianFit:
    centre: FloatPair  # (y, x) px
    centre_shift: FloatPair  # centre − the centre output pixel's position
    sigma: FloatPair  # (σy, σx) px
    method: str  # "curve_fit" or "moments" (when the fit did not converge)
    moment_sigma: FloatPair  # √(second central moment) of the whole map per axis: its overall spread


def _moments(erf: np.ndarray) -> tuple[FloatPair, FloatPair]:
    total = erf.sum()
    ys = np.arange(erf.shape[0], dtype=np.float64)
    xs = np.arange(erf.shape[1], dtype=np.float64)
    py, px = erf.sum(axis=1) / total, erf.sum(axis=0) / total
    my, mx = float(py @ ys), float(px @ xs)
    vy, vx = float(py @ (ys - my) ** 2), float(px @ (xs - mx) ** 2)
    return (my, mx), (math.sqrt(max(vy, 0.0)), math.sqrt(max(vx, 0.0)))


def fit_gaussian(erf: np.ndarray, centre: Sequence[float], max_points: int = 65536) -> Optional[GaussianFit]:
    """Fit an axis-aligned 2-D Gaussian (plus a constant floor) to the map, by least squares from its moments.

    On a star the fit locks onto the bright centre blob; ``moment_sigma`` keeps the spread of the whole map.

    Large maps are subsampled on a regular grid to at most ``max_points`` points. Falls back to the moments
    themselves when the fit fails or wanders off. None for an all-zero map.
    """
    from scipy.optimize import curve_fit

    if erf.size == 0 or float(erf.max()) <= 0:
        return None
    (my, mx), (sy, sx) = _moments(erf)
    cy, cx = float(centre[0]), float(centre[1])
    step = max(1, int(math.ceil(math.sqrt(erf.size / max_points))))
    ys = np.arange(0, erf.shape[0], step, dtype=np.float64)
    xs = np.arange(0, erf.shape[1], step, dtype=np.float64)
    grid_y: np.ndarray
    grid_x: np.ndarray
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    values: np.ndarray = erf[::step, ::step].astype(np.float64)
    scale = float(values.max()) or 1.0

    def gaussian(coords, amplitude, y0, x0, sigma_y, sigma_x, offset):
        gy, gx = coords
        return offset + amplitude * np.exp(-0.5 * (((gy - y0) / sigma_y) ** 2 + ((gx - x0) / sigma_x) ** 2))

    p0 = (1.0, my, mx, max(sy, 1.0), max(sx, 1.0), 0.0)
    method = "moments"
    centre_fit, sigma_fit = (my, mx), (sy, sx)
    if values.size < len(p0):  # fewer pixels than parameters (a crop of 1 or 2 px): nothing to fit
        return GaussianFit((my, mx), (my - cy, mx - cx), (sy, sx), method, (sy, sx))
    try:
        params, _ = curve_fit(
            gaussian,
            (grid_y.ravel(), grid_x.ravel()),
            values.ravel() / scale,
            p0=p0,
            maxfev=2000,
        )
        _, y0, x0, s_y, s_x, _ = (float(v) for v in params)
        inside = 0 <= y0 < erf.shape[0] and 0 <= x0 < erf.shape[1]
        if inside and all(np.isfinite((y0, x0, s_y, s_x))) and abs(s_y) > 0 and abs(s_x) > 0:
            centre_fit, sigma_fit, method = (y0, x0), (abs(s_y), abs(s_x)), "curve_fit"
    except (RuntimeError, ValueError):
        pass
    return GaussianFit(
        centre=centre_fit,
        centre_shift=(centre_fit[0] - cy, centre_fit[1] - cx),
        sigma=sigma_fit,
        method=method,
        moment_sigma=(sy, sx),
    )


# --------------------------------------------------------------------------------------------------------------
# Rendering


@dataclass
class ErfPanel:
    """One heatmap of a figure: the map, where its centre is, and (optionally) the analytic star."""

    erf: np.ndarray
    title: str
    centre: FloatPair
    star: Optional[StarPrediction] = None
    measured: Optional[StarMeasurement] = None
    notes: list[str] = field(default_factory=list)


def render_erf_png(panels: Sequence[ErfPanel], path: Path, log: bool = False, dpi: int = 110) -> Path:
    """Write the panels side by side: heatmap inside the drawn crop, predicted taps as markers.

    The axes extend beyond the crop when taps fall outside it (a branch reading zero padding), so those
    taps stay visible — drawn hollow, in a warning colour.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        erf = panel.erf
        H, W = erf.shape
        top = float(erf.max())
        if log and top > 0:
            positive = erf[erf > 0]
            floor = max(float(positive.min()), top * 1e-6)
            shown = np.where(erf > floor, erf, floor)
            norm: Normalize = LogNorm(vmin=floor, vmax=top)
        else:
            shown, norm = erf, Normalize(vmin=0.0, vmax=top if top > 0 else 1.0)
        image = ax.imshow(shown, cmap="magma", norm=norm, extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Σ clipped ∂out/∂in" + (" (log)" if log else ""))
        ax.add_patch(Rectangle((-0.5, -0.5), W, H, fill=False, edgecolor="#4fc3f7", linewidth=1.5, label=f"crop {H}×{W}"))
        y_lo, y_hi, x_lo, x_hi = -0.5, H - 0.5, -0.5, W - 0.5
        if panel.star is not None:
            taps = panel.star.taps()
            inside = [t for t in taps if 0 <= t.y <= H - 1 and 0 <= t.x <= W - 1]
            outside = [t for t in taps if t not in inside]
            if inside:
                ax.scatter([t.x for t in inside], [t.y for t in inside], s=36, marker="+", c="#00e676",
                           linewidths=1.2, label="predicted taps")
            if outside:
                ax.scatter([t.x for t in outside], [t.y for t in outside], s=40, marker="o", facecolors="none",
                           edgecolors="#ff5252", linewidths=1.2, label="taps in padding")
            y_lo = min(y_lo, min(t.y for t in taps) - 8)
            y_hi = max(y_hi, max(t.y for t in taps) + 8)
            x_lo = min(x_lo, min(t.x for t in taps) - 8)
            x_hi = max(x_hi, max(t.x for t in taps) + 8)
        if panel.measured is not None:
            cy, cx = panel.centre
            ax.scatter(list(panel.measured.cols.positions), [cy] * len(panel.measured.cols.positions), s=60,
                       marker="|", c="#40c4ff", label="measured blobs")
            ax.scatter([cx] * len(panel.measured.rows.positions), list(panel.measured.rows.positions), s=60,
                       marker="_", c="#40c4ff")
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_hi, y_lo)
        ax.set_facecolor("#202020")
        ax.set_title(panel.title, fontsize=10)
        if panel.notes:
            ax.set_xlabel("\n".join(panel.notes), fontsize=8)
    # One legend for the figure, below the panels, so that no tap is hidden under it.
    handles: dict = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


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


def _atomic_render(panels: Sequence[ErfPanel], path: Path, log: bool) -> None:
    with atomic_path(path) as tmp:
        render_erf_png(panels, tmp, log=log)


def load_weights(model: "torch.nn.Module", path: Path) -> None:
    """``--weights``: the same reader and checks as ``validate`` (state dict or checkpoint, strict fit)."""
    from atrous_advisor.train.validate import load_weights as load_state, read_weights

    path = Path(path)
    load_state(model, read_weights(path), path)


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


def _panel_notes(m) -> list[str]:
    notes = []
    if m.predicted_span is not None:
        notes.append(f"predicted span {fmt.px(m.predicted_span, none='—')} · measured {fmt.px(m.measured_span, none='—')}")
    else:
        notes.append(f"measured span {fmt.px(m.measured_span, none='—')} (no ASPP detected)")
    if m.measured_extent is not None:
        notes.append(f"non-zero extent {fmt.px(m.measured_extent, none='—')}")
    if m.taps_outside_crop:
        notes.append(f"{m.taps_outside_crop} predicted taps outside the crop (zero padding)")
    return notes


@user_code()  # the model runs in here: it prints to stderr and cannot end the process
def run_erf(
    model_spec: str,
    crop: IntPair,
    *,
    out: Path,
    data: Optional[Path] = None,
    noise: bool = False,
    images: int = 16,
    weights: Optional[Path] = None,
    kwargs: Optional[dict] = None,
    batch_size: int = 8,
    device: str = "auto",
    threads: Optional[int] = None,
    log: bool = False,
    compare: bool = False,
    force: bool = False,
    seed: int = 0,
    extent_threshold: float = 0.0,
    progress: Optional[ProgressFactory] = None,
):
    """Measure the ERF of ``model_spec`` at ``crop``, write the PNG and ``.npy`` map(s), return an ErfReport."""
    import copy

    from atrous_advisor.report.erf_models import AsppSite, ErfReport

    # Everything the user typed is checked before torch is imported or a model is built.
    if data is not None and noise:
        raise InputError("--data and --noise exclude each other: measure on a dataset or on noise, not both")
    if not 0.0 <= extent_threshold < 1.0:
        raise InputError(f"--extent-threshold {extent_threshold}: must be in [0, 1)")
    _check_counts(images, batch_size)
    paths = output_paths(out, compare)
    check_outputs(paths, force)
    dataset = None
    if data is not None:
        data = Path(data)
        if not data.is_dir():
            raise DataError(f"--data {data}: no such folder")
        dataset = _open_dataset(data, crop)
    import torch

    from atrous_advisor.graph.loading import load_model

    resolved = resolve_device(device)
    set_cpu_threads(threads, resolved.type)
    device = str(resolved)
    warnings: list[str] = []

    torch.manual_seed(seed)  # a randomly initialised model is then the same model on every run
    loaded = load_model(model_spec, kwargs, device="cpu")
    model = loaded.model
    if weights is not None:
        load_weights(model, Path(weights))
    head = _find_aspp(model, crop, warnings)
    if head is None:
        warnings.append("no ASPP head detected: nothing to predict the star from (predicted_span is null)")
        if compare:
            raise InputError(f"--compare needs an ASPP head to change the rates of; none found in {model_spec}")
    suggested_model = None
    suggested_rates = None
    if compare:
        from atrous_advisor.geometry import suggested_rates as suggest
        from atrous_advisor.train.surgery import apply_rates

        suggested_rates = suggest(crop, tuple(head.stride), branches=len(head.rates))
        suggested_model = copy.deepcopy(model)
        apply_rates(suggested_model, head, suggested_rates)
        if [tuple(r) for r in suggested_rates] == [tuple(r) for r in head.rates]:
            warnings.append("the model's rates already are the suggested ones: both panels show the same rates")

    def batches():
        if dataset is not None:
            return dataset_batches(dataset, crop, images, batch_size)
        return noise_batches(crop, images, batch_size, seed=seed)

    count = images if dataset is None else min(images, len(dataset))
    if dataset is not None and len(dataset) < images:
        warnings.append(f"--images {images}: the dataset has only {len(dataset)}; measured on all of them")

    def measure(net, label):
        advance = progress(f"ERF ({label})", count) if progress else None
        return accumulate_erf(net, batches(), device=device, progress=advance)

    acc = measure(model, "current")
    stride = tuple(head.stride) if head is not None else (1, 1)
    star = predict_star(head.rates, head.stride, _star_centre_of(acc, head.stride)) if head is not None else None
    paths["png"].parent.mkdir(parents=True, exist_ok=True)
    _atomic_save_npy(paths["current"], acc.erf.astype(np.float32))
    current, current_peaks = _measurement("current", acc, star, stride, paths["current"], extent_threshold)
    title = _short_name(model_spec)
    panels = [ErfPanel(acc.erf, f"{title}\ncurrent rates" if compare else title,
                       star.centre if star is not None else acc.centre_input,
                       star, current_peaks, _panel_notes(current))]
    suggested = None
    seconds, total_images = acc.seconds, acc.images
    if suggested_model is not None:
        if str(device).startswith("cuda"):  # the current variant is measured: free the GPU for the copy
            model.to("cpu")
            torch.cuda.empty_cache()
        acc_s = measure(suggested_model, "suggested")
        seconds, total_images = seconds + acc_s.seconds, total_images + acc_s.images
        assert suggested_rates is not None  # set with suggested_model
        star_s = predict_star(suggested_rates, head.stride, _star_centre_of(acc_s, head.stride))
        _atomic_save_npy(paths["suggested"], acc_s.erf.astype(np.float32))
        suggested, peaks_s = _measurement("suggested", acc_s, star_s, stride, paths["suggested"], extent_threshold)
        panels.append(ErfPanel(acc_s.erf, f"{title}\nsuggested rates", star_s.centre, star_s, peaks_s,
                               _panel_notes(suggested)))
        panels[0].title += f" {tuple(r[0] if r[0] == r[1] else r for r in head.rates)}"
        panels[1].title += f" {tuple(r[0] if r[0] == r[1] else r for r in suggested_rates)}"
    _atomic_render(panels, paths["png"], log)
    if str(device).startswith("cuda"):
        torch.cuda.empty_cache()

    return ErfReport(
        model=model_spec,
        crop=crop,
        device=device,
        source="data" if dataset is not None else "noise",
        data=str(data) if data is not None else None,
        weights=str(weights) if weights is not None else None,
        images=acc.images,
        batch_size=batch_size,
        seed=seed,
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
        log_scale=log,
        warnings=[*_as_list(getattr(loaded, "notes", None)), *warnings],
    )
