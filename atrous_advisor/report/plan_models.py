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

    parameters: int  # parameters and buffers, bytes
    gradients: int  # parameters' .grad accumulated so far
    optimizer: int  # optimizer state (SGD momentum, Adam moments)
    activations: int  # allocated in the forward and the loss: saved tensors, the batch and labels
    temporary: int  # allocated in the backward (activation gradients) and in the optimizer step


class PlanCandidate(ResultModel):
    crop: IntPair  # training crop (h, w), px
    output_stride: Optional[int]  # measured at the ASPP/PPM head's input; null: no head or no single integer stride (then no rates)
    peak_bytes: int  # estimated peak of live tensor bytes in one training step (what torch.cuda.max_memory_allocated reports)
    breakdown: MemoryBreakdown  # the bytes live at that peak, by purpose
    fits: bool  # peak_bytes ≤ the budget less the CUDA context reserve and the allocator margin
    feature_map: Optional[IntPair]  # the head's input map at this crop, measured in the fake step
    macs: int  # forward multiply-accumulates per image (FlopCounterMode's formulas; inspect's count)
    optimal_base_rate: Optional[FloatPair]  # ASPP: r* as `rate` computes it at this crop and stride
    suggested_rates: Optional[list[IntPair]]  # ASPP: `rate`'s suggested rates
    suggested_scales: Optional[list[int]]  # PPM: `ppm`'s suggested pool scales


class PlanReport(ResultModel):
    model: str  # the model spec as given
    memory_budget_bytes: int  # --memory in bytes
    batch: int  # images per GPU per step
    precision: Literal["fp32", "bf16", "fp16"]  # fp32, or autocast to bf16/fp16 with fp32 weights
    candidates: list[PlanCandidate]  # every crop (× stride), smallest first
    # the largest crop that fits (at equal crops the finer stride); null when none does
    recommended: Optional[PlanCandidate]

    usable_bytes: int = Field(0, exclude=True)
    context_reserve_bytes: int = Field(0, exclude=True)  # what the budget keeps for the CUDA context
    allocator_margin: float = Field(0.0, exclude=True)  # the share kept for allocator slack
    head: str = Field("", exclude=True)  # "ASPP classifier.0 (3 dilated branches)" or why there are no rates
    fix: Optional[str] = Field(None, exclude=True)
    image: Optional[IntPair] = Field(None, exclude=True)
    notes: list[str] = Field(default_factory=list, exclude=True)
