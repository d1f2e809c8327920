"""From a crop and a stride to a full, renderable answer: the library side of ``rate`` and ``ppm``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional, Sequence, Union

from atrous_advisor import numbers
from atrous_advisor.errors import InputError
from atrous_advisor.geometry import (
    DEFAULT_BRANCHES,
    DEFAULT_MARGIN,
    DEFAULT_MIN_CELL,
    DEFAULT_SCALES,
    AsppAssessment,
    analyse_ppm,
    collapses_to_global,
    assess_aspp,
    default_base_rate,
    optimal_base_rate,
    pair,
)
from atrous_advisor.report import format as fmt
from atrous_advisor.report.models import (
    BranchEvaluation,
    CellEvaluation,
    PPMReport,
    RateEvaluation,
    RateReport,
)

Rate = Union[int, tuple[int, int]]


def _evaluation(name: str, assessment: AsppAssessment) -> RateEvaluation:
    return RateEvaluation(
        name=name,  # type: ignore[arg-type]
        rates=assessment.rates,
        fov=assessment.fov,
        fov_ratio=assessment.fov_ratio,
        effective_base_rate=assessment.effective_base_rate,
        within_tolerance=assessment.within_tolerance,
        branches=[BranchEvaluation(**asdict(b.info)) for b in assessment.branches],
    )


def _rate_snippets(suggested: list[tuple[int, int]], single: Optional[list[int]]) -> dict[str, str]:
    ints = [r[0] for r in suggested] if single is None else single
    joined = ", ".join(str(r) for r in ints)
    snippets = {
        "mmsegmentation": f"decode_head=dict(dilations=(1, {joined}))",
        "torchvision": f"DeepLabHead(in_channels, num_classes, atrous_rates=({joined}))",
        "segmentation_models_pytorch": f"decoder_atrous_rates=({joined})",
        "detectron2": f"MODEL.SEM_SEG_HEAD.ASPP_DILATIONS: [{joined}]",
    }
    if single is not None:
        snippets["pytorch (anisotropic)"] = "Conv2d(..., dilation=d, padding=d) with d in " + ", ".join(
            f"({h}, {w})" for h, w in suggested
        )
    return snippets


def _within_caps(**values) -> None:
    """The documented caps (atrous_advisor.numbers) hold for API callers too: no value can make the tables hang."""
    caps = {"crop": numbers.CROP, "stride": numbers.STRIDE, "branches": numbers.BRANCHES, "margin": numbers.MARGIN,
            "rates": numbers.RATE, "scales": numbers.SCALE, "min_cell": numbers.MIN_CELL}
    for name, value in values.items():
        if value is None:
            continue
        many = isinstance(value, (list, tuple))
        if many and name in ("rates", "scales") and len(value) > numbers.MAX_LIST:
            raise InputError(f"{name}: {len(value)} values; at most {numbers.MAX_LIST} are accepted")
        flat = [x for v in (value if many else [value]) for x in (v if isinstance(v, (list, tuple)) else [v])]
        for x in flat:
            numbers.check_int(x, name, caps[name])


def advise_rates(
    crop: Union[int, tuple[int, int]],
    stride: int,
    branches: Optional[int] = None,
    margin: int = DEFAULT_MARGIN,
    current: Optional[Sequence[Rate]] = None,
) -> RateReport:
    """Compare DeepLab's default rates (and the user's ``current`` ones) with the resolution-aware optimum."""
    crop = pair(crop)
    current_pairs = [pair(r) for r in current] if current else None
    _within_caps(crop=crop, stride=stride, branches=branches, margin=margin, rates=current_pairs)
    if branches is None:
        branches = len(current_pairs) if current_pairs else DEFAULT_BRANCHES
    elif current_pairs and len(current_pairs) != branches:
        raise InputError(
            f"rates {fmt.rates(current_pairs)}: {len(current_pairs)} dilated branches, but --branches is {branches}"
        )
    # r* must exist for `rate` (the user asked for it): a crop not larger than the margin is bad input here.
    optimal = optimal_base_rate(crop, stride, branches, margin)
    (dh, dw), extrapolated = default_base_rate(stride)
    defaults = [(k * dh, k * dw) for k in range(1, branches + 1)]

    def assess(rates: Sequence[tuple[int, int]]) -> AsppAssessment:
        return assess_aspp(rates, crop, stride, margin=margin)

    default = assess(defaults)
    reference = assess(current_pairs) if current_pairs else default
    assert default.suggested_rates is not None  # r* exists, checked above
    suggested = assess(default.suggested_rates)
    evaluations = [_evaluation("default", default)]
    if current_pairs:
        evaluations.append(_evaluation("current", reference))
    evaluations.append(_evaluation("suggested", suggested))

    warnings = []
    if extrapolated:
        warnings.append(
            f"output stride {stride}: DeepLab's rule r = 96/s was only used at strides 8 and 16; "
            f"the default shown ({dh}) is an extrapolation"
        )
    if min(optimal) < 1:
        warnings.append(
            f"crop {fmt.crop(crop)} is too small for {branches} dilated branches at stride {stride}: "
            f"r* = {fmt.pair(optimal, digits=2)} < 1, so even rate 1 gives a field of view of "
            f"{fmt.px(suggested.fov)}; use fewer branches, a smaller output stride or a larger crop"
        )
    return RateReport(
        crop=crop,
        output_stride=stride,
        feature_map=default.feature_map,
        margin=margin,
        branches=branches,
        optimal_base_rate=optimal,
        suggested_base_rate=default.suggested_rates[0],
        suggested_rates=default.suggested_rates,
        single_int_rates=default.single_int_rates,
        default_rates=defaults,
        default_rule_extrapolated=extrapolated,
        current_rates=current_pairs,
        evaluations=evaluations,
        verdict=_rate_verdict(reference, "your rates" if current_pairs else "the default rates"),
        ok=reference.ok,
        warnings=warnings,
        snippets=_rate_snippets(default.suggested_rates, default.single_int_rates),
    )


def _rate_verdict(reference: AsppAssessment, label: str) -> str:
    """One line: OK, or what is wrong with ``reference`` and the rates to use."""
    assert reference.optimal_base_rate is not None and reference.suggested_rates is not None
    rates = fmt.rates(reference.rates)
    r_star = fmt.pair(reference.optimal_base_rate, digits=2)
    crop = fmt.crop(reference.crop)
    if reference.ok:
        return f"OK: {label} {rates} suit a {crop} px crop (FOV {fmt.px(reference.fov)}, r* = {r_star})."
    problems = [f"FOV {fmt.px(reference.fov)} for a {crop} px crop ({fmt.percent_pair(reference.fov_ratio)})"]
    degenerate = [fmt.pair(r) for r in reference.degenerate_rates]
    if degenerate:
        noun = "branch" if len(degenerate) == 1 else "branches"
        verb = "degenerates" if len(degenerate) == 1 else "degenerate"
        problems.append(f"{noun} {', '.join(degenerate)} {verb} to a 1×1 conv")
    padding = [b for b in reference.branches if b.reads_padding]
    if padding:
        worst = max(padding, key=lambda b: b.padding_fraction)
        problems.append(f"rate {fmt.pair(worst.rate)} reads {fmt.percent(worst.padding_fraction)} padding")
    if reference.verdict == "no_fit":
        return f"Warning: {label} {rates} give " + "; ".join(problems) + f", and {reference.reason} (r* = {r_star})."
    return (
        f"Retune: {label} {rates} give " + "; ".join(problems)
        + f". Use {fmt.rates(reference.suggested_rates)} (r* = {r_star})."
    )


def advise_ppm(
    crop: Union[int, tuple[int, int]],
    stride: int,
    scales: Sequence[int] = DEFAULT_SCALES,
    min_cell: int = DEFAULT_MIN_CELL,
) -> PPMReport:
    """Cell sizes of a pyramid pooling module at this crop and the scales to use instead."""
    _within_caps(crop=pair(crop), stride=stride, scales=scales, min_cell=min_cell)
    analysis = analyse_ppm(crop, stride, scales, min_cell)
    small = [c.scale for c in analysis.cells if c.below_min_cell]
    repeated = [c.scale for c in analysis.cells if c.redundant]
    warnings = []
    if repeated:
        warnings.append(
            f"scales {', '.join(map(str, repeated))} exceed the {fmt.crop(analysis.feature_map)} feature map: "
            "adaptive pooling repeats positions across bins"
        )
    suggested = list(analysis.suggested_scales)
    ok = not small and not repeated
    if ok:
        verdict = f"OK: every cell of scales {fmt.ints(scales)} is at least {min_cell} px at a {fmt.crop(analysis.crop)} crop."
    elif suggested != sorted(set(scales)):
        finest = min(analysis.cells, key=lambda c: min(c.cell_pixels))
        verdict = (
            f"Retune: the {finest.scale}×{finest.scale} grid has {fmt.pair(finest.cell_pixels, digits=0)} px "
            f"cells, below {min_cell} px. Use pool_scales={tuple(suggested)}."
        )
    elif collapses_to_global(analysis.crop, min_cell):
        verdict = (
            f"Warning: cells below {min_cell} px, but at a {fmt.crop(analysis.crop)} crop only global pooling would "
            "keep cells that large, and a pyramid cut to it measured worse (docs/validate.md); no change suggested: "
            "train at a larger crop, or keep these scales."
        )
    else:
        verdict = (
            f"Warning: cells below {min_cell} px, and no coarser scales are left at a {fmt.crop(analysis.crop)} crop; "
            "train at a larger crop or use a smaller --min-cell."
        )
    return PPMReport(
        crop=analysis.crop,
        output_stride=stride,
        feature_map=analysis.feature_map,
        min_cell=min_cell,
        scales=list(scales),
        cells=[CellEvaluation(**asdict(c)) for c in analysis.cells],
        suggested_scales=suggested,
        verdict=verdict,
        ok=ok,
        warnings=warnings,
        # a paste line only where it changes something
        snippets={} if suggested == sorted(set(scales)) else {"mmsegmentation": f"decode_head=dict(pool_scales={tuple(suggested)})"},
    )
