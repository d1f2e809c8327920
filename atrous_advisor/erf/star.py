"""The star an ASPP head should draw, and what the measured map shows: numpy and scipy only, no torch.

- ``predict_star``: the analytic taps of a detected ASPP — for a branch of rate (rh, rw) at stride (sh, sw),
  the 3×3 taps sit at the centre ± (rh·sh, rw·sw) px; the outermost branch gives the span 2·n·r·s.
- ``measure_star``: the outermost blobs found as local maxima of the central row and column profiles.
- ``nonzero_extent``: the bounding box of the non-zero map.
- ``fit_gaussian``: a 2-D Gaussian (moments as the start, then ``scipy.optimize.curve_fit``).

Everything here works on a saved ``.npy`` map as well as on a fresh accumulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from atrous_advisor.errors import InputError

IntPair = tuple[int, int]
FloatPair = tuple[float, float]

DEFAULT_PEAK_HEIGHT = 0.05
"""A blob counts as a star tap when its peak reaches this fraction of the profile's maximum…"""

DEFAULT_PEAK_PROMINENCE = 0.05
"""…and stands out from its surroundings by this fraction of its own height…"""

DEFAULT_NOISE_FACTOR = 3.0
"""…and by this many times the local noise of the accumulation (estimated from two half-maps)."""


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
