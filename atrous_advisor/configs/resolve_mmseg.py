"""From a merged MMSegmentation config to facts: the real crop, each head's stride, rates and scales.

The crop is ``RandomCrop.crop_size`` in the training pipeline that the dataloader really uses, not a
top-level ``crop_size`` (a base's pipeline keeps the crop it was built with). The output stride is derived
from the backbone (``strides``, ``out_indices``), the neck, and the head's ``in_index``.
"""

from __future__ import annotations

import re
from math import prod
from pathlib import Path
from typing import Any, Optional

from atrous_advisor.configs.facts import (
    AsppFacts,
    BelievedCrop,
    ConfigFacts,
    DilatedConv,
    Divisibility,
    PpmFacts,
    Target,
    Unresolved,
    as_crop,
    positive_ints,
)
from atrous_advisor.configs.values import Loc, Opaque, V, find_opaque, plain

ASPP_HEADS = {"ASPPHead": (1, 6, 12, 18), "DepthwiseSeparableASPPHead": (1, 6, 12, 18)}
PPM_HEADS = {"PSPHead": (1, 2, 3, 6), "UPerHead": (1, 2, 3, 6)}
WRAPPERS = {"RepeatDataset", "ClassBalancedDataset", "MultiImageMixDataset"}

# Backbones whose stage strides we know: (stem stride, default strides, default out_indices).
RESNETS = {"ResNet", "ResNetV1c", "ResNetV1d", "ResNeSt", "ResNeXt"}
BACKBONES = {
    **{name: (4, (1, 2, 2, 2), (0, 1, 2, 3)) for name in RESNETS},
    "MobileNetV2": (2, (1, 2, 2, 2, 1, 2, 1), (1, 2, 4, 6)),
    "SwinTransformer": (1, (4, 2, 2, 2), (0, 1, 2, 3)),
}

_NAME_CROP = re.compile(r"(?<![0-9a-z])(\d{2,5})x(\d{2,5})(?![0-9])")


def type_name(v: Optional[V]) -> Optional[str]:
    """The registry type of a component dict, without a scope prefix (``mmseg.ASPPHead`` -> ``ASPPHead``)."""
    t = v.get("type") if v is not None else None
    if t is None or not isinstance(t.value, str):
        return None
    return t.value.rsplit(".", 1)[-1]


