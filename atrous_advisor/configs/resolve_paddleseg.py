"""From a merged PaddleSeg config to facts.

Keys a config omits take PaddleSeg's own defaults, each from the code that applies it (PaddleSeg
``release/2.x``, the constructors' keyword defaults):

- ``aspp_ratios=(1, 6, 12, 18)``, ``backbone_indices=(3,)`` (DeepLabV3) / ``(0, 3)`` (DeepLabV3P):
  ``paddleseg/models/deeplab.py``; a ratio of 1 is the ASPP's 1×1 branch;
- ``bin_sizes=(1, 2, 3, 6)``, ``backbone_indices=(2, 3)``: ``paddleseg/models/pspnet.py``;
- ``output_stride=8``, ``multi_grid=(1, 1, 1)``: ``ResNet_vd`` in ``paddleseg/models/backbones/resnet_vd.py``,
  which dilates stages 3 and 4 by 2 and 4 at stride 8, stage 4 by 2 at stride 16 (``dilation_dict``), and
  multiplies stage 4's dilation by ``multi_grid``;
- ``RandomPaddingCrop(crop_size=(512, 512))`` and ``Resize(target_size=(512, 512))`` (used when a config has
  no crop): ``paddleseg/transforms/transforms.py``. PaddleSeg writes sizes as [width, height]; facts are
  (height, width).

Every head reads the last feature its ``backbone_indices`` selects.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from atrous_advisor.configs.facts import (
    CONTEXT_KEYS, AsppFacts, ConfigFacts, DilatedConv, PpmFacts, Target, UnknownHead, Unresolved, positive_ints,
)
from atrous_advisor.configs.values import Loc, V, find_opaque, plain

# model type -> (key of the scales, default scales, default backbone_indices, is ASPP)
HEADS = {
    "DeepLabV3": ("aspp_ratios", (1, 6, 12, 18), (3,), True),
    "DeepLabV3P": ("aspp_ratios", (1, 6, 12, 18), (0, 3), True),
    "PSPNet": ("bin_sizes", (1, 2, 3, 6), (2, 3), False),
    # Pyramid pooling elsewhere: ANN's APNB samples keys/values at psp_size (paddleseg/models/ann.py), DMNet's
    # DCMs pool to each filter size on the last feature (dmnet.py), PP-LiteSeg's context module pools to
    # cm_bin_sizes on the last selected feature (pp_liteseg.py). Each pools adaptively to s×s: cells F/s.
    "ANN": ("psp_size", (1, 3, 6, 8), (2, 3), False),
    "DMNet": ("filter_sizes", (1, 3, 5, 7), (-1,), False),
    "PPLiteSeg": ("cm_bin_sizes", (1, 2, 4), (2, 3, 4), False),
}
_RESNET_VD = re.compile(r"^ResNet\d+_vd$")
# STDCNet (paddleseg/models/backbones/stdcnet.py) returns five features: two stem convs, then three stages.
STDC_STRIDES = [2, 4, 8, 16, 32]
CROP_DEFAULT = (512, 512)


def _yaml_render(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_render(x) for x in value) + "]"
    return str(value)


def _stage_strides(output_stride: Any) -> Optional[list[int]]:
    if output_stride == 8:
        return [4, 8, 8, 8]
    if output_stride == 16:
        return [4, 8, 16, 16]
    if output_stride in (None, 32):  # no dilation_dict: every stage downsamples
        return [4, 8, 16, 32]
    return None


class _Resolver:
    def __init__(self, path: Path, cfg: dict, anchor: Loc):
        self.cfg = cfg
        self.facts = ConfigFacts(path=path, framework="paddleseg", anchor=anchor)

    def unresolved(self, what: str, v: V) -> None:
        found = find_opaque(v)
        reason = found[0].reason if found else f"{plain(v)!r} is not a value atrous-advisor can read"
        self.facts.unresolved.append(Unresolved(what, v.loc, reason))

    def crop(self) -> None:
        dataset = self.cfg.get("train_dataset")
        transforms = dataset.get("transforms") if dataset is not None else None
        if transforms is None or not isinstance(transforms.value, list):
            self.facts.crop_why = "no train_dataset.transforms"
            return
        # The network trains on RandomPaddingCrop's crop; without one, a fixed Resize sets the input size.
        for kind, key in (("RandomPaddingCrop", "crop_size"), ("Resize", "target_size")):
            for step in transforms.value:
                if not isinstance(step.value, dict) or step.get("type") is None or step.get("type").value != kind:
                    continue
                size = step.get(key)
                raw = plain(size) if size is not None else list(CROP_DEFAULT)
                wh = positive_ints(raw)
                if wh is None or len(wh) != 2:
                    self.unresolved(f"{kind}.{key}", size if size is not None else step)
                    return
                self.facts.crop = (wh[1], wh[0])  # written [w, h]
                self.facts.crop_loc = size.loc if size is not None else step.loc
                self.facts.crop_source = f"{kind}.{key}"
                return
        self.facts.crop_why = "no RandomPaddingCrop or Resize in train_dataset.transforms"

    def resolve(self) -> ConfigFacts:
        self.crop()
        model = self.cfg.get("model")
        kind = plain(model.get("type")) if model is not None and model.get("type") is not None else None
        if model is None:
            return self.facts
        if kind not in HEADS:
            for key in CONTEXT_KEYS:  # a model we do not know that carries rates or scales is not passed
                v = model.get(key)
                if v is not None:
                    why = f"model type {kind!r} is not one atrous-advisor knows" if kind else "the model type is unknown"
                    self.facts.unknown_heads.append(UnknownHead(kind or "model", key, repr(plain(v)), v.loc, why))
                    break
            return self.facts
        key, default, default_indices, is_aspp = HEADS[kind]
        v = model.get(key)
        written = plain(v) if v is not None else default
        scales = positive_ints(written)
        if scales is None:
            if v is not None:
                self.unresolved(f"{kind}.{key}", v)
            return self.facts
        stride, stride_loc = self.stride(model, kind, default_indices)
        loc = v.loc if v is not None else model.loc
        chain = (model, v)
        target = Target(("model", key), chain, _yaml_render)
        if is_aspp:
            rates = tuple(r for r in scales if r != 1)
            self.facts.aspp = AsppFacts(kind, rates, loc, v is None, stride, stride_loc, target,
                                        to_written=lambda new: [1, *new])
        else:
            self.facts.ppm = PpmFacts(kind, scales, loc, v is None, stride, stride_loc, target, key=key)
        if stride is not None:
            self.facts.output_stride = stride
        return self.facts

    def stride(self, model: V, kind: str, default_indices: tuple) -> tuple[Optional[int], Optional[Loc]]:
        backbone = model.get("backbone")
        if backbone is None:
            self.facts.stride_why = "the model has no backbone"
            return None, None
        btype = plain(backbone.get("type")) if backbone is not None and backbone.get("type") is not None else None
        os_v = backbone.get("output_stride")
        stages: Optional[list[int]]
        if isinstance(btype, str) and btype in ("STDC1", "STDC2"):
            stages = STDC_STRIDES
        elif isinstance(btype, str) and _RESNET_VD.match(btype):
            output_stride = plain(os_v) if os_v is not None else 8
            stages = _stage_strides(output_stride)
            if stages is None:
                if os_v is not None:
                    self.unresolved(f"{btype}.output_stride", os_v)
                return None, None
            self.dilated_stages(backbone, btype, output_stride, stages)
        else:
            self.facts.stride_why = f"backbone type {btype!r} is not one whose strides atrous-advisor knows"
            return None, None
        iv = model.get("backbone_indices")
        indices = plain(iv) if iv is not None else default_indices
        last = indices[-1] if isinstance(indices, (list, tuple)) and indices else None
        if type(last) is not int or not -len(stages) <= last < len(stages):
            self.unresolved(f"{kind}.backbone_indices", iv if iv is not None else model)
            return None, None
        return stages[last], (os_v.loc if os_v is not None else backbone.loc)

    def dilated_stages(self, backbone: V, btype: str, output_stride: int, stages: list[int]) -> None:
        dilation = {8: {2: 2, 3: 4}, 16: {3: 2}}.get(output_stride, {})
        gv = backbone.get("multi_grid")
        grid = positive_ints(plain(gv)) if gv is not None else (1, 1, 1)
        os_v = backbone.get("output_stride")
        loc = os_v.loc if os_v is not None else backbone.loc
        for stage, d in dilation.items():
            rates = [(d * g, gv.loc if gv is not None else loc) for g in grid] if stage == 3 and grid else [(d, loc)]
            for rate, where in dict.fromkeys(rates):
                if rate > 1:
                    self.facts.dilated_convs.append(DilatedConv(f"{btype} stage {stage + 1}", rate, where, stages[stage]))


def resolve_paddleseg(path: Path, cfg: dict, anchor: Loc) -> ConfigFacts:
    return _Resolver(path, cfg, anchor).resolve()
