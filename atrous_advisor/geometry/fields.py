"""Receptive-field arithmetic of one op along one axis. Pure Python, no torch.

Coordinates are input pixels; input pixel ``i`` has its centre at ``i``. For a node of the graph, feature
``m`` along an axis sits at ``start + m·jump`` and reads the input pixels ``m·jump + support``.

Per axis and per node we keep (docs/formulas.md §7):

* ``jump``   input pixels between neighbouring features (the effective stride), a Fraction because
  interpolation to a measured size (97 → 769) gives non-integer jumps;
* ``start``  centre of feature 0's field;
* ``rf_max`` / ``rf_min``  the largest and smallest field over all finite paths into the node (residual
  paths keep small fields alive); ``None`` when every path is global;
* ``support`` the exact set of input offsets feature 0 can read, as a bitset: holes in it are gridding;
* ``global_context`` some path pooled this axis to one value (image pooling): that path has no finite
  field, so it is an explicit flag rather than a huge number;
* ``misaligned``  paths merged into this node disagree on jump or centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Iterable, Optional, Sequence

Number = Fraction


def _round(x: Fraction) -> int:
    """Nearest integer, halves up: pixel offsets of fractional-jump features are rounded."""
    return math.floor(x + Fraction(1, 2))


@dataclass(frozen=True)
class Support:
    """A set of integer input offsets as a bitset: bit ``i`` of ``mask`` is offset ``lo + i``."""

    lo: int = 0
    mask: int = 0

    @staticmethod
    def point(at: int = 0) -> "Support":
        return Support(at, 1)

    @property
    def empty(self) -> bool:
        return self.mask == 0

    @property
    def low(self) -> int:
        return self.lo + ((self.mask & -self.mask).bit_length() - 1)

    @property
    def high(self) -> int:
        return self.lo + self.mask.bit_length() - 1

    @property
    def span(self) -> int:
        return 0 if self.empty else self.high - self.low + 1

    @property
    def count(self) -> int:
        return bin(self.mask).count("1")

    @property
    def has_holes(self) -> bool:
        """Some offset between the first and the last reachable one is never read."""
        return not self.empty and self.count != self.span

    @property
    def lattice_step(self) -> int:
        """gcd of the gaps between reachable offsets (2 for stacked rate-2 convs); 0 for a single point."""
        if self.empty:
            return 0
        base, step, m, i = self.low, 0, self.mask, 0
        while m:
            if m & 1:
                step = math.gcd(step, self.lo + i - base)
            m >>= 1
            i += 1
        return step

    def offsets(self) -> list[int]:
        out, m, i = [], self.mask, 0
        while m:
            if m & 1:
                out.append(self.lo + i)
            m >>= 1
            i += 1
        return out

    def shifted(self, by: int) -> "Support":
        return Support(self.lo + by, self.mask) if self.mask else self

    def union(self, other: "Support") -> "Support":
        if other.empty:
            return self
        if self.empty:
            return other
        lo = min(self.lo, other.lo)
        return Support(lo, (self.mask << (self.lo - lo)) | (other.mask << (other.lo - lo)))

    def spread(self, shifts: Iterable[int]) -> "Support":
        """Union of copies shifted by every value in ``shifts`` (the taps of a kernel)."""
        out = Support()
        for s in shifts:
            out = out.union(self.shifted(s))
        return out


@dataclass(frozen=True)
class AxisField:
    """The field of every feature of one node along one axis (see the module docstring)."""

    size: int
    jump: Fraction
    start: Fraction
    rf_max: Optional[Fraction]
    rf_min: Optional[Fraction]
    support: Support
    global_context: bool = False
    misaligned: bool = False
    binned: bool = False  # every finite path went through adaptive-pooling bins (PPM cells, not features)

    @property
    def finite(self) -> bool:
        return self.rf_max is not None

    @property
    def holes(self) -> bool:
        return self.support.has_holes


def input_axis(size: int) -> AxisField:
    """The image itself: one pixel per feature, field 1."""
    one = Fraction(1)
    return AxisField(size, one, Fraction(0), one, one, Support.point(0))


def _grow(value: Optional[Fraction], by: Fraction) -> Optional[Fraction]:
    return None if value is None else value + by


def window(
    f: AxisField, kernel: int, stride: Fraction | int, padding: int, dilation: int, size_out: int
) -> AxisField:
    """A sliding window (convolution, max/avg pooling): output feature m reads inputs m·s − p + t·d."""
    stride = Fraction(stride)
    extent = dilation * (kernel - 1) + 1
    grow = (extent - 1) * f.jump
    support = f.support.spread(_round((t * dilation - padding) * f.jump) for t in range(kernel))
    return replace(
        f,
        size=size_out,
        jump=f.jump * stride,
        start=f.start + (Fraction(extent - 1, 2) - padding) * f.jump,
        rf_max=_grow(f.rf_max, grow),
        rf_min=_grow(f.rf_min, grow),
        support=support,
    )


def transposed_window(
    f: AxisField, kernel: int, stride: int, padding: int, dilation: int, size_out: int
) -> AxisField:
    """Transposed convolution: output o receives input i where o = i·s − p + t·d.

    An output reads at most floor((k_eff − 1)/s) + 1 inputs; the phase of o decides how many, so the
    largest phase gives rf_max and its inputs give the support.
    """
    extent = dilation * (kernel - 1) + 1
    best: list[int] = []
    phase = 0
    for o in range(stride):
        inputs = [(o + padding - t * dilation) // stride for t in range(kernel) if (o + padding - t * dilation) % stride == 0]
        if inputs and (not best or max(inputs) - min(inputs) > max(best) - min(best)):
            best, phase = inputs, o
    reach = (max(best) - min(best)) if best else 0
    grow = reach * f.jump
    # support offsets are relative to output ``phase`` itself, which sits at phase·jump_out = (phase/s)·jump_in
    shifts = (_round((i - Fraction(phase, stride)) * f.jump) for i in best)
    support = f.support.spread(shifts) if best else f.support
    return replace(
        f,
        size=size_out,
        jump=f.jump / stride,
        start=f.start + Fraction(padding * 2 - (extent - 1), 2 * stride) * f.jump,
        rf_max=_grow(f.rf_max, grow),
        rf_min=_grow(f.rf_min, grow),
        support=support,
    )


def adaptive_bins(size_in: int, size_out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling bins: floor(i·F/k) .. ceil((i+1)·F/k) (neighbours may overlap by one)."""
    return [((i * size_in) // size_out, -(-(i + 1) * size_in // size_out)) for i in range(size_out)]


def global_pool(f: AxisField, size_out: int = 1) -> AxisField:
    """Pooling the whole axis to one value: every path through here is global context, no finite field."""
    return replace(
        f,
        size=size_out,
        jump=f.jump * f.size,
        start=f.start + Fraction(f.size - 1, 2) * f.jump,
        rf_max=None,
        rf_min=None,
        support=Support(),
        global_context=True,
        binned=True,
    )


def adaptive_pool(f: AxisField, size_out: int) -> AxisField:
    """Adaptive pooling to ``size_out`` bins: global when one bin, else a window of the largest bin."""
    if size_out == 1:
        return global_pool(f)
    if size_out == f.size:
        return replace(f, size=size_out)
    bins = adaptive_bins(f.size, size_out)
    kernel = max(b - a for a, b in bins)
    return replace(window(f, kernel, Fraction(f.size, size_out), 0, 1, size_out), binned=True)


def resample(f: AxisField, size_out: int, taps: int, align_corners: bool = False) -> AxisField:
    """Interpolation from ``f.size`` to ``size_out`` features (nearest: 1 tap, bilinear: 2, bicubic: 4).

    Up-sampling by a factor divides the jump by it; every output reads ``taps`` neighbouring inputs.
    """
    size_in = f.size
    if size_out == size_in:
        return f
    if align_corners and size_out > 1:
        scale = Fraction(max(size_in - 1, 0), size_out - 1)
        offset = Fraction(0)
    else:
        scale = Fraction(size_in, size_out)
        # source coordinate of output 0 is 0.5·in/out − 0.5 (half-pixel centres) except for nearest
        offset = Fraction(0) if taps == 1 else (scale - 1) / 2
    # output 0 reads floor(src) (− 1 for bicubic) onwards; its source src = offset is in (−0.5, 0) when
    # up-sampling, so the taps of output 0 (and of every f-th output) start one input before it
    first = math.floor(offset) - (taps // 2 - 1 if taps > 1 else 0)
    tap_offsets = [first + t for t in range(taps)]
    grow = (taps - 1) * f.jump
    return replace(
        f,
        size=size_out,
        jump=f.jump * scale,
        start=f.start + offset * f.jump,
        rf_max=_grow(f.rf_max, grow),
        rf_min=_grow(f.rf_min, grow),
        support=f.support.spread(_round(t * f.jump) for t in tap_offsets),
    )


def merge(fields: Sequence[AxisField], size_out: int) -> AxisField:
    """Several paths into one node (cat, add, mul): largest and smallest field, union of supports.

    Global-only paths contribute the flag, not a field. Finite feature paths that disagree on jump or centre
    are misaligned: their features do not describe the same input positions.
    """
    finite = [f for f in fields if f.finite]
    is_global = any(f.global_context for f in fields)
    misaligned = any(f.misaligned for f in fields)
    if not finite:
        base = fields[0]
        return replace(base, size=size_out, global_context=is_global, misaligned=misaligned)
    base = finite[0]
    # pooled-bin paths (PPM cells) are coarse context by design; only feature paths must line up
    features = [f for f in finite if not f.binned]
    for other in features[1:]:
        if other.jump != features[0].jump or other.start != features[0].start:
            misaligned = True
    if features:
        base = features[0]
    support = Support()
    for f in finite:
        # another path's feature 0 may sit elsewhere; express its support relative to this node's feature 0
        support = support.union(f.support)
    return AxisField(
        size=size_out,
        jump=base.jump,
        start=base.start,
        rf_max=max(f.rf_max for f in finite),  # type: ignore[type-var]
        rf_min=min(f.rf_min for f in finite),  # type: ignore[type-var]
        support=support,
        global_context=is_global,
        misaligned=misaligned,
        binned=all(f.binned for f in finite),
    )


def broadcast(f: AxisField, size_out: int) -> AxisField:
    """A size-1 axis broadcast against a larger one (x * gate): the value is the same for every feature."""
    if f.size == size_out:
        return f
    return replace(f, size=size_out)


def as_number(x: Optional[Fraction]) -> Optional[float | int]:
    """A Fraction for output: int when integral, else a float rounded to 3 decimals."""
    if x is None:
        return None
    return int(x) if x.denominator == 1 else round(float(x), 3)
