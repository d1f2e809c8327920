"""Pydantic results of ``validate``. ``OUT/results.json`` and ``--json`` are ``ValidateReport.model_dump_json()``."""

from __future__ import annotations

from typing import Any, Literal, Optional

from atrous_advisor.report.base import ResultModel

IntPair = tuple[int, int]
FloatPair = tuple[float, float]


class RunResult(ResultModel):
    """One fine-tuning run: one variant, one seed. Written to ``OUT/runs/<variant>-seed<seed>.json`` when done."""

    variant: str
    seed: int
    steps: int
    miou: float  # in [0, 1], over classes present in labels or predictions
    per_class_iou: list[Optional[float]]  # None: class absent from both the val labels and the predictions
    images_per_second: float  # training throughput, all processes together
    train_seconds: float
    final_loss: float
    resumed_from_step: int  # 0 unless the run continued from a periodic checkpoint
    fingerprint: str  # hash of the settings that make runs comparable


class HeadVariant(ResultModel):
    """What one head was set to in a variant."""

    head: str
    kind: Literal["aspp", "ppm"]
    rates: Optional[list[IntPair]] = None
    scales: Optional[list[int]] = None


class VariantResult(ResultModel):
    name: str  # current | suggested | rate-<b> | scales-<k1>-<k2>…
    rates: Optional[list[IntPair]]  # of the first ASPP head (None for PPM variants)
    scales: Optional[list[int]]  # of the first PPM head (None for ASPP variants)
    base_rate: Optional[FloatPair]  # largest rate / branches, per axis (ASPP)
    heads: list[HeadVariant]
    also: list[str]  # other names that denote the same configuration (e.g. suggested = rate-1)
    miou: Optional[float]  # mean over finished repeats; None while none has finished
    miou_std: Optional[float]  # sample standard deviation over repeats; None with fewer than two
    per_class_iou: list[Optional[float]]  # mean over repeats
    seed: int  # first seed; repeat i uses seed + i
    seeds: list[int]  # seeds of the finished repeats
    steps: int
    images_per_second: Optional[float]  # mean over finished repeats
    complete: bool  # every repeat finished
    runs: list[RunResult]


class ValidateReport(ResultModel):
    model: str
    data: str
    layout: Literal["folders", "cityscapes"]
    crop: IntPair
    num_classes: int
    device: str  # cpu | cuda
    device_name: str  # e.g. "NVIDIA H100 80GB HBM3" or the CPU model
    world_size: int
    settings: dict[str, Any]
    variants: list[VariantResult]
    best: Optional[str]  # complete variant with the highest mean mIoU; None if none is complete or the top is a tie
    complete: bool
    notes: list[str]
