"""``plan`` as a library call: model, budget, batch → the largest crop that trains, with its rates.

For each output stride (the model as built, or each value of ``strides`` through the builder's own argument)
the model is built once on the meta device, its head found once on the captured graph (that measures the
output stride), turned into fake tensors once, and its optimizer primed once; then each candidate crop
costs one fake training step under ``StepMemory``. Rates and scales come from ``advise_rates`` and
``advise_ppm`` at the measured stride, so they are the numbers ``rate`` and ``ppm`` print for that crop.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from atrous_advisor.errors import InputError, ModelLoadError
from atrous_advisor.plan.budget import ALLOCATOR_MARGIN, CONTEXT_RESERVE, usable_bytes
from atrous_advisor.report.format import size
from atrous_advisor.report.plan_models import MemoryBreakdown, PlanCandidate, PlanReport
from atrous_advisor.usercode import user_code

# Builder arguments that set a backbone's output stride: smp's encoders, and the common spelling elsewhere.
STRIDE_KWARGS = ("encoder_output_stride", "output_stride")
DEFAULT_CROPS = "384:1024:64"

Progress = Callable[[int, int, str], None]  # (done, total, what is running)


@dataclass
class _Head:
    """What the graph says about the head: its kind, stride and branches, or why there are no rates."""

    kind: Optional[str]  # "aspp" | "ppm" | None
    stride: Optional[int]
    site: Any = None  # graph.heads.HeadSite
    describe: str = ""

    @property
    def probe(self) -> Optional[str]:
        """The module whose input is the head's feature map."""
        return self.site.branch_modules[0] if self.kind else None


def parse_crops(text: str) -> list[tuple[int, int]]:
    """``384:1024:64`` (square crops, both ends included) or ``512,769,512x1024`` (a list)."""
    from atrous_advisor.geometry import parse_crop
    from atrous_advisor.numbers import CROP, MAX_LIST, parse_int, shown

    raw = str(text).strip()
    if ":" in raw:
        parts = raw.split(":")
        if len(parts) != 3:
            raise InputError(f"--crops {shown(raw)}: expected START:STOP:STEP such as 384:1024:64")
        start, stop = (parse_int(p, "--crops", CROP) for p in parts[:2])
        step = parse_int(parts[2], "--crops step", CROP)
        if stop < start:
            raise InputError(f"--crops {shown(raw)}: need 1 ≤ START ≤ STOP and STEP ≥ 1")
        count = (stop - start) // step + 1  # counted before a list of them is made
        if count > MAX_LIST:
            raise InputError(f"--crops {shown(raw)}: {count} crops; plan at most {MAX_LIST} at once")
        return [(s, s) for s in range(start, stop + 1, step)]
    items = [p for p in raw.split(",") if p.strip()]
    if len(items) > MAX_LIST:
        raise InputError(f"--crops: {len(items)} crops; plan at most {MAX_LIST} at once")
    if not items:
        raise InputError(f"--crops {raw!r}: expected START:STOP:STEP or a list such as 512,769,1024")
    try:
        crops = {parse_crop(p) for p in items}
    except InputError as exc:
        raise InputError(f"--crops {raw!r}: {exc}") from exc
    return sorted(crops, key=lambda c: (c[0] * c[1], c))


def _find_head(model, crop) -> _Head:
    """The first ASPP (else PPM) head on the captured graph and its measured stride; no guess when unknown."""
    from atrous_advisor.graph.analysis import capture_and_propagate
    from atrous_advisor.graph.heads import heads_of

    _, prop = capture_and_propagate(model, crop, prefer="dispatch")
    sites = heads_of(prop, crop)
    for kind in ("aspp", "ppm"):
        site = next((s for s in sites if s.kind == kind), None)
        if site is None:
            continue
        what = (f"ASPP {site.name} ({len(site.rates)} dilated branches)" if kind == "aspp"
                else f"PPM {site.name} (scales {tuple(site.scales)})")
        if site.unknown or site.stride is None:
            return _Head(None, None, describe=f"{what}: output stride unknown ({site.unknown or 'not measured'}); no rates")
        h, w = site.stride
        if h != w or float(h) != int(h):
            return _Head(None, None, describe=f"{what}: output stride {h:g}×{w:g} is not one integer; no rates")
        return _Head(kind, int(h), site, what + f" at output stride {int(h)}")
    return _Head(None, None, describe="no ASPP or PPM head found: memory only, no output stride, rates or scales")


