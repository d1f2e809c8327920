"""``inspect`` as a library call: model spec + crop → InspectReport.

Steps: load (meta if possible) → one forward under FlopCounterMode (cost, and the clear error when the model
fails at this crop) → capture → propagate fields → find heads → analyse them with the geometry module at
the measured feature map and stride → size-matters border layer → optional field map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional, cast

from atrous_advisor.errors import InputError, ModelLoadError
from atrous_advisor.geometry import AsppAssessment, analyse_ppm, assess_aspp, assess_branch
from atrous_advisor.usercode import user_code
from atrous_advisor.geometry.fields import AxisField, as_number
from atrous_advisor.graph import aten
from atrous_advisor.graph.handlers import NodeField
from atrous_advisor.graph.heads import HeadSite, heads_of
from atrous_advisor.report import format as fmt
from atrous_advisor.report.inspect_models import (
    AsppHead,
    FcnHead,
    InspectReport,
    LayerField,
    ModuleCost,
    PpmHead,
    UnassessedHead,
)

# ops shown in the per-layer table: the ones that change geometry or merge paths
_LAYER_OPS = aten.WINDOW | aten.ADAPTIVE_POOL | frozenset(aten.UPSAMPLE_TAPS) | aten.CONCAT | aten.RESIDUAL | aten.SDPA | {
    "aten.mean", "aten.mul", "aten.mul_", "aten.constant_pad_nd", "aten.slice",
}


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
    if mod.startswith("transformers"):
        # HF models are built from a config: the fix names its class ("hf:MobileViTConfig")
        config = getattr(model, "config", None)
        return f"hf:{type(config).__name__}" if config is not None else "transformers"
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
    if framework.startswith("hf:") and square and site.kind == "aspp":
        # MobileViT's DeepLabV3 head reads config.atrous_rates (an image-pooling branch is added by the model)
        return f"{framework[3:]}(atrous_rates=[{ints}], …)"
    literal = lambda r: str(r[0]) if r[0] == r[1] else f"({r[0]}, {r[1]})"  # noqa: E731 - what Conv2d takes
    pairs = ", ".join(f"{m}: dilation=padding={literal(r)}" for m, r in zip(site.branch_modules, rates))
    return f"set {pairs}"


def _single_int_fix(framework: str, site: HeadSite, single: list[int]) -> str:
    """Frameworks that take one int per branch: the assessment's one-int rates (as `rate` prints them)."""
    rates = [(r, r) for r in single]
    # one int serves both axes: it sits between the per-axis optima (their geometric mean), so it is too
    # large for the short axis and too small for the long one — the closest a square rate gets
    both = "one int per branch, for both axes (between the H and W optima)"
    if rates == list(site.rates):
        return f"with {both}, the current rates {fmt.rates(rates)} are already the closest"
    return f"{both}: {_rate_fix(framework, site, rates)}"


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
    if a.offset is not None and a.crop[0] != a.crop[1]:
        # a non-square crop: the FOV is judged per axis, so both are named (one can be too large, the other too small)
        problems.append(
            f"FOV {fmt.px(a.fov)} = {a.fov_ratio[0]:.2f}× H, {a.fov_ratio[1]:.2f}× W of the {fmt.crop(a.crop)} crop"
        )
    elif a.offset is not None and "high" in a.offset:
        problems.append(f"FOV {fmt.px(a.fov)} is {max(a.fov_ratio):.1f}× the {fmt.crop(a.crop)} crop")
    elif a.offset is not None and "low" in a.offset:
        problems.append(f"FOV {fmt.px(a.fov)} covers only {fmt.percent(min(a.fov_ratio))} of the {fmt.crop(a.crop)} crop")
    return problems


def _known_stride(site: HeadSite) -> tuple[int, int]:
    """The stride of an assessed head (a site with an unknown stride is listed as unassessed instead)."""
    assert site.stride is not None, site.name
    return site.stride


