"""From an smp ``config.json`` (``save_pretrained``'s init kwargs) to facts. The crop comes from the user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from atrous_advisor.configs.facts import AsppFacts, ConfigFacts, Divisibility, PpmFacts, Target, Unresolved, positive_ints
from atrous_advisor.configs.values import Loc, V, plain

# Init defaults of smp's models (segmentation_models_pytorch/decoders/*/model.py).
MODELS: dict[str, dict[str, Any]] = {
    "DeepLabV3": {"encoder_depth": 5, "encoder_output_stride": 8, "decoder_atrous_rates": (12, 24, 36)},
    "DeepLabV3Plus": {"encoder_depth": 5, "encoder_output_stride": 16, "decoder_atrous_rates": (12, 24, 36)},
    "PSPNet": {"encoder_depth": 3},
}
PSP_SIZES = (1, 2, 3, 6)  # fixed in smp's PSPDecoder; not an init argument


def resolve_smp(path: Path, cfg: dict[str, V], anchor: Loc) -> ConfigFacts:
    facts = ConfigFacts(path=path, framework="smp", anchor=anchor)
    facts.crop_why = "smp configs carry no crop"
    model_class = plain(cfg.get("_model_class")) if cfg.get("_model_class") else None
    if model_class not in MODELS:
        facts.notes.append(f"smp model {model_class!r} has no ASPP or PPM")
        return facts
    defaults = MODELS[model_class]

    def get(key: str):
        v = cfg.get(key)
        return (plain(v) if v is not None else defaults.get(key)), v

    depth, dv = get("encoder_depth")
    if type(depth) is not int or not 1 <= depth <= 5:
        facts.unresolved.append(Unresolved("encoder_depth", dv.loc if dv else anchor, f"{depth!r} is not 1..5"))
        return facts
    if model_class == "PSPNet":
        stride = 2**depth
        facts.output_stride = stride
        facts.ppm = PpmFacts("PSPNet", PSP_SIZES, anchor, True, stride, dv.loc if dv else anchor, None)
    else:
        os_value, ov = get("encoder_output_stride")
        if os_value not in (8, 16):
            facts.unresolved.append(Unresolved("encoder_output_stride", ov.loc if ov else anchor, f"{os_value!r} is not 8 or 16"))
            return facts
        stride = min(os_value, 2**depth)  # smp's EncoderMixin.output_stride
        facts.output_stride = stride
        rates, rv = get("decoder_atrous_rates")
        rates = positive_ints(rates)
        if rates is None:
            facts.unresolved.append(Unresolved("decoder_atrous_rates", rv.loc if rv else anchor, "not a list of positive ints"))
        else:
            facts.aspp = AsppFacts(
                head=model_class,
                rates=rates,
                loc=rv.loc if rv else anchor,
                is_default=rv is None,
                stride=stride,
                stride_loc=ov.loc if ov else anchor,
                target=Target(("decoder_atrous_rates",), (rv,), json.dumps, rv is not None,
                              "" if rv is not None else "config.json has no decoder_atrous_rates to edit"),
                to_written=list,
            )
    facts.divisibility = Divisibility(
        stride, "smp's check_input_shape raises unless the input divides by the encoder's output stride",
        dv.loc if dv else anchor,
    )
    return facts
