"""``inspect`` as a library call: model spec + crop → InspectReport.

Steps: load (meta if possible) → one forward under FlopCounterMode (cost, and the clear error when the model
fails at this crop) → capture → propagate fields → find heads → analyse them with the geometry module at
the measured feature map and stride → size-matters border layer → optional field map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from atrous_advisor.errors import InputError
from atrous_advisor.geometry import AsppAssessment, analyse_ppm, assess_aspp, assess_branch
from atrous_advisor.usercode import user_code
from atrous_advisor.geometry.fields import AxisField, as_number
from atrous_advisor.graph.heads import CONV_KINDS, HeadSite, heads_of
from atrous_advisor.report import format as fmt
from atrous_advisor.report.inspect_models import (
    AsppHead,
    FcnHead,
    InspectReport,
    LayerField,
    ModuleCost,
    PpmHead,
)

# ops shown in the per-layer table: the ones that change geometry or merge paths
_LAYER_OPS = CONV_KINDS | {
    "aten.conv_transpose2d", "aten.max_pool2d", "aten.max_pool2d_with_indices", "aten.avg_pool2d",
    "aten.adaptive_avg_pool2d", "aten._adaptive_avg_pool2d", "aten.adaptive_max_pool2d", "aten.mean",
    "aten.upsample_nearest2d", "aten.upsample_bilinear2d", "aten.upsample_bicubic2d",
    "aten._upsample_nearest_exact2d", "aten._upsample_bilinear2d_aa", "aten.cat", "aten.add", "aten.add_",
    "aten.mul", "aten.mul_", "aten.constant_pad_nd", "aten.slice",
}
_WINDOW_OPS = CONV_KINDS | {"aten.conv_transpose2d", "aten.max_pool2d", "aten.max_pool2d_with_indices", "aten.avg_pool2d"}


def _pair_of(axes: tuple[AxisField, AxisField], attr: str):
    return tuple(as_number(getattr(a, attr)) for a in axes)


def _framework(model) -> str:
    mod = type(model).__module__
    if mod.startswith("segmentation_models_pytorch"):
        return "smp"
    if mod.startswith("torchvision"):
        return "torchvision"
    if mod.startswith("mmseg"):
        return "mmseg"
    return "pytorch"


def _rate_fix(framework: str, site: HeadSite, rates: list[tuple[int, int]]) -> str:
    square = all(h == w for h, w in rates)
    ints = ", ".join(str(h) for h, _ in rates)
    if framework == "smp" and square:
        return f"decoder_atrous_rates=({ints})"
    if framework == "torchvision" and square:
        return f"model.classifier = DeepLabHead(in_channels, num_classes, atrous_rates=({ints}))"
    if framework == "mmseg" and square:
        return f"decode_head=dict(dilations=(1, {ints}))"
    literal = lambda r: str(r[0]) if r[0] == r[1] else f"({r[0]}, {r[1]})"  # noqa: E731 - what Conv2d takes
    pairs = ", ".join(f"{m}: dilation=padding={literal(r)}" for m, r in zip(site.branch_modules, rates))
    return f"set {pairs}"


def _single_int_fix(framework: str, site: HeadSite, single: list[int]) -> str:
    """Frameworks that take one int per branch: the assessment's one-int rates (as `rate` prints them)."""
    rates = [(r, r) for r in single]
    if rates == list(site.rates):
        return f"with one int per branch, the current rates {fmt.rates(rates)} are already the closest"
    return f"one int per branch: {_rate_fix(framework, site, rates)}"


def _aspp_problems(a: AsppAssessment) -> list[str]:
    """What is wrong with the head, in the order a reader should fix it."""
    problems = []
    if a.degenerate_rates:
        bad = a.degenerate_rates
        problems.append(
            f"rate{'s' if len(bad) > 1 else ''} {fmt.rates(bad)} ≥ the {fmt.crop(a.feature_map)} feature map: "
            "only the centre tap reads data, the branch is a 1×1 conv"
        )
    if a.padding_rates:
        worst = max(b.padding_fraction for b in a.branches if b.reads_padding)
        problems.append(f"up to {fmt.percent(worst)} of the dilated taps read zero padding")
    # A FOV off the crop is the same fact as a base rate off r*: it is reported from the tolerance check.
    if a.offset is not None and "high" in a.offset:
        problems.append(f"FOV {fmt.px(a.fov)} is {max(a.fov_ratio):.1f}× the {fmt.crop(a.crop)} crop")
    elif a.offset is not None and "low" in a.offset:
        problems.append(f"FOV {fmt.px(a.fov)} covers only {fmt.percent(min(a.fov_ratio))} of the {fmt.crop(a.crop)} crop")
    return problems