def analyse_aspp(site: HeadSite, crop: tuple[int, int], head_field, framework: str) -> AsppHead:
    stride = _known_stride(site)
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
    stride = _known_stride(site)
    analysis = analyse_ppm(crop, stride, site.scales, fmap=site.feature_map)
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
    base = f"scales {fmt.ints(site.scales)} on a {fmt.crop(site.feature_map)} map at stride {fmt.pair(stride)}"
    verdict = base + (": " + "; ".join(problems) if problems else ": cells fit the crop")
    fix = None
    if not ok:
        joined = ", ".join(map(str, suggested))
        cap = max(suggested)
        changes = [f"{m}.output_size = {min(s, cap)}" for m, s in zip(site.branch_modules, site.scales) if min(s, cap) != s]
        if framework == "mmseg":
            fix = f"use pool scales ({joined}): decode_head=dict(pool_scales=({joined}))"
        elif framework.startswith("hf:"):  # UperNet, BEiT, Data2Vec-Vision: config.pool_scales
            fix = f"use pool scales ({joined}): {framework[3:]}(pool_scales=[{joined}], …)"
        else:  # smp's PSPNet has no argument for its pool sizes: the fix is module surgery
            fix = f"use pool scales ({joined}): set " + ", ".join(changes) + (
                " (then drop the duplicate branch)" if len(suggested) < len(set(site.scales)) else ""
            )
    return PpmHead(
        name=site.name,
        branch_modules=site.branch_modules,
        scales=site.scales,
        feature_map=site.feature_map,
        stride=stride,
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
        name=site.name, rate=rate, feature_map=site.feature_map, stride=_known_stride(site),
        kernel_extent=info.kernel_extent, padding_fraction=info.padding_fraction,
        degenerate=info.degenerate, ok=not branch.flagged, verdict=verdict,
    )


def _layers(prop) -> list[LayerField]:
    rows = []
    for node in prop.graph.nodes:
        f = prop.known(node.id)
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


def _resize_behind(prop, node_id: int, depth: int = 8):
    """The nearest resize (interpolation) on the path into ``node_id``, through single-input ops."""
    for _ in range(depth):
        node = prop.graph.nodes[node_id]
        if node.kind in aten.UPSAMPLE_TAPS:
            return node
        inputs = [i for i in node.inputs if prop.known(i) is not None]
        if len(inputs) != 1:
            return None
        node_id = inputs[0]
    return None


def _resize_cause(prop, resize) -> str:
    """Why a resize lands off the other path's grid, in the op's own terms."""
    src: tuple[int, ...] = prop.graph.nodes[resize.inputs[0]].out_shape or ()
    out: tuple[int, ...] = resize.out_shape or ()
    sizes = f"{src[-2]}×{src[-1]} → {out[-2]}×{out[-1]}" if len(src) >= 2 and len(out) >= 2 else "?"
    integer = len(src) >= 2 and len(out) >= 2 and all(int(o) % int(i) == 0 for i, o in zip(src[-2:], out[-2:]))
    if aten.upsample_align(resize.kind, resize.args, resize.kwargs):
        return f"an align_corners=True resize {sizes} stretches the grid: its features fall between the other path's"
    if not integer:
        return f"odd sizes: the resize {sizes} is not a whole factor, so its grid cannot match the other path's"
    if aten.UPSAMPLE_TAPS[resize.kind] == 1:
        return f"a nearest resize {sizes} repeats each feature, shifting centres by half the factor minus ½ feature"
    return (f"the half-pixel centres of an align_corners=False resize {sizes} sit (s−1)/2 px off the grid of "
            "strided convs, whose feature 0 is centred on pixel 0")


