"""ASPP rates: the DeepLab rule, the resolution-aware optimum (Kim et al., Eq. 3) and what a rate set covers.

All arithmetic is per axis. Rounding is done on exact fractions so that "round half up" is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence, Union

from atrous_advisor.errors import InputError
from atrous_advisor.geometry.axes import pair

DEFAULT_MARGIN = 32
"""Fixed end-to-end margin (px) of a ResNet-style ASPP network's FOV beyond the star span (paper, Sec. 3)."""

DEFAULT_BRANCHES = 3
"""Dilated 3×3 branches in a standard ASPP head: rates (r, 2r, 3r)."""

DEFAULT_RATE_PRODUCT = 96
"""DeepLab's habit (paper Eq. 2): r·s = 96, i.e. r = 6 at stride 16 and r = 12 at stride 8."""

IntPair = tuple[int, int]
FloatPair = tuple[float, float]
IntOrPair = Union[int, IntPair]


def _check_positive(value: IntOrPair, what: str) -> IntPair:
    h, w = pair(value)
    for v in (h, w):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise InputError(f"{what} {value!r}: must be a positive integer")
    return (h, w)


def round_half_up(x: Union[Fraction, float]) -> int:
    """Round to the nearest integer, halves up (2.5 → 3), never below 1."""
    return max(1, math.floor(Fraction(x) + Fraction(1, 2)))