def analyse_aspp(site: HeadSite, crop: tuple[int, int], head_field, framework: str) -> AsppHead:
    n = len(site.rates)
    stride = site.stride
    a = assess_aspp(site.rates, crop, stride, feature_map=site.feature_map)
    rates_are = f"rates {fmt.rates(site.rates)} at output stride {fmt.pair(stride)} on a {fmt.crop(site.feature_map)} map"
    fix = None
    if a.ok:
        verdict = f"{rates_are}: fit the {fmt.crop(crop)} crop (FOV {fmt.px(a.fov)})"
    elif a.optimal_base_rate is None:
        verdict = f"{rates_are}: " + "; ".join([*_aspp_problems(a), f"unknown whether they fit: {a.reason}"])
    else:
        verdict = f"{rates_are}: " + ("; ".join(_aspp_problems(a)) or "base rate off the optimum") + (
            f" — r* = {fmt.pair(a.optimal_base_rate, digits=2)}"
        )
        if a.verdict == "no_fit":
            verdict += f"; {a.reason}"
        if a.suggested_rates is not None and a.suggested_rates != a.rates:
            fix = f"use rates {fmt.rates(a.suggested_rates)}: {_rate_fix(framework, site, a.suggested_rates)}"
            if a.single_int_rates is not None:
                fix += f"; or {_single_int_fix(framework, site, a.single_int_rates)}"
    return AsppHead(
        name=site.name,
        branch_modules=site.branch_modules,
        rates=site.rates,
        feature_map=site.feature_map,
        stride=stride,
        image_pool=site.image_pool,
        head_field=head_field,
        fov=a.fov,
        fov_ratio=a.fov_ratio,
        kernel_extent=[b.info.kernel_extent for b in a.branches],
        coverage=[b.info.coverage for b in a.branches],
        padding_fraction=[b.padding_fraction for b in a.branches],
        degenerate=[b.degenerate for b in a.branches],
        optimal_base_rate=a.optimal_base_rate,
        suggested_rates=a.suggested_rates,
        ok=a.ok,
        verdict=verdict,
        fix=fix,
    )


def analyse_ppm_site(site: HeadSite, crop: tuple[int, int], framework: str) -> PpmHead:
    analysis = analyse_ppm(crop, site.stride, site.scales, fmap=site.feature_map)
    small = [c.scale for c in analysis.cells if c.below_min_cell]
    redundant = [c.scale for c in analysis.cells if c.redundant]
    suggested = list(analysis.suggested_scales)
    ok = not small and not redundant and suggested == sorted(set(site.scales))
    problems = []
    if small:
        finest = min(analysis.cells, key=lambda c: min(c.cell_pixels))
        problems.append(
            (f"scales {tuple(small)} make" if len(small) > 1 else f"scale {small[0]} makes") + f" cells below {analysis.min_cell} px "
            f"(finest {fmt.pair(finest.cell_pixels, digits=0)} px)"
        )
    if redundant:
        problems.append(
            (f"scales {tuple(redundant)} exceed" if len(redundant) > 1 else f"scale {redundant[0]} exceeds")
            + " the feature map"
        )
    base = f"scales {fmt.ints(site.scales)} on a {fmt.crop(site.feature_map)} map at stride {fmt.pair(site.stride)}"
    verdict = base + (": " + "; ".join(problems) if problems else ": cells fit the crop")
    fix = None
    if not ok:
        joined = ", ".join(map(str, suggested))
        cap = max(suggested)
        changes = [f"{m}.output_size = {min(s, cap)}" for m, s in zip(site.branch_modules, site.scales) if min(s, cap) != s]
        if framework == "mmseg":
            fix = f"use pool scales ({joined}): decode_head=dict(pool_scales=({joined}))"
        else:  # smp's PSPNet has no argument for its pool sizes: the fix is module surgery
            fix = f"use pool scales ({joined}): set " + ", ".join(changes) + (
                " (then drop the duplicate branch)" if len(suggested) < len(set(site.scales)) else ""
            )
    return PpmHead(
        name=site.name,
        branch_modules=site.branch_modules,
        scales=site.scales,
        feature_map=site.feature_map,
        stride=site.stride,
        cell_features=[c.cell_features for c in analysis.cells],
        cell_pixels=[c.cell_pixels for c in analysis.cells],
        below_min_cell=[c.below_min_cell for c in analysis.cells],
        suggested_scales=suggested,
        ok=ok,
        verdict=verdict,
        fix=fix,
    )


