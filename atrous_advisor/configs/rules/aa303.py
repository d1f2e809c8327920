from __future__ import annotations

from typing import Iterator

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.rules.base import Diagnostic, Rule
from atrous_advisor.configs.settings import Settings
from atrous_advisor.report import format as fmt


class CropNotDivisible(Rule):
    """## What it does
    Fires when the crop is not divisible by the stride where the framework requires it: mmseg's `UNet`
    (its whole downsampling rate, 16 for `s5-d16`), smp models (the encoder's output stride), Detectron2's
    DeepLab heads with an absolute crop (the ASPP pooling kernel is crop // stride).

    ## Why is this bad
    These frameworks assert or raise at the first training step, after the data pipeline, the model and
    often a pretrained checkpoint were loaded — or, with padding, train on a feature map one position larger
    than the arithmetic assumes.

    ## Example
    ```python
    _base_ = ["../_base_/models/fcn_unet_s5-d16.py", "../_base_/datasets/hrf.py"]
    crop_size = (500, 500)  # 500 % 16 != 0
    train_pipeline = [..., dict(type="RandomCrop", crop_size=crop_size), ...]
    train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))  # under RepeatDataset
    ```

    ## Fix
    Use a crop divisible by the stride (the next multiple is in the message).
    """

    code = "AA303"
    name = "crop-not-divisible"
    summary = "The crop is not divisible by the stride the framework requires"

    def check(self, facts: ConfigFacts, settings: Settings) -> Iterator[Diagnostic]:
        rule = facts.divisibility
        if rule is None or facts.crop is None:
            return
        d = rule.divisor
        if all(side % d == 0 for side in facts.crop):
            return
        nearest = tuple(-(-side // d) * d for side in facts.crop)
        loc = facts.crop_loc or facts.anchor
        yield self.diagnostic(
            f"crop {fmt.crop(facts.crop)} is not divisible by {d}: {rule.why}; use {fmt.crop(nearest)}",
            loc,
        )


RULE = CropNotDivisible()
