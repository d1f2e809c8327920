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
    analyse_ppm,
    analyse_rates,
    base_rate_within_tolerance,
    default_base_rate,
    feature_map,
    optimal_base_rate,
    pair,
    single_int_rate,
    suggested_rates,
)
from atrous_advisor.report.models import (
    BranchEvaluation,
    CellEvaluation,
    PPMReport,
    RateEvaluation,
    RateReport,
)

Rate = Union[int, tuple[int, int]]


def fmt_pair(value: Sequence, unit: str = "") -> str:
    """``64`` for a square pair, ``64×128`` otherwise."""
    h, w = value
    text = f"{h:g}" if h == w else f"{h:g}×{w:g}"
    return text + unit


def fmt_rates(rates: Sequence[Sequence[int]]) -> str:
    return "(" + ", ".join(fmt_pair(r) for r in rates) + ")"


def _evaluate(name: str, rates: list[tuple[int, int]], crop, stride, margin, branches, optimal) -> RateEvaluation:
    analysis = analyse_rates(rates, crop, stride, margin)
    largest = (max(r[0] for r in rates), max(r[1] for r in rates))
    effective = (largest[0] / branches, largest[1] / branches)
    return RateEvaluation(
        name=name,  # type: ignore[arg-type]
        rates=analysis.rates,
        fov=analysis.fov,
        fov_ratio=analysis.fov_ratio,
        effective_base_rate=effective,
        within_tolerance=all(base_rate_within_tolerance(e, o) for e, o in zip(effective, optimal)),
        branches=[BranchEvaluation(**asdict(b)) for b in analysis.branches],
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
            f"rates {fmt_rates(current_pairs)}: {len(current_pairs)} dilated branches, but --branches is {branches}"
        )
    optimal = optimal_base_rate(crop, stride, branches, margin)
    suggested = suggested_rates(crop, stride, branches, margin)
    (dh, dw), extrapolated = default_base_rate(stride)
    defaults = [(k * dh, k * dw) for k in range(1, branches + 1)]
    single = None
    if crop[0] != crop[1]:
        base = single_int_rate(optimal)
        single = [k * base for k in range(1, branches + 1)]

    evaluations = [_evaluate("default", defaults, crop, stride, margin, branches, optimal)]
    if current_pairs:
        evaluations.append(_evaluate("current", current_pairs, crop, stride, margin, branches, optimal))
    evaluations.append(_evaluate("suggested", suggested, crop, stride, margin, branches, optimal))

    warnings = []
    if extrapolated:
        warnings.append(
            f"output stride {stride}: DeepLab's rule r = 96/s was only used at strides 8 and 16; "
            f"the default shown ({dh}) is an extrapolation"
        )
    if min(optimal) < 1:
        warnings.append(
            f"crop {fmt_pair(crop)} is too small for {branches} dilated branches at stride {stride}: "
            f"r* = {fmt_pair(tuple(round(o, 2) for o in optimal))} < 1, so even rate 1 gives a field of view of "
            f"{fmt_pair(evaluations[-1].fov)} px; use fewer branches, a smaller output stride or a larger crop"
        )
    verdict, ok = _rate_verdict(evaluations[1] if current_pairs else evaluations[0], evaluations[-1], crop, optimal)
    return RateReport(
        crop=crop,
        output_stride=stride,
        feature_map=feature_map(crop, stride),
        margin=margin,
        branches=branches,
        optimal_base_rate=optimal,
        suggested_base_rate=suggested[0],
        suggested_rates=suggested,
        single_int_rates=single,
        default_rates=defaults,
        default_rule_extrapolated=extrapolated,
        current_rates=current_pairs,
        evaluations=evaluations,
        verdict=verdict,
        ok=ok,
        warnings=warnings,
        snippets=_rate_snippets(suggested, single),
    )


def _rate_verdict(reference: RateEvaluation, suggested: RateEvaluation, crop, optimal) -> tuple[str, bool]:
    label = "your rates" if reference.name == "current" else "the default rates"
    rates = fmt_rates(reference.rates)
    degenerate = [fmt_pair(b.rate) for b in reference.branches if b.degenerate]
    worst = max(reference.branches, key=lambda b: b.padding_fraction)
    r_star = fmt_pair(tuple(round(o, 2) for o in optimal))
    if reference.within_tolerance and not degenerate:
        return (
            f"OK: {label} {rates} suit a {fmt_pair(crop)} px crop "
            f"(FOV {fmt_pair(reference.fov)} px, r* = {r_star}).",
            True,
        )
    problems = [
        f"FOV {fmt_pair(reference.fov)} px for a {fmt_pair(crop)} px crop "
        f"({fmt_pair(tuple(round(100 * r) for r in reference.fov_ratio))}%)"
    ]
    if degenerate:
        noun = "branch" if len(degenerate) == 1 else "branches"
        verb = "degenerates" if len(degenerate) == 1 else "degenerate"
        problems.append(f"{noun} {', '.join(degenerate)} {verb} to a 1×1 conv")
    elif worst.padding_fraction >= 0.5:
        problems.append(f"rate {fmt_pair(worst.rate)} reads {worst.padding_fraction:.0%} padding")
    return (
        f"Retune: {label} {rates} give " + "; ".join(problems) + f". Use {fmt_rates(suggested.rates)} (r* = {r_star}).",
        False,
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
            f"scales {', '.join(map(str, repeated))} exceed the {fmt_pair(analysis.feature_map)} feature map: "
            "adaptive pooling repeats positions across bins"
        )
    suggested = list(analysis.suggested_scales)
    ok = not small and not repeated
    if ok:
        verdict = f"OK: every cell of scales {tuple(scales)} is at least {min_cell} px at a {fmt_pair(analysis.crop)} crop."
    elif suggested != sorted(set(scales)):
        finest = min(analysis.cells, key=lambda c: min(c.cell_pixels))
        verdict = (
            f"Retune: the {finest.scale}×{finest.scale} grid has {fmt_pair(tuple(round(p) for p in finest.cell_pixels))} px "
            f"cells, below {min_cell} px. Use pool_scales={tuple(suggested)}."
        )
    else:
        verdict = (
            f"Warning: cells below {min_cell} px, and no coarser scales are left at a {fmt_pair(analysis.crop)} crop; "
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
        snippets={"mmsegmentation": f"decode_head=dict(pool_scales={tuple(suggested)})"},
    )