def analyse_fcn(site: HeadSite) -> FcnHead:
    rate = site.rates[0]
    branch = assess_branch(rate, site.feature_map)
    info = branch.info
    verdict = f"dilation {fmt.pair(rate)} on a {fmt.crop(site.feature_map)} map: " + (
        "a 1×1 conv in effect (rate ≥ feature map)" if info.degenerate
        else f"{fmt.percent(info.padding_fraction)} of taps read padding"
    )
    return FcnHead(
        name=site.name, rate=rate, feature_map=site.feature_map, stride=site.stride,
        kernel_extent=info.kernel_extent, padding_fraction=info.padding_fraction,
        degenerate=info.degenerate, ok=not branch.flagged, verdict=verdict,
    )


def _layers(prop) -> list[LayerField]:
    rows = []
    for node in prop.graph.nodes:
        f = prop.fields.get(node.id)
        if f is None or node.kind not in _LAYER_OPS or f.layout is None or node.out_shape is None:
            continue
        rows.append(
            LayerField(
                name=node.module,
                op=node.kind.split(".", 1)[-1],
                feature_map=(int(node.out_shape[f.layout[0]]), int(node.out_shape[f.layout[1]])),
                rf_max=_pair_of(f.axes, "rf_max"),
                rf_min=_pair_of(f.axes, "rf_min"),
                jump=_pair_of(f.axes, "jump"),
                start=_pair_of(f.axes, "start"),
                global_context=(f.h.global_context, f.w.global_context),
                holes=(f.h.holes, f.w.holes),
                misaligned=(f.h.misaligned, f.w.misaligned),
            )
        )
    return rows


def _misalignment(prop) -> str:
    """Name the first merge whose inputs disagree, with their jumps and centres."""
    for node in prop.graph.nodes:
        f = prop.fields.get(node.id)
        if f is None or not (f.h.misaligned or f.w.misaligned):
            continue
        inputs = [prop.fields.get(i) for i in node.inputs]
        inputs = [g for g in inputs if g is not None and g.layout is not None]
        if any(g.h.misaligned or g.w.misaligned for g in inputs):
            continue
        paths = "; ".join(
            f"jump {fmt.pair(_pair_of(g.axes, 'jump'))} centre {fmt.pair(_pair_of(g.axes, 'start'))}"
            for g in inputs if g.h.finite and not g.h.binned
        )
        where = node.module or "<root>"
        return (f"misaligned paths at {node.kind.split('.', 1)[-1]} in {where}: {paths} "
                "(an align_corners=True or odd-sized resize does not land on the other path's grid)")
    return "misaligned paths: branches merged with different jumps or centres"


def border_layer(prop, crop: tuple[int, int]) -> tuple[Optional[str], list[str]]:
    """Size Matters: the first conv/pool whose inputs' field already exceeds the crop on both axes.

    Fields include dilation. Later layers whose inputs also exceed the crop are unproductive.
    """
    border, after = None, []
    for node in prop.graph.nodes:
        if node.kind not in _WINDOW_OPS:
            continue
        inputs = [prop.fields.get(i) for i in node.inputs]
        inputs = [f for f in inputs if f is not None and f.layout is not None]
        if not inputs:
            continue
        exceeds = all(
            max((f.axes[a].rf_max for f in inputs if f.axes[a].rf_max is not None), default=0) > crop[a]
            for a in (0, 1)
        )
        if not exceeds:
            continue
        label = node.module or node.kind
        if border is None:
            border = label
        else:
            after.append(label)
    return border, after


def output_stride(prop) -> tuple:
    """The coarsest jump of real features: finite fields not produced by adaptive-pooling bins."""
    best = [None, None]
    for f in prop.fields.values():
        if f is None or f.layout is None:
            continue
        for a in (0, 1):
            axis = f.axes[a]
            if axis.finite and not axis.binned and (best[a] is None or axis.jump > best[a]):
                best[a] = axis.jump
    return tuple(as_number(b) if b is not None else 1 for b in best)


