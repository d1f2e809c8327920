"""Pydantic results of ``inspect``. ``--json`` is ``InspectReport.model_dump_json()``; it round-trips."""

from __future__ import annotations

from typing import Literal, Optional, Union

from atrous_advisor.report.base import ResultModel

IntPair = tuple[int, int]
Number = Union[int, float]
NumPair = tuple[Number, Number]
MaybeNumPair = tuple[Optional[Number], Optional[Number]]


class LayerField(ResultModel):
    """One node of the graph that changes geometry (conv, pooling, interpolation, merge)."""

    name: str  # owning module in model.named_modules() ('' for the root)
    op: str  # ATen op without namespace: conv2d, max_pool2d, upsample_bilinear2d, cat, add_
    feature_map: IntPair
    rf_max: MaybeNumPair  # None on an axis where every path is global
    rf_min: MaybeNumPair
    jump: NumPair
    start: NumPair  # centre of feature 0's field (input px; pixel i is centred at i)
    global_context: tuple[bool, bool]
    holes: tuple[bool, bool]
    misaligned: tuple[bool, bool]


class AsppHead(ResultModel):
    name: str
    branch_modules: list[str]
    rates: list[IntPair]
    feature_map: IntPair
    stride: IntPair
    image_pool: bool
    head_field: MaybeNumPair  # analytic field at the head's merge, backbone included
    fov: IntPair  # 2·d_max·s + margin (32; docs/formulas.md §3)
    fov_ratio: tuple[float, float]  # FOV / crop
    kernel_extent: list[IntPair]
    coverage: list[tuple[float, float]]
    padding_fraction: list[float]
    degenerate: list[bool]
    optimal_base_rate: Optional[tuple[float, float]]  # r* per axis; null when the crop is not larger than the FOV margin
    suggested_rates: Optional[list[IntPair]]  # (r, 2r, …, n·r) per axis, r = r* rounded; null when r* is unknown
    ok: bool
    verdict: str
    fix: Optional[str]


class PpmHead(ResultModel):
    name: str
    branch_modules: list[str]
    scales: list[int]
    feature_map: IntPair
    stride: IntPair
    cell_features: list[tuple[float, float]]
    cell_pixels: list[tuple[float, float]]
    below_min_cell: list[bool]
    suggested_scales: list[int]
    ok: bool
    verdict: str
    fix: Optional[str]


class FcnHead(ResultModel):
    name: str
    rate: IntPair
    feature_map: IntPair
    stride: IntPair
    kernel_extent: IntPair
    padding_fraction: float
    degenerate: bool
    ok: bool
    verdict: str


class UnassessedHead(ResultModel):
    """A head found in the graph whose geometry is not known well enough to advise on: listed, with why."""

    name: str
    kind: Literal["aspp", "ppm", "fcn"]
    branch_modules: list[str]
    rates: list[IntPair]
    scales: list[int]
    feature_map: IntPair
    stride: Optional[IntPair]  # None: unknown
    reason: str


class ModuleCost(ResultModel):
    name: str
    params: int
    macs: int


class InspectReport(ResultModel):
    model: str
    crop: IntPair
    device: Literal["meta", "cpu"]
    capture: Literal["torch.export", "dispatch"]
    output: Optional[str]  # which output is described: "out", "logits", "masks_queries_logits", … (None: the only one)
    unknown: Optional[str]  # why the output's field is unknown; then every field/stride below is None
    output_stride: Optional[NumPair]  # coarsest jump of finite, non-pooled features on the output's path
    output_feature_map: Optional[IntPair]
    receptive_field: Optional[MaybeNumPair]  # largest finite field of the output feature at the origin phase (global paths excluded; other phases can be ~2% larger where upsampled paths merge)
    receptive_field_min: Optional[MaybeNumPair]  # smallest finite field over paths into the same feature
    output_jump: Optional[NumPair]
    output_centre: Optional[NumPair]
    global_context: Optional[bool]
    gridding: bool
    misaligned: bool
    params: int
    macs: int
    counter: Literal["fast", "fvcore"]
    cost_by_module: list[ModuleCost]
    aspp: list[AsppHead]
    ppm: list[PpmHead]
    fcn: list[FcnHead]
    unassessed: list[UnassessedHead]  # heads found, with the reason no advice is given for them
    layers: list[LayerField]
    border_layer: Optional[str]
    unproductive_layers: list[str]
    unsupported_ops: dict[str, dict[str, int]]  # op kind → {module → count}: nodes whose field is unknown
    unsupported_reasons: dict[str, str]  # op kind → why its handler could not follow it (the first time)
    field_map: Optional[str]
    warnings: list[str]
    notes: list[str]