def _misalignment(prop) -> str:
    """Name the first merge whose inputs disagree, with their jumps, centres and the resize that causes it."""
    for node in prop.graph.nodes:
        f = prop.known(node.id)
        if f is None or not (f.h.misaligned or f.w.misaligned):
            continue
        ids = [i for i in node.inputs if prop.known(i) is not None]
        inputs = [prop.known(i) for i in ids]
        if any(g.h.misaligned or g.w.misaligned for g in inputs):
            continue
        paths = "; ".join(
            f"jump {fmt.pair(_pair_of(g.axes, 'jump'))} centre {fmt.pair(_pair_of(g.axes, 'start'))}"
            for g in inputs if g.h.finite and not g.h.binned
        )
        resizes = [r for r in (_resize_behind(prop, i) for i in ids) if r is not None]
        cause = _resize_cause(prop, resizes[0]) if resizes else "paths with different strides or paddings meet"
        where = node.module or "<root>"
        return f"misaligned paths at {node.kind.split('.', 1)[-1]} in {where}: {paths} ({cause})"
    return "misaligned paths: branches merged with different jumps or centres"


def border_layer(prop, crop: tuple[int, int]) -> tuple[Optional[str], list[str]]:
    """Size Matters: the first conv/pool on the output's path whose inputs' field already exceeds the crop
    on both axes. Fields include dilation. Later layers whose inputs also exceed the crop are unproductive.
    """
    border, after = None, []
    reach = prop.reaching_output()
    for node in prop.graph.nodes:
        if node.kind not in aten.WINDOW or node.id not in reach:
            continue
        inputs = [prop.known(i) for i in node.inputs]
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


def output_stride(prop) -> Optional[tuple]:
    """The coarsest jump of real features on the output's path: finite fields not produced by
    adaptive-pooling bins or global mixing. None when the output is unknown."""
    if not isinstance(prop.output_field(), NodeField):
        return None
    best = [None, None]
    # the keys and values of global attention (SegFormer's spatially reduced ones) are mixed into one global
    # value: their grid never reaches the output as features
    for nid in prop.reaching_output(through_global=False):
        f = prop.known(nid)
        if f is None:
            continue
        for a in (0, 1):
            axis = f.axes[a]
            if axis.finite and not axis.binned and (best[a] is None or axis.jump > best[a]):
                best[a] = axis.jump
    if best[0] is None or best[1] is None:
        return None
    return tuple(as_number(b) for b in best)


def _capture_with_cost(model, crop: tuple[int, int], prefer: str, device: str):
    """(graph, propagation, cost) from one forward: the dispatch recorder runs inside FlopCounterMode, so
    the cost count is the same pass; torch.export traces on its own, so the count is a second pass there."""
    from torch.utils.flop_counter import FlopCounterMode

    from atrous_advisor.graph import cost as costs
    from atrous_advisor.graph.analysis import capture_and_propagate, example_input, forward_error

    if prefer == "dispatch":
        with FlopCounterMode(display=False, depth=None) as counter:
            graph, prop = capture_and_propagate(model, crop, prefer=prefer, device=device)
        return graph, prop, costs.from_counter(model, counter)
    try:
        fast, _ = costs.fast_cost(model, example_input(crop, device))
    except Exception as exc:
        raise forward_error(exc, crop) from exc
    graph, prop = capture_and_propagate(model, crop, prefer=prefer, device=device)
    return graph, prop, fast