def _fakeify(model, fake_mode, device: str = "cpu") -> None:
    """Replace every parameter and buffer by a fake tensor of the same shape, dtype and strides (shared stay shared)."""
    import torch

    memo: dict[int, torch.Tensor] = {}

    def convert(t, as_param: bool):
        if id(t) not in memo:
            new = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=device)
            memo[id(t)] = torch.nn.Parameter(new, requires_grad=t.requires_grad) if as_param else new
        return memo[id(t)]

    with fake_mode:
        for module in model.modules():
            for name, p in list(module._parameters.items()):
                if p is not None:
                    module._parameters[name] = convert(p, True)
            for name, b in list(module._buffers.items()):
                if b is not None:
                    module._buffers[name] = convert(b, False)


def _step_error(exc: BaseException, crop, batch: int) -> ModelLoadError:
    from torch._subclasses.fake_tensor import DataDependentOutputException, DynamicOutputShapeException, UnsupportedOperatorException

    from atrous_advisor.graph.analysis import forward_error

    message = " ".join(str(exc).split())
    if isinstance(exc, (UnsupportedOperatorException, DataDependentOutputException, DynamicOutputShapeException)):
        op = getattr(exc, "func", None)
        return ModelLoadError(
            f"the training step cannot run on fake tensors: op {op} has {type(exc).__name__} "
            "(its output depends on tensor values); plan cannot estimate this model"
        )
    if "more than 1 value per channel" in message:
        return ModelLoadError(
            f"batch {batch}: batch norm in training mode needs more than one value per channel "
            f"(an image-pooling branch sees one per image): use --batch 2 or more"
        )
    return forward_error(exc, crop)


