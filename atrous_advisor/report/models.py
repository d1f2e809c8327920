"""Pydantic results of the analytic commands. ``--json`` is ``model_dump_json()`` of these; they round-trip."""

from __future__ import annotations

from typing import Literal, Optional

from atrous_advisor.report.base import ResultModel

IntPair = tuple[int, int]
FloatPair = tuple[float, float]


class BranchEvaluation(ResultModel):
    rate: IntPair
    kernel_extent: IntPair
    coverage: FloatPair
    padding_fraction: float
    degenerate: bool


class RateEvaluation(ResultModel):
    name: Literal["default", "suggested", "current"]
    rates: list[IntPair]
    fov: IntPair
    fov_ratio: FloatPair
    effective_base_rate: FloatPair  # largest rate / branches: the base rate this set's FOV corresponds to
    within_tolerance: bool
    branches: list[BranchEvaluation]


class RateReport(ResultModel):
    crop: IntPair
    output_stride: int
    feature_map: IntPair
    margin: int
    branches: int
    optimal_base_rate: FloatPair
    suggested_base_rate: IntPair
    suggested_rates: list[IntPair]
    single_int_rates: Optional[list[int]]  # non-square crops: one int per branch for frameworks that take one
    default_rates: list[IntPair]
    default_rule_extrapolated: bool
    current_rates: Optional[list[IntPair]]
    evaluations: list[RateEvaluation]
    verdict: str
    ok: bool
    warnings: list[str]
    snippets: dict[str, str]


class CellEvaluation(ResultModel):
    scale: int
    cell_features: FloatPair
    cell_pixels: FloatPair
    below_min_cell: bool
    redundant: bool


class PPMReport(ResultModel):
    crop: IntPair
    output_stride: int
    feature_map: IntPair
    min_cell: int
    scales: list[int]
    cells: list[CellEvaluation]
    suggested_scales: list[int]
    verdict: str
    ok: bool
    warnings: list[str]
    snippets: dict[str, str]
