"""What a linted config says about its geometry, resolved from where the values really are.

Readers produce located trees; resolvers (one per framework) turn them into :class:`ConfigFacts`; rules only
read facts. Every fact keeps the location that set it, so a diagnostic can point at that line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from atrous_advisor.configs.values import Loc, V

Framework = str  # a registry name (configs/frameworks): "mmseg", "detectron2", ...
IntPair = tuple[int, int]


@dataclass(frozen=True)
class Unresolved:
    """A value a rule needs that the static reader could not resolve (AA001)."""

    what: str
    loc: Loc
    reason: str


@dataclass(frozen=True)
class UnknownHead:
    """A head that carries rates or pooling scales but is not one the rules know how to check (AA002)."""

    head: str  # its type as written ("MyASPPHead"), or the role it fills ("decode_head")
    key: str  # the key holding the rates or scales ("dilations", "pool_scales")
    value: str  # the value as the user wrote it, for the message
    loc: Loc
    why: str  # "head type 'MyASPPHead' is not one atrous-advisor knows"


# Keys by which a head carries atrous rates or pooling scales in the layouts the readers follow: a head of an
# unknown type that has one of them is reported, never passed as if it had nothing to check.
CONTEXT_KEYS = ("dilations", "atrous_rates", "aspp_ratios", "aspp_dilations", "pool_scales", "bin_sizes",
                "filter_sizes", "psp_size", "cm_bin_sizes")


@dataclass(frozen=True)
class Target:
    """Where a value lives in the merged config, for ``--fix``.

    ``chain`` holds the located containers along ``keys`` from the top (``None`` past the last one that
    exists), then the value itself (``None`` when the framework default applies). ``render`` writes a new
    value in the file's syntax.
    """

    keys: tuple[str, ...]
    chain: tuple[Optional[V], ...]
    render: Callable[[Any], str]
    editable: bool = True  # False when the path runs through a list (cascade heads): no automatic fix
    why_not: str = ""


@dataclass(frozen=True)
class AsppFacts:
    head: str  # head class as written, e.g. "ASPPHead"
    rates: tuple[Union[int, tuple[int, int]], ...]  # the dilated branches' rates (h, w where per axis), no 1×1 branch
    loc: Loc  # where the rates were set (or the head, when the class default applies)
    is_default: bool
    stride: Optional[int]  # None: unknown (``ConfigFacts.stride_why`` says why); AA002 asks for it
    stride_loc: Optional[Loc]
    target: Optional[Target]
    to_written: Callable[[list], Any]  # dilated rates -> the value as the framework writes it


@dataclass(frozen=True)
class PpmFacts:
    head: str
    scales: tuple[int, ...]
    loc: Loc
    is_default: bool
    stride: Optional[int]  # None: unknown, as for AsppFacts
    stride_loc: Optional[Loc]
    target: Optional[Target]  # None when the framework has no setting for the scales (smp PSPNet)
    # What the head calls its scales: PSPHead/UPerHead/APCHead `pool_scales`, DMHead `filter_sizes` (each pools
    # the feature map adaptively to s×s, so the cells are F/s either way).
    key: str = "pool_scales"


@dataclass(frozen=True)
class DilatedConv:
    """A single dilated 3×3 conv outside ASPP (FCN-D6's ``FCNHead(dilation=6)``)."""

    head: str
    rate: int
    loc: Loc
    stride: int


@dataclass(frozen=True)
class DeclaredStride:
    """A stride the config states rather than derives (Detectron2 ``COMMON_STRIDE``)."""

    key: str
    value: int
    loc: Loc
    target: Optional[Target]


@dataclass(frozen=True)
class Divisibility:
    """The framework requires the crop to be divisible by ``divisor`` (UNet, smp, Detectron2 ASPP pooling)."""

    divisor: int
    why: str
    loc: Loc


@dataclass(frozen=True)
class BelievedCrop:
    """A crop a reader of the config would take for the training crop."""

    crop: IntPair
    loc: Loc
    source: str  # "crop_size" or "file name"


@dataclass
class ConfigFacts:
    path: Path
    framework: Framework
    anchor: Loc  # line 1 of the leaf: where file-level findings point
    crop: Optional[IntPair] = None
    crop_loc: Optional[Loc] = None
    crop_source: str = ""
    believed: list[BelievedCrop] = field(default_factory=list)
    output_stride: Optional[int] = None
    aspp: Optional[AsppFacts] = None
    extra_aspp: list[AsppFacts] = field(default_factory=list)  # a second ASPP head (Panoptic-DeepLab's instance head)
    ppm: Optional[PpmFacts] = None
    dilated_convs: list[DilatedConv] = field(default_factory=list)
    declared_stride: Optional[DeclaredStride] = None
    divisibility: Optional[Divisibility] = None
    unresolved: list[Unresolved] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why the crop is unknown, among other things
    crop_why: str = ""  # why the crop is unknown: "no RandomCrop in the training pipeline"
    stride_why: str = ""  # why a head's stride is unknown: "no model.backbone", "backbone type 'X' is not known"
    # Values the user supplied where the config carries none (per-file comment, --crop/--stride, pyproject).
    supplied: dict[str, str] = field(default_factory=dict)  # "crop"/"stride" -> where from
    unknown_heads: list[UnknownHead] = field(default_factory=list)  # heads with rates/scales no rule can check
    @property
    def unresolved_crop(self) -> bool:
        """Whether an AA001 already says why the crop is unknown (a RandomCrop whose size cannot be read)."""
        return any("crop" in u.what.lower() or "pipeline" in u.what or "dataset" in u.what for u in self.unresolved)

    # `train_dataloader.dataset.pipeline` set on a RepeatDataset-like wrapper, which has none: (key path, wrapper type)
    stray_pipeline: Optional[tuple[str, str]] = None


def as_crop(value: Any) -> Optional[IntPair]:
    """(h, w) from an int or a 2-sequence of positive ints, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in value
    ):
        return (value[0], value[1])
    return None


def positive_ints(value: Any) -> Optional[tuple[int, ...]]:
    if isinstance(value, (list, tuple)) and value and all(
        isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in value
    ):
        return tuple(value)
    return None


def drop_out_of_range(facts: ConfigFacts) -> None:
    """Facts whose numbers are outside the documented caps (a stride of 0, a rate of −12, a crop of 10**400)
    become AA001 on the line that set them, instead of reaching the rules' arithmetic. One place for every
    framework's resolver."""
    from atrous_advisor.numbers import CROP, RATE, SCALE, STRIDE, int_problem, shown

    def problem(values: Any, cap) -> Optional[str]:
        flat = [x for v in values for x in (v if isinstance(v, (tuple, list)) else (v,))]
        for x in flat:
            why = int_problem(x, cap)
            if why:
                return f"{shown(x)}: expected {cap.describe()}"
        return None

    def refuse(what: str, loc: Loc, why: str) -> None:
        if not any(u.loc == loc for u in facts.unresolved):  # one bad stride is one finding, not one per stage
            facts.unresolved.append(Unresolved(what, loc, why))

    if facts.crop is not None and (why := problem(facts.crop, CROP)):
        refuse("the training crop", facts.crop_loc or facts.anchor, why)
        facts.crop = None
    facts.believed = [b for b in facts.believed if problem(b.crop, CROP) is None]
    if facts.output_stride is not None and problem((facts.output_stride,), STRIDE):
        facts.output_stride = None  # the head that set it says why below
    def aspp_ok(aspp: AsppFacts) -> bool:
        if why := problem(aspp.rates, RATE):
            refuse(f"{aspp.head} rates", aspp.loc, why)
            return False
        if aspp.stride is not None and (why := problem((aspp.stride,), STRIDE)):  # None: unknown, AA002 asks for it
            refuse("output stride", aspp.stride_loc or aspp.loc, why)
            return False
        return True

    if facts.aspp is not None and not aspp_ok(facts.aspp):
        facts.aspp = None
    facts.extra_aspp = [head for head in facts.extra_aspp if aspp_ok(head)]
    if facts.ppm is not None:
        if why := problem(facts.ppm.scales, SCALE):
            refuse(f"{facts.ppm.head} pool scales", facts.ppm.loc, why)
            facts.ppm = None
        elif facts.ppm.stride is not None and (why := problem((facts.ppm.stride,), STRIDE)):
            refuse("output stride", facts.ppm.stride_loc or facts.ppm.loc, why)
            facts.ppm = None
    kept = []
    for conv in facts.dilated_convs:
        why = problem((conv.rate,), RATE) or problem((conv.stride,), STRIDE)
        if why:
            refuse(f"{conv.head} dilation", conv.loc, why)
        else:
            kept.append(conv)
    facts.dilated_convs = kept
    if facts.declared_stride is not None and (why := problem((facts.declared_stride.value,), STRIDE)):
        refuse(facts.declared_stride.key, facts.declared_stride.loc, why)
        facts.declared_stride = None
    if facts.divisibility is not None and problem((facts.divisibility.divisor,), CROP):
        facts.divisibility = None