def _measure(model, optimizer, head: _Head, crops, batch: int, precision: str, fake_mode, tick) -> list[tuple]:
    """(crop, peak, breakdown, feature_map, macs per image) per crop: one fake step each."""
    import torch

    from atrous_advisor.plan.step import training_step
    from atrous_advisor.plan.tracker import StepMemory

    seen: dict = {}
    handle = None
    if head.probe is not None:
        handle = model.get_submodule(head.probe).register_forward_pre_hook(
            lambda _m, args: seen.__setitem__("fmap", tuple(int(v) for v in args[0].shape[-2:]))
        )
    rows = []
    try:
        for crop in crops:
            tick(f"{crop[0]}×{crop[1]}")
            tracker = StepMemory()
            with fake_mode:
                for p in model.parameters():
                    tracker.track(p, "parameters")
                for b in model.buffers():
                    tracker.track(b, "parameters")
                for state in optimizer.state.values():
                    for value in state.values():
                        if isinstance(value, torch.Tensor):
                            tracker.track(value, "optimizer")
                images = torch.empty(batch, 3, crop[0], crop[1])
                target = torch.zeros(batch, crop[0], crop[1], dtype=torch.long)
                tracker.track(images, "activations")
                tracker.track(target, "activations")
                tracker.watch(model, optimizer)
                seen.clear()
                try:
                    with tracker:
                        training_step(model, optimizer, images, target, precision)
                except (InputError, ModelLoadError):
                    raise
                except Exception as exc:
                    raise _step_error(exc, crop, batch) from exc
                finally:
                    tracker.unwatch()
                del images, target
            rows.append((crop, tracker.peak, tracker.peak_breakdown, seen.get("fmap"), tracker.forward_flops // 2 // batch))
    finally:
        if handle is not None:
            handle.remove()
    return rows


def _load(spec: str, kwargs: dict, stride: Optional[int]):
    from atrous_advisor.graph.loading import load_model

    if stride is None:
        return load_model(spec, kwargs, device="meta")
    for key in STRIDE_KWARGS:
        if key in kwargs:
            raise InputError(f"--strides and --kwargs both set {key}; give the stride in one place")
    refused = []
    for key in STRIDE_KWARGS:
        try:
            return load_model(spec, {**kwargs, key: stride}, device="meta")
        except ModelLoadError as exc:
            if "unexpected keyword" not in str(exc):
                raise
            refused.append(key)
    raise InputError(
        f"--strides: model {spec!r} takes none of the output-stride arguments {', '.join(refused)}; "
        "drop --strides to plan the model at the stride it is built with"
    )


@user_code()  # the model runs in here: it prints to stderr and cannot end the process
def plan_model(
    spec: str,
    budget: int,
    batch: int,
    precision: str = "fp32",
    crops: Optional[Sequence[tuple[int, int]]] = None,
    image: Optional[tuple[int, int]] = None,
    strides: Optional[Sequence[int]] = None,
    kwargs: Optional[dict] = None,
    optimizer: str = "sgd",
    progress: Optional[Progress] = None,
) -> PlanReport:
    """Estimate one training step's peak memory for every candidate crop (× stride) and pick the largest that fits."""
    from atrous_advisor.plan.step import OPTIMIZERS, PRECISIONS

    if batch < 1:
        raise InputError(f"--batch {batch}: must be at least 1")
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"--optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
    crops = list(crops) if crops is not None else parse_crops(DEFAULT_CROPS)
    if image is not None:
        crops = [c for c in crops if c[0] <= image[0] and c[1] <= image[1]]
        if (image[0], image[1]) not in crops:
            crops.append((image[0], image[1]))  # whole-image training is a candidate of its own
    crops = sorted(set(crops), key=lambda c: (c[0] * c[1], c))
    usable = usable_bytes(budget)
    configs: list[Optional[int]] = list(strides) if strides else [None]

    from torch._subclasses.fake_tensor import FakeTensorMode

    from atrous_advisor.advice import advise_ppm, advise_rates
    from atrous_advisor.graph import inspection
    from atrous_advisor.graph.inspection import _rate_fix, analyse_ppm_site
    from atrous_advisor.plan.step import make_optimizer, prime_optimizer

    total = len(configs) * (len(crops) + 1)
    done = 0

    def tick(what: str) -> None:
        nonlocal done
        if progress is not None:
            progress(done, total, what)
        done += 1

    candidates: list[PlanCandidate] = []
    snippets: list[Optional[str]] = []  # the fix for each candidate, in the model's framework where known
    notes: list[str] = []
    heads: list[str] = []
    fix = None
    framework = ""
    for requested in configs:
        tick("building" + (f" at stride {requested}" if requested else ""))
        loaded = _load(spec, dict(kwargs or {}), requested)
        model = loaded.model
        notes.extend(loaded.notes)
        framework = inspection._framework(model)
        param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        if param_bytes > usable:
            raise InputError(
                f"--memory {size(budget)}: leaves {size(usable)} for tensors after the safety margin, "
                f"less than the parameters alone ({size(param_bytes)})"
            )
        head = _find_head(model, crops[0])
        if requested is not None and head.stride is not None and head.stride != requested:
            notes.append(f"built with output stride {requested}, the graph measures {head.stride}: using {head.stride}")
        heads.append(head.describe)
        fake_mode = FakeTensorMode(allow_non_fake_inputs=False)
        _fakeify(model, fake_mode)
        model.train()
        with fake_mode:
            opt = make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad])
            prime_optimizer(model, opt)
        rows = _measure(model, opt, head, crops, batch, precision, fake_mode, tick)
        for crop, peak, parts, fmap, macs in rows:
            rates = scales = optimal = snippet = None
            if head.kind == "aspp" and head.stride is not None:
                report = advise_rates(crop, head.stride, branches=len(head.site.rates))
                rates, optimal = list(report.suggested_rates), report.optimal_base_rate
                snippet = _rate_fix(framework, head.site, rates)
            elif head.kind == "ppm" and head.stride is not None:
                scales = list(advise_ppm(crop, head.stride, scales=head.site.scales).suggested_scales)
                if fmap is not None:
                    at_crop = analyse_ppm_site(dataclasses.replace(head.site, feature_map=fmap), crop, framework)
                    snippet = at_crop.fix if at_crop.suggested_scales == scales else None
            snippets.append(snippet)
            candidates.append(PlanCandidate(
                crop=crop, output_stride=head.stride, peak_bytes=peak, breakdown=MemoryBreakdown(**parts),
                fits=peak <= usable, feature_map=fmap, macs=macs, optimal_base_rate=optimal,
                suggested_rates=rates, suggested_scales=scales,
            ))
    fitting = [i for i, c in enumerate(candidates) if c.fits]
    # The largest crop; at equal crops the finer stride, which keeps more resolution for the same crop.
    best = max(fitting, key=lambda i: (candidates[i].crop[0] * candidates[i].crop[1], candidates[i].crop,
                                       -(candidates[i].output_stride or 0)), default=None)
    recommended = candidates[best] if best is not None else None
    if best is not None:
        fix = snippets[best]
    if progress is not None:
        progress(total, total, "done")
    return PlanReport(
        model=spec, memory_budget_bytes=budget, batch=batch, precision=precision,  # type: ignore[arg-type]
        candidates=candidates, recommended=recommended, usable_bytes=usable,
        context_reserve_bytes=CONTEXT_RESERVE, allocator_margin=ALLOCATOR_MARGIN,
        head="; ".join(dict.fromkeys(heads)), fix=fix, image=(image[0], image[1]) if image else None,
        notes=list(dict.fromkeys(notes)),
    )
