"""yacs-style YAML configs of research repos: three known layouts, and any other through a key mapping.

Known layouts (the values their training code really uses, with where each comes from):

- **kazuto1011/deeplab-pytorch** (``EXP``/``DATASET``/``IMAGE``/``MODEL.NAME``): crop ``IMAGE.SIZE.TRAIN``;
  the model is built by the factory named in ``MODEL.NAME`` (``libs/models/__init__.py``), which fixes its
  rates — ``MODEL.ATROUS_RATES`` is not read. DeepLabV2 (``libs/models/deeplabv2.py``) has output stride 8
  and an ASPP of four dilated 3×3 branches, no 1×1 branch.
- **hszhao/semseg** (``TRAIN.arch``, ``TRAIN.train_h``/``train_w``): crop ``train_h``×``train_w``;
  ``arch: psp`` builds ``PSPNet(bins=(1, 2, 3, 6))`` on a ResNet dilated to stride 8 (``model/pspnet.py``;
  ``tool/train.py`` passes no ``bins``). PSANet has no pooling pyramid.
- **CSAILVision/semantic-segmentation-pytorch** (``MODEL.arch_encoder``/``arch_decoder``): ``*dilated``
  encoders have stride 8, plain ResNets 32 (``mit_semseg/models/models.py``); the ``ppm``/``upernet``
  decoders pool at ``pool_scales=(1, 2, 3, 6)``. Training resizes the short side to one of
  ``DATASET.imgSizes`` and never crops, so the crop must be given.

Anything else: ``[tool.atrous-advisor.keys]`` names the dotted keys holding ``crop``, ``stride``, ``rates``
and ``scales``; values at those keys are read and fixed in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from atrous_advisor.configs.detectron2 import lookup, parse_yaml
from atrous_advisor.configs.facts import AsppFacts, ConfigFacts, PpmFacts, Target, Unresolved, as_crop, positive_ints
from atrous_advisor.configs.frameworks import Framework
from atrous_advisor.configs.frameworks._yaml import Unreadable, YamlEdits, top_mapping
from atrous_advisor.configs.resolve_detectron2 import _decode, _yaml_render
from atrous_advisor.configs.values import Loc, V, canonical, plain

PPM_SCALES = (1, 2, 3, 6)

# deeplab-pytorch: MODEL.NAME -> (rates fixed by its factory, output stride)
KAZUTO_MODELS = {
    "DeepLabV2_ResNet101_MSC": ((6, 12, 18, 24), 8),
    "DeepLabV2S_ResNet101_MSC": ((3, 6, 9, 12), 8),
    "DeepLabV3_ResNet101_MSC": ((6, 12, 18), 16),
    "DeepLabV3Plus_ResNet101_MSC": ((6, 12, 18), 16),
}
CSAIL_STRIDES = {
    **{f"{n}dilated": 8 for n in ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenetv2")},
    **{n: 32 for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnext101")},
}
CSAIL_PPM = {"ppm": "PPM", "ppm_deepsup": "PPMDeepsup", "upernet": "UPerNet", "upernet_lite": "UPerNet"}


def _at(v: Optional[V], facts: ConfigFacts) -> Loc:
    """Where a value was written; line 1 of the config when it was not."""
    return v.loc if v is not None else facts.anchor


def _get(cfg: dict, key: str) -> tuple[Any, Optional[V]]:
    v = lookup(cfg, key)
    return (_decode(plain(v)) if v is not None else None), v


def _is_kazuto(top: dict) -> bool:
    model = top.get("MODEL")
    return {"DATASET", "IMAGE", "MODEL"} <= set(top) and isinstance(model, dict) and "NAME" in model


def _is_semseg(top: dict) -> bool:
    train = top.get("TRAIN")
    return isinstance(train, dict) and "arch" in train and "train_h" in train


def _is_csail(top: dict) -> bool:
    model = top.get("MODEL")
    return isinstance(model, dict) and bool({"arch_encoder", "arch_decoder"} & set(model))


def _mapped(top: dict, keys: dict) -> bool:
    def has(dotted: str) -> bool:
        node: Any = top
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    return any(has(keys[role]) for role in ("rates", "scales") if role in keys)


class Yacs(YamlEdits, Framework):
    name = "yacs"
    label = "yacs-style"
    suffixes = (".yaml", ".yml")

    @classmethod
    def recognise(cls, path: Path, text: str, settings=None):
        try:
            top = top_mapping(text)
        except Unreadable:
            return False
        if top is None:
            return False
        keys = dict(settings.keys) if settings is not None else {}
        return (bool(keys) and _mapped(top, keys)) or _is_kazuto(top) or _is_semseg(top) or _is_csail(top)

    def facts(self, path: Path) -> ConfigFacts:
        parsed = parse_yaml(path, self.overrides.get(canonical(path)))
        cfg = parsed.root.value
        anchor = Loc(canonical(path), 1, 0, 1, 0)
        facts = ConfigFacts(path=path, framework="yacs", anchor=anchor)
        top = plain(parsed.root)
        keys = dict(self.settings.keys) if self.settings is not None else {}
        if keys and _mapped(top, keys):
            _resolve_mapped(cfg, keys, facts)
        elif _is_kazuto(top):
            _resolve_kazuto(cfg, facts)
        elif _is_semseg(top):
            _resolve_semseg(cfg, facts)
        else:
            _resolve_csail(cfg, facts)
        return facts


def _crop_at(cfg: dict, key: str, facts: ConfigFacts, make: Callable[[Any], Any] = lambda x: x) -> None:
    value, v = _get(cfg, key)
    if v is None or value is None:
        facts.crop_why = f"`{key}` is not set" if v is None else f"`{key}` is empty"
        return
    crop = as_crop(tuple(value) if isinstance(value, list) else make(value))
    if crop is None:
        facts.unresolved.append(Unresolved(key, v.loc, f"{value!r} is not a crop (an int or [h, w])"))
        return
    facts.crop, facts.crop_loc, facts.crop_source = crop, v.loc, key


def _resolve_kazuto(cfg: dict, facts: ConfigFacts) -> None:
    _crop_at(cfg, "IMAGE.SIZE.TRAIN", facts)
    name, nv = _get(cfg, "MODEL.NAME")
    if name not in KAZUTO_MODELS:
        return  # DeepLabV1 and unknown names: no ASPP this reader knows of
    rates, stride = KAZUTO_MODELS[name]
    facts.output_stride = stride
    facts.aspp = AsppFacts(head=name, rates=rates, loc=_at(nv, facts), is_default=True, stride=stride, stride_loc=_at(nv, facts),
                           target=None, to_written=list)


def _resolve_semseg(cfg: dict, facts: ConfigFacts) -> None:
    h, hv = _get(cfg, "TRAIN.train_h")
    w, _ = _get(cfg, "TRAIN.train_w")
    crop = as_crop((h, w))
    if crop is None:
        facts.unresolved.append(Unresolved("TRAIN.train_h/train_w", _at(hv, facts),
                                           f"({h!r}, {w!r}) is not a crop"))
    else:
        facts.crop, facts.crop_loc, facts.crop_source = crop, _at(hv, facts), "TRAIN.train_h"
    arch, av = _get(cfg, "TRAIN.arch")
    if arch == "psp":
        facts.output_stride = 8
        facts.ppm = PpmFacts("PSPNet", PPM_SCALES, _at(av, facts), True, 8, _at(av, facts), None, key="bins")


def _resolve_csail(cfg: dict, facts: ConfigFacts) -> None:
    sizes, _ = _get(cfg, "DATASET.imgSizes")
    facts.crop_why = f"training resizes the short side to one of DATASET.imgSizes {sizes!r} and does not crop"
    decoder, dv = _get(cfg, "MODEL.arch_decoder")
    if decoder not in CSAIL_PPM:
        return
    encoder, _ = _get(cfg, "MODEL.arch_encoder")
    stride = CSAIL_STRIDES.get(encoder)
    if stride is None:
        facts.stride_why = f"encoder {encoder!r} is not one whose stride atrous-advisor knows"
    else:
        facts.output_stride = stride
    facts.ppm = PpmFacts(CSAIL_PPM[decoder], PPM_SCALES, _at(dv, facts), True, stride, _at(dv, facts) if stride else None, None,
                         key="pool_scales")


def _resolve_mapped(cfg: dict, keys: dict, facts: ConfigFacts) -> None:
    where = "[tool.atrous-advisor.keys]"
    if "crop" in keys:
        _crop_at(cfg, keys["crop"], facts)
    else:
        facts.crop_why = f"no `crop` key in {where}"
    stride: Optional[int] = None
    stride_loc: Optional[Loc] = None
    if "stride" in keys:
        value, sv = _get(cfg, keys["stride"])
        if sv is None:
            facts.stride_why = f"the config has no `{keys['stride']}`"
        elif type(value) is not int or value <= 0:
            facts.unresolved.append(Unresolved(keys["stride"], _at(sv, facts), f"{value!r} is not a stride"))
        else:
            stride, stride_loc = value, _at(sv, facts)
            facts.output_stride = stride
    else:
        facts.stride_why = f"no `stride` key in {where}"

    def target(dotted: str) -> Target:
        parts = dotted.split(".")
        chain = tuple(lookup(cfg, ".".join(parts[: i + 1])) for i in range(len(parts)))
        return Target(tuple(parts), chain, _yaml_render)

    if "rates" in keys:
        value, rv = _get(cfg, keys["rates"])
        rates = positive_ints(value) if rv is not None else None
        if rv is not None and rates is None:
            facts.unresolved.append(Unresolved(keys["rates"], _at(rv, facts), f"{value!r} is not a list of positive ints"))
        elif rates is not None:
            has_1x1 = 1 in rates  # a rate of 1 is a 1×1 branch, as in mmseg and PaddleSeg
            dilated = tuple(r for r in rates if r != 1)
            if dilated:
                facts.aspp = AsppFacts(keys["rates"], dilated, _at(rv, facts), False, stride, stride_loc, target(keys["rates"]),
                                       to_written=(lambda new: [1, *new]) if has_1x1 else list)
    if "scales" in keys:
        value, pv = _get(cfg, keys["scales"])
        scales = positive_ints(value) if pv is not None else None
        if pv is not None and scales is None:
            facts.unresolved.append(Unresolved(keys["scales"], _at(pv, facts), f"{value!r} is not a list of positive ints"))
        elif scales is not None:
            facts.ppm = PpmFacts(keys["scales"], scales, _at(pv, facts), False, stride, stride_loc, target(keys["scales"]),
                                 key=keys["scales"].rsplit(".", 1)[-1])
