"""Pydantic results of the analytic commands. ``--json`` is ``model_dump_json()`` of these; they round-trip."""

from __future__ import annotations

from typing import Literal, Optional

from atrous_advisor.report.base import ResultModel

IntPair = tuple[int, int]
FloatPair = tuple[float, float]


class BranchEvaluation(ResultModel):
    rate: IntPair  # dilation (h, w) of this 3×3 branch
    kernel_extent: IntPair  # span of the dilated kernel, 2d + 1 features per axis
    coverage: FloatPair  # kernel extent / feature map per axis (above 1: wider than the map)
    padding_fraction: float  # exact share of the branch's taps, over all output positions, that read zero padding
    degenerate: bool  # d ≥ F on both axes: only the centre tap reads data, the branch is a 1×1 conv


class RateEvaluation(ResultModel):
    name: Literal["default", "suggested", "current"]  # which rate set this is
    rates: list[IntPair]  # dilated branches' rates (h, w)
    fov: IntPair  # field of view 2·d_max·s + margin, px per axis
    fov_ratio: FloatPair  # FOV / crop per axis
    effective_base_rate: FloatPair  # largest rate / branches: the base rate this set's FOV corresponds to
    within_tolerance: bool  # effective base rate within max(1, tolerance·r*) of r* on both axes
    branches: list[BranchEvaluation]  # one entry per dilated branch


class RateReport(ResultModel):
    crop: IntPair  # training crop (h, w), px
    output_stride: int  # input px per feature at the head
    feature_map: IntPair  # F = ceil(crop / stride) per axis
    margin: int  # the fixed px the FOV adds to the star span (32)
    branches: int  # dilated 3×3 branches n (3 in ASPP)
    optimal_base_rate: FloatPair  # r* = (L − margin) / (2·n·s) per axis, unrounded
    suggested_base_rate: IntPair  # r* rounded half up, at least 1
    suggested_rates: list[IntPair]  # (r, 2r, …, n·r) per axis
    single_int_rates: Optional[list[int]]  # non-square crops: one int per branch for frameworks that take one
    default_rates: list[IntPair]  # DeepLab's rule r = 96/s, times 1..n
    default_rule_extrapolated: bool  # the stride is neither 8 nor 16, where DeepLab's rule was used
    current_rates: Optional[list[IntPair]]  # the rates given with --rates
    evaluations: list[RateEvaluation]  # default, current (if given) and suggested, in that order
    verdict: str  # one line: OK or Retune, and why
    ok: bool  # the rates judged (current, else default) need no change
    warnings: list[str]  # caveats such as an extrapolated default or a crop too small for n branches
    snippets: dict[str, str]  # framework name → the line to paste


class CellEvaluation(ResultModel):
    scale: int  # pooling grid k (k×k bins)
    cell_features: FloatPair  # F / k features per bin, per axis
    cell_pixels: FloatPair  # F·s / k px per bin, per axis
    below_min_cell: bool  # a bin is smaller than min_cell px on some axis
    redundant: bool  # k > F: adaptive pooling repeats positions across bins


class PPMReport(ResultModel):
    crop: IntPair  # training crop (h, w), px
    output_stride: int  # input px per feature at the head
    feature_map: IntPair  # F = ceil(crop / stride) per axis
    min_cell: int  # smallest useful bin, px
    scales: list[int]  # the pool scales judged
    cells: list[CellEvaluation]  # one entry per scale
    suggested_scales: list[int]  # scales whose bins are all at least min_cell px
    verdict: str  # one line: OK, Retune or Warning, and why
    ok: bool  # no bin below min_cell and no redundant scale
    warnings: list[str]  # caveats
    snippets: dict[str, str]  # framework name → the line to paste