@user_code()  # the model runs in here: it prints to stderr and cannot end the process
def inspect_model(
    spec: str,
    crop: tuple[int, int],
    kwargs: Optional[dict] = None,
    counter: str = "fast",
    layers: bool = True,
    field_map: Optional[Path] = None,
    prefer: str = "dispatch",
    force: bool = False,
) -> InspectReport:
    """Everything ``inspect`` reports about the model ``spec`` at ``crop`` (h, w).

    ``prefer`` picks the capture path: "dispatch" (record ATen calls during the one meta forward that also
    counts the cost; the default, see benchmarks/bench_inspect.py) or "export" (torch.export, falling back
    to dispatch tracing). An existing ``field_map`` file is only replaced with ``force``.
    """
    from atrous_advisor.graph import cost as costs
    from atrous_advisor.graph.analysis import example_input, forward_error
    from atrous_advisor.graph.loading import load_model

    if counter not in ("fast", "fvcore"):
        raise InputError(f"--counter {counter!r}: expected 'fast' or 'fvcore'")
    if field_map is not None and Path(field_map).is_dir():
        raise InputError(f"--field-map {field_map}: is a directory; give a file name such as field.png")
    if field_map is not None and Path(field_map).exists() and not force:
        raise InputError(f"--field-map {field_map}: already exists; pass --force to overwrite or choose another name")
    loaded = load_model(spec, kwargs, device="meta")
    model = loaded.model
    warnings: list[str] = []
    notes = list(loaded.notes)
    try:
        graph, prop, fast = _capture_with_cost(model, crop, prefer, loaded.device)
    except ModelLoadError as exc:
        if loaded.device != "meta" or "meta" not in str(exc):
            raise
        # the forward makes real tensors (positions from torch.arange on the CPU) or reads values: on the CPU
        loaded = load_model(spec, kwargs, device="cpu")
        model = loaded.model
        notes.append(f"run on CPU: the forward cannot run on the meta device ({str(exc)[:160]})")
        graph, prop, fast = _capture_with_cost(model, crop, prefer, "cpu")
    cost = fast
    if counter == "fvcore":
        cpu = load_model(spec, kwargs, device="cpu").model
        try:
            cost = costs.fvcore_cost(cpu, example_input(crop, "cpu"))
        except Exception as exc:
            raise forward_error(exc, crop) from exc
        notes.extend(cost.notes)
        del cpu

    notes.extend(graph.notes)
    out = prop.output_field()
    output_name = prop.output_name()
    unknown = None
    if isinstance(out, NodeField) and out.layout is None:
        unknown = "the model's output is not a map (N, C, H, W): its field is not per position"
        out = None
    elif not isinstance(out, NodeField):
        unknown = (
            f"the output's field is unknown: the graph could not be followed past {out.line()}"
            if out is not None else "the model's output carries no data from the image"
        )
        out = None
    framework = _framework(model)

    aspp, ppm, fcn, unassessed = [], [], [], []
    for site in heads_of(prop, crop):
        if site.unknown is not None:
            unassessed.append(UnassessedHead(
                name=site.name, kind=cast(Literal["aspp", "ppm", "fcn"], site.kind), branch_modules=site.branch_modules, rates=site.rates,
                scales=site.scales, feature_map=site.feature_map, stride=site.stride, reason=site.unknown,
            ))
        elif site.kind == "aspp":
            merged = prop.known(site.merge_node) if site.merge_node is not None else None
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
    gridding = misaligned = False
    if out is not None:
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
    border, unproductive = border_layer(prop, crop) if out is not None else (None, [])

    map_path = None
    if field_map is not None:
        from atrous_advisor.graph import fieldmap

        if out is None:
            raise InputError(f"--field-map: not drawn: {unknown}")
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
        crop=(crop[0], crop[1]),
        device=cast(Literal["meta", "cpu"], loaded.device),
        capture=graph.capture,
        output=output_name,
        unknown=unknown,
        output_stride=output_stride(prop),
        output_feature_map=(out.h.size, out.w.size) if out is not None else None,
        receptive_field=_pair_of(out.axes, "rf_max") if out is not None else None,
        receptive_field_min=_pair_of(out.axes, "rf_min") if out is not None else None,
        output_jump=_pair_of(out.axes, "jump") if out is not None else None,
        output_centre=_pair_of(out.axes, "start") if out is not None else None,
        global_context=(out.h.global_context or out.w.global_context) if out is not None else None,
        gridding=gridding,
        misaligned=misaligned,
        params=cost.params,
        macs=cost.macs,
        counter=cost.counter,
        cost_by_module=[ModuleCost(name=k, params=p, macs=m) for k, (p, m) in cost.per_module.items()],
        aspp=aspp,
        ppm=ppm,
        fcn=fcn,
        unassessed=unassessed,
        layers=_layers(prop) if layers else [],
        border_layer=border,
        unproductive_layers=unproductive,
        unsupported_ops=prop.unsupported,
        unsupported_reasons=prop.reasons,
        field_map=map_path,
        warnings=warnings,
        notes=notes,
    )
