from __future__ import annotations

from typing import Iterator

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.rules._aspp import aspp_context
from atrous_advisor.configs.rules.base import Diagnostic, Rule
from atrous_advisor.configs.settings import Settings
from atrous_advisor.geometry import assess_branch, feature_map, pair
from atrous_advisor.report import format as fmt


class DegenerateBranch(Rule):
    """## What it does
    Finds dilated 3×3 convolutions — ASPP branches, FCN-D6's `FCNHead(dilation=6)`, the dilated stages of a
    ResNet backbone (`-d8`: dilation 4 in stage 4), Detectron2's res5 multi-grid — whose rate is at least the
    feature map F = ceil(crop / stride) on both axes.

    ## Why is this bad
    With dilation d ≥ F only the centre tap of the 3×3 kernel ever reads a feature; the other eight read
    zero padding at every position. The branch is exactly a 1×1 convolution (DeepLabv3's "degeneration")
    — parameters and compute spent on nothing.

    ## Example
    ```python
    # RandomCrop(crop_size=(256, 256)) in the training pipeline, stride 8: F = 32,
    # so the rate-36 branch is a 1×1 conv
    model = dict(decode_head=dict(type="ASPPHead", dilations=(1, 12, 24, 36)))
    ```

    ## Fix
    For ASPP, `--fix` writes the resolution-aware rates (as AA101). For a single dilated conv or a backbone
    stage, lower its dilation below F by hand (or train at a larger crop).
    """

    code = "AA102"
    name = "degenerate-dilated-branch"
    summary = "A dilated branch's rate is ≥ the feature map: it is a 1×1 conv"
    fix_title = "Set the ASPP rates to the resolution-aware optimum"
    fix_availability = "sometimes"

    def check(self, facts: ConfigFacts, settings: Settings) -> Iterator[Diagnostic]:
        ctx = aspp_context(facts, settings)
        if ctx is not None:
            bad = ctx.assessment.degenerate_rates
            if bad:
                yield self.diagnostic(
                    f"ASPP branch rate(s) {fmt.rates(bad)} ≥ the {fmt.crop(ctx.fmap)}-position feature map "
                    f"{ctx.where}: each is a 1×1 conv; {ctx.use}",
                    ctx.aspp.loc,
                    ctx.fix,
                )
        if facts.crop is None:
            return
        for conv in facts.dilated_convs:
            fmap = feature_map(facts.crop, conv.stride)
            if assess_branch(conv.rate, fmap).degenerate:
                yield self.diagnostic(
                    f"{conv.head} dilation {fmt.pair(pair(conv.rate))} ≥ the {fmt.crop(fmap)}-position feature map at "
                    f"crop {fmt.crop(facts.crop)}, stride {conv.stride}: the conv is a 1×1 conv",
                    conv.loc,
                )


RULE = DegenerateBranch()
