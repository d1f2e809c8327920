"""From a merged Detectron2 DeepLab config to facts.

Keys a file omits take the values Detectron2 and its DeepLab project (``add_deeplab_config``) give them:
a linted file must be judged by what training will really use.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Optional

from atrous_advisor.configs.detectron2 import lookup
from atrous_advisor.configs.facts import (
    AsppFacts,
    ConfigFacts,
    DeclaredStride,
    DilatedConv,
    Divisibility,
    Target,
    UnknownHead,
    Unresolved,
    as_crop,
)
from atrous_advisor.configs.values import Loc, Opaque, V, plain

DEEPLAB_HEADS = ("DeepLabV3Head", "DeepLabV3PlusHead", "PanopticDeepLabSemSegHead")
# Panoptic-DeepLab's second ASPP: the instance-embedding head (projects/Panoptic-DeepLab/panoptic_deeplab/config.py).
INS_EMBED_HEADS = ("PanopticDeepLabInsEmbedHead",)
# Backbones whose stage strides we know: ResNets built by these functions have res2..res5 at 4, 8, 16, 32
# before dilation. Anything else (HRNet, Swin, a user's own) has strides this reader does not know.
RESNET_BUILDERS = {"build_resnet_backbone", "build_resnet_deeplab_backbone"}

# detectron2/config/defaults.py and projects/DeepLab/deeplab/config.py (add_deeplab_config).
DEFAULTS: dict[str, Any] = {
    "INPUT.CROP.ENABLED": False,
    "INPUT.CROP.TYPE": "relative_range",
    "INPUT.CROP.SIZE": [0.9, 0.9],
    "MODEL.RESNETS.RES4_DILATION": 1,
    "MODEL.RESNETS.RES5_DILATION": 1,
    "MODEL.RESNETS.RES5_MULTI_GRID": [1, 2, 4],
    "MODEL.SEM_SEG_HEAD.NAME": "SemSegFPNHead",
    "MODEL.SEM_SEG_HEAD.IN_FEATURES": ["p2", "p3", "p4", "p5"],
    "MODEL.SEM_SEG_HEAD.COMMON_STRIDE": 4,
    "MODEL.SEM_SEG_HEAD.ASPP_DILATIONS": [6, 12, 18],
    "MODEL.BACKBONE.NAME": "build_resnet_backbone",
    "MODEL.INS_EMBED_HEAD.NAME": None,  # only Panoptic-DeepLab configs (and their bases) have this head
    "MODEL.INS_EMBED_HEAD.IN_FEATURES": ["res2", "res3", "res5"],
    "MODEL.INS_EMBED_HEAD.ASPP_DILATIONS": [6, 12, 18],
}


def _rate(value: Any) -> Any:
    """An int, or a per-axis [h, w] pair (what the unsafe per-axis fix writes; Conv2d takes either)."""
    if type(value) is int and value > 0:
        return value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(type(x) is int and x > 0 for x in value):
        return tuple(value)
    return None


def _yaml_render(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_render(x) for x in value) + "]"
    return str(value)


def _decode(value: Any) -> Any:
    """yacs decodes string values with ``literal_eval`` (``SIZE: (512, 1024)`` is a tuple): safe, no code runs."""
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
    return value


class _Resolver:
    def __init__(self, path: Path, cfg: dict, anchor: Loc):
        self.cfg = cfg
        self.facts = ConfigFacts(path=path, framework="detectron2", anchor=anchor)

    def get(self, key: str) -> tuple[Any, Optional[V]]:
        v = lookup(self.cfg, key)
        if v is None:
            return DEFAULTS.get(key), None
        return _decode(plain(v)), v

    def loc(self, v: Optional[V], key: str) -> Loc:
        """Where a value was set; for a default, the closest enclosing section that exists."""
        if v is not None:
            return v.loc
        parts = key.split(".")
        while parts:
            parts.pop()
            node = lookup(self.cfg, ".".join(parts)) if parts else None
            if node is not None:
                return node.loc
        return self.facts.anchor

    def target(self, key: str) -> Target:
        parts = key.split(".")
        chain = tuple(lookup(self.cfg, ".".join(parts[: i + 1])) for i in range(len(parts)))
        return Target(tuple(parts), chain, _yaml_render)

    def check_int(self, key: str, allowed: set[int]) -> Optional[int]:
        value, v = self.get(key)
        if type(value) is not int or value not in allowed:
            reason = value.reason if isinstance(value, Opaque) else f"{value!r} is not one of {sorted(allowed)}"
            self.facts.unresolved.append(Unresolved(key, self.loc(v, key), reason))
            return None
        return value

    def stages(self) -> Optional[dict[str, int]]:
        """Stride of each ResNet stage, or None (with the reason in ``stride_why`` or an AA001)."""
        builder, bv = self.get("MODEL.BACKBONE.NAME")
        if builder not in RESNET_BUILDERS:
            self.facts.stride_why = f"MODEL.BACKBONE.NAME {builder!r} is not a backbone whose strides atrous-advisor knows"
            return None
        res4 = self.check_int("MODEL.RESNETS.RES4_DILATION", {1, 2})
        res5 = self.check_int("MODEL.RESNETS.RES5_DILATION", {1, 2, 4})
        if res4 is None or res5 is None:
            return None
        if res4 == 2 and res5 != 4:  # build_resnet_deeplab_backbone asserts it; the model is never built
            key = "MODEL.RESNETS.RES5_DILATION"
            self.facts.unresolved.append(Unresolved(
                "the output stride", self.loc(lookup(self.cfg, key), key),
                f"RES4_DILATION: 2 with RES5_DILATION: {res5} is refused by Detectron2 (RES4_DILATION 2 needs "
                "RES5_DILATION 4, for stride 8)",
            ))
            return None
        # A dilated stage keeps the resolution of the stage before it (build_resnet_deeplab_backbone).
        stage = {"res2": 4, "res3": 8}
        stage["res4"] = stage["res3"] * (1 if res4 > 1 else 2)
        stage["res5"] = stage["res4"] * (1 if res5 > res4 else 2)
        return stage

    def aspp_head(self, section: str, name: str, stage: Optional[dict[str, int]]) -> Optional[AsppFacts]:
        """The ASPP of a DeepLab head under ``MODEL.<section>``; it reads the input with the largest stride."""
        key = f"MODEL.{section}"
        stride: Optional[int] = None
        if stage is not None:
            features, fv = self.get(f"{key}.IN_FEATURES")
            known = [f for f in features if f in stage] if isinstance(features, list) else []
            if not known or len(known) != len(features):
                self.facts.unresolved.append(Unresolved(
                    f"{key}.IN_FEATURES", self.loc(fv, f"{key}.IN_FEATURES"), f"{features!r} are not all ResNet stages"))
                return None
            # Detectron2 sorts a head's input_shape by stride: the ASPP reads the coarsest, whatever the order written.
            stride = max(stage[f] for f in known)
        rates_raw, rv = self.get(f"{key}.ASPP_DILATIONS")
        rates = [_rate(r) for r in rates_raw] if isinstance(rates_raw, list) and rates_raw else [None]
        if any(r is None for r in rates):
            self.facts.unresolved.append(Unresolved(
                f"{key}.ASPP_DILATIONS", self.loc(rv, f"{key}.ASPP_DILATIONS"),
                rates_raw.reason if isinstance(rates_raw, Opaque) else f"{rates_raw!r} is not a list of positive ints"))
            return None
        r5 = lookup(self.cfg, "MODEL.RESNETS.RES5_DILATION")
        return AsppFacts(
            head=name,
            rates=tuple(r for r in rates if r is not None),  # none is: checked above
            loc=self.loc(rv, f"{key}.ASPP_DILATIONS"),
            is_default=rv is None,
            stride=stride,
            stride_loc=self.loc(r5, "MODEL.RESNETS.RES5_DILATION") if stride else None,
            target=self.target(f"{key}.ASPP_DILATIONS"),
            to_written=lambda new: [list(r) if isinstance(r, tuple) else r for r in new],
        )

    def resolve(self) -> ConfigFacts:
        name, _ = self.get("MODEL.SEM_SEG_HEAD.NAME")
        self.crop()
        if name not in DEEPLAB_HEADS:
            rates, rv = self.get("MODEL.SEM_SEG_HEAD.ASPP_DILATIONS")
            if rv is not None:  # written for a head the rules do not know: reported, not passed (AA002)
                self.facts.unknown_heads.append(UnknownHead(
                    str(name), "ASPP_DILATIONS", repr(rates), self.loc(rv, "MODEL.SEM_SEG_HEAD.ASPP_DILATIONS"),
                    f"semantic head {name!r} is not one atrous-advisor knows"))
            else:
                self.facts.notes.append(f"semantic head {name!r} has no ASPP")
            return self.facts
        stage = self.stages()
        if stage is None and self.facts.unresolved:
            return self.facts
        self.facts.aspp = self.aspp_head("SEM_SEG_HEAD", name, stage)
        ins_name, _ = self.get("MODEL.INS_EMBED_HEAD.NAME")
        if ins_name in INS_EMBED_HEADS:
            ins = self.aspp_head("INS_EMBED_HEAD", ins_name, stage)
            if ins is not None:
                self.facts.extra_aspp.append(ins)
        if stage is None:
            return self.facts
        stride = self.facts.aspp.stride if self.facts.aspp else None
        if stride is None:
            return self.facts
        self.facts.output_stride = stride
        grid, gv = self.get("MODEL.RESNETS.RES5_MULTI_GRID")
        res5, _ = self.get("MODEL.RESNETS.RES5_DILATION")
        if isinstance(grid, list) and all(type(g) is int and g > 0 for g in grid):
            # res5's 3×3 convs are dilated by RES5_DILATION × each multi-grid factor (DeepLab's multi-grid).
            for g in grid:
                if res5 * g > 1:
                    self.facts.dilated_convs.append(
                        DilatedConv("res5 (multi-grid)", res5 * g, self.loc(gv, "MODEL.RESNETS.RES5_MULTI_GRID"), stage["res5"])
                    )
        common, cv = self.get("MODEL.SEM_SEG_HEAD.COMMON_STRIDE")
        # DeepLabV3Head upsamples its prediction by COMMON_STRIDE and sizes the ASPP pooling kernel with it:
        # it is the output stride, declared instead of derived. (In V3+ it is the decoder's stride, 4.)
        if name == "DeepLabV3Head" and type(common) is int:
            self.facts.declared_stride = DeclaredStride(
                "MODEL.SEM_SEG_HEAD.COMMON_STRIDE", common, self.loc(cv, "MODEL.SEM_SEG_HEAD.COMMON_STRIDE"),
                self.target("MODEL.SEM_SEG_HEAD.COMMON_STRIDE"),
            )
        if self.facts.crop is not None and self.facts.crop_source == "INPUT.CROP.SIZE":
            self.facts.divisibility = Divisibility(
                stride,
                "Detectron2's ASPP sizes its image-pooling kernel as crop // stride and raises when the features "
                "do not divide by it",
                self.facts.crop_loc or self.facts.anchor,
            )
        return self.facts

    def crop(self) -> None:
        enabled, _ = self.get("INPUT.CROP.ENABLED")
        kind, _ = self.get("INPUT.CROP.TYPE")
        size, sv = self.get("INPUT.CROP.SIZE")
        if isinstance(size, Opaque):
            self.facts.unresolved.append(Unresolved("INPUT.CROP.SIZE", self.loc(sv, "INPUT.CROP.SIZE"), size.reason))
            return
        if enabled is True and kind == "absolute":
            crop = as_crop(tuple(size) if isinstance(size, list) else size)
            if crop is None:
                self.facts.unresolved.append(
                    Unresolved("INPUT.CROP.SIZE", self.loc(sv, "INPUT.CROP.SIZE"), f"{size!r} is not (h, w) in pixels")
                )
                return
            self.facts.crop, self.facts.crop_loc, self.facts.crop_source = crop, self.loc(sv, "INPUT.CROP.SIZE"), "INPUT.CROP.SIZE"
        elif enabled is True:
            self.facts.crop_why = f"INPUT.CROP.TYPE {kind!r}: the crop depends on the image size"
        else:
            self.facts.crop_why = "INPUT.CROP.ENABLED is off: no training crop in the config"


def resolve_detectron2(path: Path, cfg: dict, anchor: Loc) -> ConfigFacts:
    return _Resolver(path, cfg, anchor).resolve()
