"""The one judgement of an ASPP head: do its rates fit the crop, and what to use instead.

``rate`` (``advice.py``), ``inspect`` (``graph/inspection.py``) and ``lint`` (the AA101–AA103 rules) all
call :func:`assess_aspp`, so the same (crop, stride, rates) gets the same verdict and the same suggestion in
every command. Every threshold lives here, as a named constant; ``lint``'s ``[tool.atrous-advisor]``
``tolerance`` and ``margin`` are overrides of these defaults, passed in as arguments.

The thresholds, and why each has the value it has:

* :data:`DEFAULT_MARGIN` (32 px, in ``rates.py``): the fixed end-to-end part of a ResNet-style network's
  field of view beyond the ASPP star (Kim et al., Sec. 3). It enters r* = (L − margin) / (2·n·s).
* :data:`TOLERANCE` (0.15) and :data:`TOLERANCE_FLOOR` (1): a base rate is "off the optimum" when
  |r − r*| > max(1, 0.15·r*). Rates are integers and r* is rounded half up, so a distance below one step
  is rounding, not a choice; above that, 15% of r* moves the FOV by ±15% of the crop, the band inside which
  the paper's measured mIoU curve is flat. The FOV ratio is therefore *not* judged separately: a FOV more
  than ~15% off the crop is exactly a base rate off the optimum, reported as a too-large or too-small FOV.
* :data:`PADDING_PROBLEM` (0.75): a non-degenerate branch is flagged when more than 75% of its taps read
  zero padding (averaged over output positions). The optimum itself reads a lot of padding: its largest
  rate is d ≈ F/2, where each axis keeps 2/3 of its taps and the branch reads 1 − (2/3)² ≈ 56% padding, and
  a rate within tolerance stays below ~62%. A lower threshold (0.25 or 0.5, used in earlier versions) would
  flag the advisor's own suggestion. 0.75 is where each axis keeps only half its taps (d = 3F/4): the
  branch reads more padding than data on both axes, which no rate within tolerance of r* does.
* Degenerate (no constant): a rate ≥ F on both axes leaves only the centre tap on data, exactly a 1×1 conv.

Verdicts: ``ok`` (within tolerance, nothing flagged); ``retune`` (a problem, and the suggestion fixes it);
``no_fit`` (a problem, and even the suggestion has one, or r* is unknown: fewer branches, a smaller output
stride or a larger crop is needed); ``unknown`` (r* is undefined because the crop is not larger than the
margin, and no branch is flagged: the tool cannot say whether the rates fit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence

from atrous_advisor.errors import InputError
from atrous_advisor.geometry.axes import pair
from atrous_advisor.geometry.rates import (
    DEFAULT_MARGIN,
    BranchInfo,
    FloatPair,
    IntOrPair,
    IntPair,
    branch_info,
    feature_map as feature_map_of,
    fov as fov_of,
    optimal_base_rate,
    single_int_rate,
    suggested_rates,
)

TOLERANCE = 0.15
"""Relative tolerance on the base rate: off the optimum when |r − r*| > max(TOLERANCE_FLOOR, TOLERANCE·r*)."""

TOLERANCE_FLOOR = 1.0
"""Absolute floor of the tolerance (one integer rate step): closer than this is rounding."""

PADDING_PROBLEM = 0.75
"""A non-degenerate branch reading more than this share of zero padding is flagged (see the module doc)."""

Verdict = Literal["ok", "retune", "no_fit", "unknown"]
Offset = Literal["low", "ok", "high"]


def tolerance_of(optimal: float, tolerance: float = TOLERANCE) -> float:
    """How far a base rate may be from r* before it is worth changing: max(1, tolerance·r*)."""
    return max(TOLERANCE_FLOOR, tolerance * optimal)


def effective_base_rate(rates: Sequence[IntPair]) -> FloatPair:
    """The base rate a set (r, 2r, …, n·r) corresponds to, per axis: its largest rate / n (it sets the FOV)."""
    n = len(rates)
    return (max(r[0] for r in rates) / n, max(r[1] for r in rates) / n)


@dataclass(frozen=True)
class BranchAssessment:
    """One dilated 3×3 branch on the feature map, with its flags."""

    info: BranchInfo
    reads_padding: bool  # not degenerate and padding_fraction > the padding threshold

    @property
    def rate(self) -> IntPair:
        return self.info.rate

    @property
    def degenerate(self) -> bool:
        return self.info.degenerate

    @property
    def padding_fraction(self) -> float:
        return self.info.padding_fraction

    @property
    def flagged(self) -> bool:
        return self.degenerate or self.reads_padding


def assess_branch(rate: IntOrPair, fmap: IntOrPair, padding_threshold: float = PADDING_PROBLEM) -> BranchAssessment:
    """Flags of one dilated 3×3 conv (an ASPP branch, FCN's dilated conv, a dilated backbone stage)."""
    info = branch_info(rate, fmap)
    return BranchAssessment(info, not info.degenerate and info.padding_fraction > padding_threshold)


@dataclass(frozen=True)
class AsppAssessment:
    crop: IntPair
    stride: IntPair
    feature_map: IntPair  # measured (inspect) or ceil(L / s)
    margin: int
    tolerance: float  # the relative tolerance used
    padding_threshold: float
    rates: list[IntPair]  # dilated branches, without the 1×1 branch
    branches: list[BranchAssessment]
    fov: IntPair
    fov_ratio: FloatPair  # FOV / crop per axis
    effective_base_rate: FloatPair
    optimal_base_rate: Optional[FloatPair]  # None when the crop is not larger than the margin
    tolerance_px: Optional[FloatPair]  # max(1, tolerance·r*) per axis
    offset: Optional[tuple[Offset, Offset]]  # base rate below / within / above tolerance of r*, per axis
    suggested_rates: Optional[list[IntPair]]  # (r, 2r, …, n·r) per axis, r = r* rounded half up
    single_int_rates: Optional[list[int]]  # non-square crops: one int per branch (geometric mean of r*)
    suggestion_flagged: bool  # the suggested set itself has a degenerate or padding branch
    verdict: Verdict
    reason: Optional[str]  # why the verdict is unknown / no_fit, in one line

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    @property
    def within_tolerance(self) -> bool:
        return self.offset is not None and self.offset == ("ok", "ok")

    @property
    def degenerate_rates(self) -> list[IntPair]:
        return [b.rate for b in self.branches if b.degenerate]

    @property
    def padding_rates(self) -> list[IntPair]:
        return [b.rate for b in self.branches if b.reads_padding]


def assess_aspp(
    rates: Sequence[IntOrPair],
    crop: IntOrPair,
    stride: IntOrPair,
    *,
    feature_map: Optional[IntOrPair] = None,
    margin: int = DEFAULT_MARGIN,
    tolerance: float = TOLERANCE,
    padding_threshold: float = PADDING_PROBLEM,
) -> AsppAssessment:
    """Judge the dilated ASPP branches ``rates`` at ``crop`` and ``stride``.

    ``feature_map`` is the measured input of the head (``inspect``); without it F = ceil(L / s). An optimum
    that cannot be computed (crop ≤ margin) is ``None``, never a fallback number.
    """
    if not rates:
        raise InputError("rates: at least one dilated branch is needed")
    crop_p, stride_p = pair(crop), pair(stride)
    pairs = [pair(r) for r in rates]
    fmap = pair(feature_map) if feature_map is not None else feature_map_of(crop_p, stride_p)
    n = len(pairs)
    branches = [assess_branch(r, fmap, padding_threshold) for r in pairs]
    effective = effective_base_rate(pairs)
    span = fov_of((max(r[0] for r in pairs), max(r[1] for r in pairs)), stride_p, margin)
    ratio = (span[0] / crop_p[0], span[1] / crop_p[1])
    flagged = any(b.flagged for b in branches)

    optimal = suggested = single = tol = offset = None
    suggestion_flagged = False
    if min(crop_p) > margin:
        optimal = optimal_base_rate(crop_p, stride_p, n, margin)
        suggested = suggested_rates(crop_p, stride_p, n, margin)
        tol = (tolerance_of(optimal[0], tolerance), tolerance_of(optimal[1], tolerance))
        offset = tuple(
            "low" if e < o - t else "high" if e > o + t else "ok" for e, o, t in zip(effective, optimal, tol)
        )
        if crop_p[0] != crop_p[1]:
            base = single_int_rate(optimal)
            single = [k * base for k in range(1, n + 1)]
        suggestion_flagged = any(assess_branch(r, fmap, padding_threshold).flagged for r in suggested)

    reason = None
    verdict: Verdict
    if optimal is None:
        verdict = "no_fit" if flagged else "unknown"
        reason = (
            f"the crop ({crop_p[0]}×{crop_p[1]}) is not larger than the {margin} px FOV margin, "
            "so r* = (L − margin) / (2·n·s) is not positive and no rate can be suggested"
        )
    elif offset == ("ok", "ok") and not flagged:
        verdict = "ok"
    elif suggestion_flagged:
        verdict = "no_fit"
        reason = (
            f"even the suggested rates have a degenerate or padding branch on the {fmap[0]}×{fmap[1]} feature "
            f"map: use fewer than {n} branches, a smaller output stride or a larger crop"
        )
    else:
        verdict = "retune"
    return AsppAssessment(
        crop=crop_p,
        stride=stride_p,
        feature_map=fmap,
        margin=margin,
        tolerance=tolerance,
        padding_threshold=padding_threshold,
        rates=pairs,
        branches=branches,
        fov=span,
        fov_ratio=ratio,
        effective_base_rate=effective,
        optimal_base_rate=optimal,
        tolerance_px=tol,
        offset=offset,  # type: ignore[arg-type]
        suggested_rates=suggested,
        single_int_rates=single,
        suggestion_flagged=suggestion_flagged,
        verdict=verdict,
        reason=reason,
    )