def _python_render(value: Any) -> str:
    if isinstance(value, tuple):
        inner = ", ".join(_python_render(x) for x in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(_python_render(x) for x in value) + "]"
    return repr(value)


class _Resolver:
    def __init__(self, path: Path, cfg: dict[str, V], anchor: Loc):
        self.cfg = cfg
        self.facts = ConfigFacts(path=path, framework="mmseg", anchor=anchor)
        # Why the stride is unknown (an unknown backbone or neck): reported only if a rule needs the stride,
        # so that a SegFormer config is not flagged for lacking something no rule asks of it.
        self.stride_problem: Optional[Unresolved] = None

    def unresolved(self, what: str, v: V) -> None:
        found = find_opaque(v)
        reason = found[0].reason if found else "not a value atrous-advisor can read"
        loc = found[1].loc if found and found[1] is not None else v.loc  # where the unreadable value was written
        self.facts.unresolved.append(Unresolved(what, loc, reason))

    # --- crop ------------------------------------------------------------------------------------------
    def datasets(self, v: V, trail: str) -> list[tuple[V, str]]:
        if isinstance(v.value, list):
            return [d for i, item in enumerate(v.value) for d in self.datasets(item, f"{trail}[{i}]")]
        if not isinstance(v.value, dict):
            self.unresolved(f"training dataset `{trail}`", v)
            return []
        kind = type_name(v)
        if kind in WRAPPERS and v.get("dataset") is not None:
            if kind != "MultiImageMixDataset" and v.get("pipeline") is not None and self.facts.stray_pipeline is None:
                self.facts.stray_pipeline = (f"{trail}.pipeline", kind)  # a child meant it, the wrapper ignores it
            return self.datasets(v.value["dataset"], trail + ".dataset")
        if kind == "ConcatDataset" and v.get("datasets") is not None:
            return self.datasets(v.value["datasets"], trail + ".datasets")
        return [(v, trail)]

    def crop(self) -> None:
        loader = self.cfg.get("train_dataloader")
        if loader is not None and loader.get("dataset") is not None:
            root, trail = loader.value["dataset"], "train_dataloader.dataset"
        else:
            data = self.cfg.get("data")
            if data is None or data.get("train") is None:
                self.facts.notes.append("no training dataset (train_dataloader or data.train) found")
                return
            root, trail = data.value["train"], "data.train"
        crops: list[tuple[tuple[int, int], V]] = []
        opaque_steps: list[tuple[str, V]] = []
        unresolved = len(self.facts.unresolved)  # a crop that is unresolved is reported as AA001, not as missing
        for dataset, where in self.datasets(root, trail):
            pipeline = dataset.get("pipeline")
            if pipeline is None:
                continue
            if not isinstance(pipeline.value, list):
                self.unresolved(f"`{where}.pipeline`", pipeline)
                continue
            for step in pipeline.value:
                if isinstance(step.value, Opaque):
                    opaque_steps.append((f"a step of `{where}.pipeline`", step))
                elif type_name(step) == "RandomCrop":
                    size = step.get("crop_size")
                    crop = as_crop(plain(size)) if size is not None else None
                    if crop is None:
                        self.unresolved("RandomCrop.crop_size", size if size is not None else step)
                    else:
                        crops.append((crop, size))
        if not crops:
            for what, step in opaque_steps:  # one of them may be the crop: say so rather than pass silently
                self.unresolved(what, step)
            if not opaque_steps and len(self.facts.unresolved) == unresolved:
                self.facts.notes.append(f"no RandomCrop in the training pipeline ({trail})")
        if crops:
            (crop, size) = crops[0]
            self.facts.crop, self.facts.crop_loc, self.facts.crop_source = crop, size.loc, "RandomCrop.crop_size"
            if len({c for c, _ in crops}) > 1:
                self.facts.notes.append(
                    "the concatenated datasets crop differently: " + ", ".join(f"{h}x{w}" for (h, w), _ in crops)
                )

    def believed(self) -> None:
        top = self.cfg.get("crop_size")
        if top is not None:
            crop = as_crop(plain(top))
            if crop is not None:
                self.facts.believed.append(BelievedCrop(crop, top.loc, "crop_size"))
        matches = _NAME_CROP.findall(self.facts.path.stem)
        if matches:
            h, w = matches[-1]
            self.facts.believed.append(BelievedCrop((int(h), int(w)), self.facts.anchor, "file name"))

    # --- stride ----------------------------------------------------------------------------------------
    def int_tuple(self, comp: V, key: str, default: tuple, what: str) -> Optional[tuple]:
        v = comp.get(key)
        if v is None:
            return default
        value = plain(v)
        if isinstance(value, (list, tuple)) and all(type(x) is int for x in value):
            return tuple(value)
        self.unresolved(what, v)
        return None

    def backbone_outputs(self, backbone: V) -> Optional[tuple[list[int], Loc]]:
        """The stride of every feature map the backbone returns, and where the strides were set."""
        kind = type_name(backbone)
        if kind == "UNet":
            return self.unet_outputs(backbone)
        if kind not in BACKBONES:
            self.stride_problem = Unresolved(
                "output stride", backbone.loc, f"backbone type {kind!r} is not one atrous-advisor knows"
            )
            return None
        stem, default_strides, default_out = BACKBONES[kind]
        strides = self.int_tuple(backbone, "strides", default_strides, f"{kind}.strides")
        out = self.int_tuple(backbone, "out_indices", default_out, f"{kind}.out_indices")
        if strides is None or out is None:
            return None
        loc = backbone.value["strides"].loc if "strides" in backbone.value else backbone.loc
        stage = [stem * prod(strides[: i + 1]) for i in range(len(strides))]
        dilations = backbone.get("dilations")
        if dilations is not None:
            # A dilated stage's 3×3 convs are dilated convs too (d8 bases: dilation 4 at stride 8).
            values = plain(dilations)
            grid_v = backbone.get("multi_grid")
            grid = positive_ints(plain(grid_v)) if grid_v is not None else None
            if isinstance(values, (list, tuple)) and len(values) == len(stage):
                for i, d in enumerate(values):
                    if type(d) is not int:
                        continue
                    last = i == len(stage) - 1
                    # mmseg's ResNet multiplies the last stage's dilation by multi_grid, block by block.
                    for rate, loc in ([(d * g, grid_v.loc) for g in grid] if last and grid else [(d, dilations.loc)]):
                        if rate > 1:
                            self.facts.dilated_convs.append(DilatedConv(f"{kind} stage {i + 1}", rate, loc, stage[i]))
        try:
            return [stage[i] for i in out], loc
        except IndexError:
            self.facts.unresolved.append(Unresolved("output stride", loc, f"out_indices {out} exceed the stages"))
            return None

    def unet_params(self, backbone: V) -> Optional[tuple[int, tuple, tuple]]:
        num = backbone.get("num_stages")
        num_stages = plain(num) if num is not None else 5
        if type(num_stages) is not int or not 1 <= num_stages <= 64:
            self.unresolved("UNet.num_stages", num)
            return None
        strides = self.int_tuple(backbone, "strides", (1,) * num_stages, "UNet.strides")
        downs = backbone.get("downsamples")
        downsamples = plain(downs) if downs is not None else (True,) * (num_stages - 1)
        if strides is None or not isinstance(downsamples, (list, tuple)) or find_opaque(downs):
            if downs is not None and find_opaque(downs):
                self.unresolved("UNet.downsamples", downs)
            return None
        if len(strides) != num_stages or len(downsamples) != num_stages - 1:  # mmseg's UNet asserts these
            self.facts.unresolved.append(Unresolved(
                "UNet stages", backbone.loc,
                f"num_stages={num_stages} needs {num_stages} strides and {num_stages - 1} downsamples, "
                f"got {len(strides)} and {len(downsamples)}",
            ))
            return None
        return num_stages, strides, tuple(downsamples)

    def unet_outputs(self, backbone: V) -> Optional[tuple[list[int], Loc]]:
        """UNet returns the bottleneck and every decoder stage: the last output is full resolution (stride 1)."""
        params = self.unet_params(backbone)
        if params is None:
            return None
        num_stages, strides, downsamples = params
        enc = [1]
        for i in range(1, num_stages):
            enc.append(enc[-1] * (2 if strides[i] == 2 or downsamples[i - 1] else 1))
        return [enc[num_stages - 1 - i] for i in range(num_stages)], backbone.loc

    def neck_outputs(self, neck: V, inputs: list[int], loc: Loc) -> Optional[tuple[list[int], Loc]]:
        kind = type_name(neck)
        if kind == "JPU":
            # JPU fuses the backbone outputs at the resolution of its first level (stride 8 in FastFCN).
            start = plain(neck.get("start_level")) if neck.get("start_level") else 0
            end = plain(neck.get("end_level")) if neck.get("end_level") else -1
            if type(start) is not int or type(end) is not int:
                self.unresolved("JPU levels", neck)
                return None
            stop = len(inputs) if end == -1 else end
            if not 0 <= start < len(inputs):
                self.facts.unresolved.append(Unresolved("JPU levels", neck.loc, f"start_level {start} has no input"))
                return None
            return inputs[start : stop - 1] + [inputs[start]], neck.loc
        if kind == "FPN":
            return inputs, loc
        self.stride_problem = Unresolved("output stride", neck.loc, f"neck type {kind!r} is not one atrous-advisor knows")
        return None

    def head_stride(
        self, head: V, head_kind: str, outputs: Optional[tuple[list[int], Loc]], needed: bool = True
    ) -> Optional[tuple[int, Loc]]:
        if outputs is None:
            if needed and self.stride_problem is not None and self.stride_problem not in self.facts.unresolved:
                self.facts.unresolved.append(self.stride_problem)
            return None
        strides, loc = outputs
        index_v = head.get("in_index")
        index = plain(index_v) if index_v is not None else -1  # BaseDecodeHead's default
        if isinstance(index, (list, tuple)) and index and all(type(i) is int for i in index):
            index = index[-1]  # multi-level heads (UPerHead) pool the last selected level
        if type(index) is not int:
            self.unresolved(f"{head_kind}.in_index", index_v)
            return None
        try:
            return strides[index], (index_v.loc if index_v is not None and strides[index] == 1 else loc)
        except IndexError:
            self.facts.unresolved.append(
                Unresolved("output stride", index_v.loc if index_v else head.loc, f"in_index {index} has no input")
            )
            return None

    # --- heads -----------------------------------------------------------------------------------------
    def heads(self) -> None:
        model = self.cfg.get("model")
        if model is None:
            return
        if not isinstance(model.value, dict):  # it may hold an ASPP or PPM head: say so, do not pass it silently
            self.unresolved("`model`", model)
            return
        backbone = model.get("backbone")
        outputs = None
        if backbone is not None and isinstance(backbone.value, dict):
            outputs = self.backbone_outputs(backbone)
            neck = model.get("neck")
            if outputs is not None and neck is not None:
                for item in neck.value if isinstance(neck.value, list) else [neck]:
                    if outputs is not None:
                        outputs = self.neck_outputs(item, outputs[0], outputs[1])
            if type_name(backbone) == "UNet":
                self.unet_divisibility(backbone)
        for role in ("decode_head", "auxiliary_head"):
            heads = model.get(role)
            if heads is None:
                continue
            listed = isinstance(heads.value, list)
            if not listed and not isinstance(heads.value, dict):
                self.unresolved(f"`model.{role}`", heads)
                continue
            for i, head in enumerate(heads.value if listed else [heads]):
                if not isinstance(head.value, dict):
                    self.unresolved(f"`model.{role}[{i}]`", head)
                    continue
                keys = ("model", role) if not listed else ("model", role, str(i))
                chain = (model, heads) if not listed else (model, heads, head)
                self.head(head, keys, chain, listed, outputs, is_decode=role == "decode_head")

    def head(self, head: V, keys, chain, listed: bool, outputs, is_decode: bool) -> None:
        kind = type_name(head)
        if kind in ASPP_HEADS and self.facts.aspp is None:
            self.aspp(head, kind, keys, chain, listed, outputs, is_decode)
        elif kind in PPM_HEADS and self.facts.ppm is None:
            self.ppm(head, kind, keys, chain, listed, outputs, is_decode)
        elif kind == "FCNHead":
            self.fcn(head, kind, outputs, is_decode)
        elif is_decode and self.facts.output_stride is None:
            stride = self.head_stride(head, kind or "decode_head", outputs, needed=False)
            if stride:
                self.facts.output_stride = stride[0]

    def aspp(self, head: V, kind: str, keys, chain, listed, outputs, is_decode: bool) -> None:
        stride = self.head_stride(head, kind, outputs)
        v = head.get("dilations")
        written = plain(v) if v is not None else ASPP_HEADS[kind]
        if v is not None and (not isinstance(written, (list, tuple)) or find_opaque(v)):
            self.unresolved(f"{kind}.dilations", v)
            return
        rates = tuple(d for d in written if d != 1)  # dilation 1 is the 1×1 branch in mmseg's ASPPModule
        if not rates or not all(type(d) is int or as_crop(d) for d in rates):
            self.unresolved(f"{kind}.dilations", v if v is not None else head)
            return
        if stride is None:
            return
        if is_decode:
            self.facts.output_stride = stride[0]
        self.facts.aspp = AsppFacts(
            head=kind,
            rates=tuple(tuple(d) if isinstance(d, (list, tuple)) else d for d in rates),
            loc=v.loc if v is not None else head.loc,
            is_default=v is None,
            stride=stride[0],
            stride_loc=stride[1],
            target=Target(keys + ("dilations",), (*chain, v), _python_render, not listed,
                          "the head is one of a list of heads; edit it by hand" if listed else ""),
            to_written=lambda new: (1, *new),
        )

    def ppm(self, head: V, kind: str, keys, chain, listed, outputs, is_decode: bool) -> None:
        stride = self.head_stride(head, kind, outputs)
        v = head.get("pool_scales")
        scales = positive_ints(plain(v)) if v is not None else PPM_HEADS[kind]
        if scales is None:
            self.unresolved(f"{kind}.pool_scales", v)
            return
        if stride is None:
            return
        if is_decode:
            self.facts.output_stride = stride[0]
        self.facts.ppm = PpmFacts(
            head=kind,
            scales=scales,
            loc=v.loc if v is not None else head.loc,
            is_default=v is None,
            stride=stride[0],
            stride_loc=stride[1],
            target=Target(keys + ("pool_scales",), (*chain, v), _python_render, not listed,
                          "the head is one of a list of heads; edit it by hand" if listed else ""),
        )

    def fcn(self, head: V, kind: str, outputs, is_decode: bool) -> None:
        d = head.get("dilation")
        k = head.get("kernel_size")
        kernel = plain(k) if k is not None else 3
        dilation = plain(d) if d is not None else 1
        stride = self.head_stride(head, kind, outputs, needed=dilation != 1)
        if stride is not None and is_decode and self.facts.output_stride is None:
            self.facts.output_stride = stride[0]
        if d is None or dilation == 1 or kernel != 3:
            return
        if type(dilation) is not int:
            self.unresolved("FCNHead.dilation", d)
            return
        if stride is not None:
            self.facts.dilated_convs.append(DilatedConv(kind, dilation, d.loc, stride[0]))

    def unet_divisibility(self, backbone: V) -> None:
        params = self.unet_params(backbone)
        if params is None:
            return
        num_stages, strides, downsamples = params
        rate = 1
        for i in range(1, num_stages):  # mmseg UNet._check_input_divisible
            if strides[i] == 2 or downsamples[i - 1]:
                rate *= 2
        self.facts.divisibility = Divisibility(rate, "mmseg's UNet asserts the input is divisible by its downsampling", backbone.loc)


def resolve_mmseg(path: Path, cfg: dict[str, V], anchor: Loc) -> ConfigFacts:
    resolver = _Resolver(path, cfg, anchor)
    resolver.crop()
    resolver.believed()
    resolver.heads()
    return resolver.facts
