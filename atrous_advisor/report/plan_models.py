"""The result of ``plan``. ``--json`` is ``model_dump_json()``: exactly the keys documented in docs/plan.md.

Fields marked ``exclude=True`` are for the human rendering only (the usable budget after the safety margin,
the fix snippet, notes); they are derived from the same run and left out of the JSON contract.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from atrous_advisor.report.base import FloatPair, IntPair, ResultModel


class MemoryBreakdown(ResultModel):
    """Bytes live at the step's peak, by purpose (they sum to the candidate's ``peak_bytes``)."""

    parameters: int
    gradients: int
    optimizer: int
    activations: int
    temporary: int


class PlanCandidate(ResultModel):
    crop: IntPair
    output_stride: Optional[int]  # None: not measurable from the graph (then no rates either)
    peak_bytes: int
    breakdown: MemoryBreakdown
    fits: bool
    feature_map: Optional[IntPair]  # measured at the head's input at this crop
    macs: int  # forward multiply-accumulates per image
    optimal_base_rate: Optional[FloatPair]
    suggested_rates: Optional[list[IntPair]]
    suggested_scales: Optional[list[int]]


class PlanReport(ResultModel):
    model: str
    memory_budget_bytes: int
    batch: int
    precision: Literal["fp32", "bf16", "fp16"]
    candidates: list[PlanCandidate]
    recommended: Optional[PlanCandidate]  # the largest crop that fits; None when none does

    usable_bytes: int = Field(0, exclude=True)
    head: str = Field("", exclude=True)  # "ASPP classifier.0 (3 dilated branches)" or why there are no rates
    fix: Optional[str] = Field(None, exclude=True)
    image: Optional[IntPair] = Field(None, exclude=True)
    notes: list[str] = Field(default_factory=list, exclude=True)