def feature_map(crop: IntOrPair, stride: IntOrPair) -> IntPair:
    """F = ceil(L / s) per axis: what ResNet-style backbones with 'same' padding produce (769/8 → 97)."""
    (lh, lw), (sh, sw) = _check_positive(crop, "crop"), _check_positive(stride, "output stride")
    return (-(-lh // sh), -(-lw // sw))


def default_base_rate(stride: IntOrPair) -> tuple[IntPair, bool]:
    """DeepLab's base rate r = 96/s per axis, and whether that is an extrapolation (s not in {8, 16})."""
    sh, sw = _check_positive(stride, "output stride")
    rates = (round_half_up(Fraction(DEFAULT_RATE_PRODUCT, sh)), round_half_up(Fraction(DEFAULT_RATE_PRODUCT, sw)))
    return rates, not {sh, sw} <= {8, 16}


def _optimal_fraction(length: int, stride: int, branches: int, margin: int) -> Fraction:
    return Fraction(length - margin, 2 * branches * stride)


def _check_margin(crop: IntPair, margin: int) -> None:
    if not isinstance(margin, int) or margin < 0:
        raise InputError(f"margin {margin!r}: must be a non-negative integer")
    if margin >= min(crop):
        raise InputError(
            f"crop {crop[0]}×{crop[1]}: must be larger than the FOV margin of {margin} px (--margin), "
            f"or r* = (L − {margin}) / (2·n·s) is not positive"
        )


def _check_branches(branches: int) -> None:
    if not isinstance(branches, int) or isinstance(branches, bool) or branches <= 0:
        raise InputError(f"branches {branches!r}: must be a positive integer")


def optimal_base_rate(
    crop: IntOrPair, stride: IntOrPair, branches: int = DEFAULT_BRANCHES, margin: int = DEFAULT_MARGIN
) -> FloatPair:
    """Unrounded r* = (L − margin) / (2·n·s) per axis: the base rate whose FOV equals the crop (Eq. 3)."""
    crop, stride = _check_positive(crop, "crop"), _check_positive(stride, "output stride")
    _check_branches(branches)
    _check_margin(crop, margin)
    return tuple(float(_optimal_fraction(L, s, branches, margin)) for L, s in zip(crop, stride))  # type: ignore[return-value]


def suggested_base_rate(
    crop: IntOrPair, stride: IntOrPair, branches: int = DEFAULT_BRANCHES, margin: int = DEFAULT_MARGIN
) -> IntPair:
    """r* rounded half up, at least 1, per axis (the paper's best measured rate in every experiment)."""
    crop, stride = _check_positive(crop, "crop"), _check_positive(stride, "output stride")
    _check_branches(branches)
    _check_margin(crop, margin)
    return tuple(round_half_up(_optimal_fraction(L, s, branches, margin)) for L, s in zip(crop, stride))  # type: ignore[return-value]


def suggested_rates(
    crop: IntOrPair, stride: IntOrPair, branches: int = DEFAULT_BRANCHES, margin: int = DEFAULT_MARGIN
) -> list[IntPair]:
    """The suggested rate of every dilated branch: (r, 2r, …, n·r) per axis."""
    rh, rw = suggested_base_rate(crop, stride, branches, margin)
    return [(k * rh, k * rw) for k in range(1, branches + 1)]


def single_int_rate(optimal: FloatPair) -> int:
    """One base rate for frameworks that take one int per branch, for a non-square crop.

    The geometric mean of the per-axis optima: the FOV then overshoots one axis by the same factor as it
    undershoots the other, which keeps the relative error on both axes equal.
    """
    rh, rw = optimal
    if rh <= 0 or rw <= 0:
        return 1
    return round_half_up(Fraction(math.sqrt(rh * rw)))


def _valid_taps_sum(dilation: int, size: int) -> int:
    """Σ over output positions x of the number of taps x−d, x, x+d inside [0, size)."""
    return size + 2 * max(0, size - dilation)


def padding_fraction(rate: IntOrPair, fmap: IntOrPair) -> float:
    """Exact share of a 3×3 dilated conv's taps that read zero padding, averaged over all output positions.

    Taps are separable, so the valid share is the product of the per-axis valid shares.
    """
    (dh, dw), (fh, fw) = _check_positive(rate, "rate"), _check_positive(fmap, "feature map")
    valid = Fraction(_valid_taps_sum(dh, fh), 3 * fh) * Fraction(_valid_taps_sum(dw, fw), 3 * fw)
    return float(1 - valid)


def fov(max_rate: IntOrPair, stride: IntOrPair, margin: int = DEFAULT_MARGIN) -> IntPair:
    """End-to-end field of view of an ASPP network (px): star span 2·d_max·s plus the fixed margin."""
    (dh, dw), (sh, sw) = _check_positive(max_rate, "rate"), _check_positive(stride, "output stride")
    return (2 * dh * sh + margin, 2 * dw * sw + margin)


@dataclass(frozen=True)
class BranchInfo:
    """What one dilated 3×3 branch sees on a feature map of ``feature_map`` positions."""

    rate: IntPair
    kernel_extent: IntPair
    coverage: FloatPair
    padding_fraction: float
    degenerate: bool  # rate ≥ F on both axes: only the centre tap ever reads data, exactly a 1×1 conv


def branch_info(rate: IntOrPair, fmap: IntOrPair) -> BranchInfo:
    (dh, dw), (fh, fw) = _check_positive(rate, "rate"), _check_positive(fmap, "feature map")
    extent = (2 * dh + 1, 2 * dw + 1)
    return BranchInfo(
        rate=(dh, dw),
        kernel_extent=extent,
        coverage=(extent[0] / fh, extent[1] / fw),
        padding_fraction=padding_fraction((dh, dw), (fh, fw)),
        degenerate=dh >= fh and dw >= fw,
    )


@dataclass(frozen=True)
class RateSetAnalysis:
    """A whole set of dilated branches evaluated at one crop and stride."""

    rates: list[IntPair]
    feature_map: IntPair
    fov: IntPair
    fov_ratio: FloatPair  # FOV / crop per axis: < 1 the head never sees the whole crop, > 1 it reads padding
    branches: list[BranchInfo]

    @property
    def degenerate_count(self) -> int:
        return sum(b.degenerate for b in self.branches)


def analyse_rates(
    rates: Sequence[IntOrPair], crop: IntOrPair, stride: IntOrPair, margin: int = DEFAULT_MARGIN
) -> RateSetAnalysis:
    """Evaluate the dilated branches ``rates`` (without the 1×1 branch) at ``crop`` and ``stride``."""
    if not rates:
        raise InputError("rates: at least one dilated branch is needed")
    crop, stride = _check_positive(crop, "crop"), _check_positive(stride, "output stride")
    pairs = [_check_positive(r, "rate") for r in rates]
    fmap = feature_map(crop, stride)
    largest = (max(r[0] for r in pairs), max(r[1] for r in pairs))
    span = fov(largest, stride, margin)
    return RateSetAnalysis(
        rates=pairs,
        feature_map=fmap,
        fov=span,
        fov_ratio=(span[0] / crop[0], span[1] / crop[1]),
        branches=[branch_info(r, fmap) for r in pairs],
    )