@user_code()  # the model runs in here: it prints to stderr and cannot end the process
def inspect_model(
    spec: str,
    crop: tuple[int, int],
    kwargs: Optional[dict] = None,
    counter: str = "fast",
    layers: bool = True,
    field_map: Optional[Path] = None,
    prefer: str = "export",
) -> InspectReport:
    """Everything ``inspect`` reports about the model ``spec`` at ``crop`` (h, w).

    ``prefer`` picks the capture path: "export" (torch.export, falling back to dispatch tracing) or
    "dispatch" (record ATen calls during one meta forward: quicker, same graph).
    """
    from atrous_advisor.graph import cost as costs
    from atrous_advisor.graph.analysis import capture_and_propagate, example_input, forward_error
    from atrous_advisor.graph.loading import load_model

    if counter not in ("fast", "fvcore"):
        raise InputError(f"--counter {counter!r}: expected 'fast' or 'fvcore'")
    if field_map is not None and Path(field_map).is_dir():
        raise InputError(f"--field-map {field_map}: is a directory; give a file name such as field.png")
    loaded = load_model(spec, kwargs, device="meta")
    model = loaded.model
    warnings: list[str] = []
    notes = list(loaded.notes)
    x = example_input(crop, loaded.device)
    try:
        fast, _ = costs.fast_cost(model, x)  # also the forward check: a failure here is about the crop
    except Exception as exc:
        raise forward_error(exc, crop) from exc
    cost = fast
    if counter == "fvcore":
        cpu = load_model(spec, kwargs, device="cpu").model
        try:
            cost = costs.fvcore_cost(cpu, example_input(crop, "cpu"))
        except Exception as exc:
            raise forward_error(exc, crop) from exc
        notes.extend(cost.notes)
        del cpu

    graph, prop = capture_and_propagate(model, crop, prefer=prefer)
    notes.extend(graph.notes)
    warnings.extend(prop.notes)
    out = prop.output_field()
    if out is None or out.layout is None:
        warnings.append("the model's output has no spatial layout; fields describe its last spatial node")
        spatial = [f for f in prop.fields.values() if f is not None and f.layout is not None]
        out = spatial[-1]
    framework = _framework(model)

    sites = heads_of(prop)
    aspp, ppm, fcn = [], [], []
    for site in sites:
        if site.kind == "aspp":
            merged = prop.fields.get(site.merge_node) if site.merge_node is not None else None
            head_field = _pair_of(merged.axes, "rf_max") if merged else (None, None)
            aspp.append(analyse_aspp(site, crop, head_field, framework))
        elif site.kind == "ppm":
            ppm.append(analyse_ppm_site(site, crop, framework))
        else:
            fcn.append(analyse_fcn(site))
    for head in aspp:
        if not head.ok:
            warnings.append(f"{head.name}: {head.verdict}")
    for p in ppm:
        if not p.ok:
            warnings.append(f"{p.name}: {p.verdict}")
    gridding = out.h.holes or out.w.holes
    misaligned = out.h.misaligned or out.w.misaligned
    if gridding:
        steps = (out.h.support.lattice_step, out.w.support.lattice_step)
        read = (out.h.support.count, out.w.support.count)
        span = (out.h.support.span, out.w.support.span)
        lattice = f"; it reads every {fmt.pair(steps)} px" if max(steps) > 1 else ""
        warnings.append(
            f"gridding: the output's field has holes: it reads {fmt.pair(read)} of the {fmt.pair(span)} px it spans{lattice}"
        )
    if misaligned:
        warnings.append(_misalignment(prop))
    border, unproductive = border_layer(prop, crop)

    map_path = None
    if field_map is not None:
        from atrous_advisor.graph import fieldmap

        canvas = fieldmap.canvas_for(crop, (out.h.rf_max, out.w.rf_max))
        try:
            counts, _, _ = fieldmap.path_counts(model, canvas)
            fieldmap.render(counts, crop, Path(field_map), f"{spec} — paths to the centre output (crop {fmt.crop(crop)})")
            map_path = str(field_map)
            if canvas != tuple(crop):
                notes.append(f"field map drawn on a {canvas[0]}x{canvas[1]} canvas so the whole field fits")
        except fieldmap.FieldMapUnsupported as exc:
            warnings.append(f"field map not drawn: unsupported op {exc}")
        except InputError:
            raise
        except Exception as exc:
            warnings.append(f"field map not drawn: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}")

    return InspectReport(
        model=spec,
        crop=tuple(crop),
        device=loaded.device,
        capture=graph.capture,
        output_stride=output_stride(prop),
        output_feature_map=(out.h.size, out.w.size),
        receptive_field=_pair_of(out.axes, "rf_max"),
        receptive_field_min=_pair_of(out.axes, "rf_min"),
        output_jump=_pair_of(out.axes, "jump"),
        output_centre=_pair_of(out.axes, "start"),
        global_context=out.h.global_context or out.w.global_context,
        gridding=gridding,
        misaligned=misaligned,
        params=cost.params,
        macs=cost.macs,
        counter=cost.counter,
        cost_by_module=[ModuleCost(name=k, params=p, macs=m) for k, (p, m) in cost.per_module.items()],
        aspp=aspp,
        ppm=ppm,
        fcn=fcn,
        layers=_layers(prop) if layers else [],
        border_layer=border,
        unproductive_layers=unproductive,
        unsupported_ops=prop.unsupported,
        field_map=map_path,
        warnings=warnings,
        notes=notes,
    )
