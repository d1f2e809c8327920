from __future__ import annotations

from typing import Iterator

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.rules._aspp import aspp_context
from atrous_advisor.configs.rules.base import Diagnostic, Rule
from atrous_advisor.configs.settings import Settings
from atrous_advisor.geometry import assess_branch, feature_map
from atrous_advisor.report import format as fmt


class BranchReadsPadding(Rule):
    """## What it does
    Computes, for each dilated 3×3 conv (ASPP branches, `FCNHead(dilation=…)`, dilated backbone stages,
    Detectron2's res5 multi-grid), the exact share of its taps that read zero padding averaged over all output
    positions of the feature map, and fires above 75% (`geometry.PADDING_PROBLEM`: the optimum itself reads
    about 56%, so a lower threshold would flag the resolution-aware rates). Degenerate convs (AA102) are not repeated here.

    ## Why is this bad
    A branch whose taps mostly read padding learns mostly from the border, not from context: the head's
    effective field is much smaller than its rates suggest, and the branch's weights are nearly wasted.

    ## Example
    ```python
    # 320×320 crop at stride 8: F = 40; rate 36 reads padding with 84% of its taps
    model = dict(decode_head=dict(type="ASPPHead", dilations=(1, 12, 24, 36)))
    ```

    ## Fix
    For ASPP, `--fix` writes the resolution-aware rates (as AA101).
    """

    code = "AA103"
    name = "branch-reads-padding"
    summary = "A dilated branch reads zero padding with more than 75% of its taps"
    fix_title = "Set the ASPP rates to the resolution-aware optimum"
    fix_availability = "sometimes"

    def check(self, facts: ConfigFacts, settings: Settings) -> Iterator[Diagnostic]:
        ctx = aspp_context(facts, settings)
        if ctx is not None:
            bad = [b for b in ctx.assessment.branches if b.reads_padding]
            if bad:
                shares = ", ".join(f"rate {fmt.pair(b.rate)}: {fmt.percent(b.padding_fraction)}" for b in bad)
                yield self.diagnostic(
                    f"ASPP branches read mostly zero padding {ctx.where} (F {fmt.crop(ctx.fmap)}): {shares}; "
                    f"{ctx.use}",
                    ctx.aspp.loc,
                    ctx.fix,
                )
        if facts.crop is None:
            return
        for conv in facts.dilated_convs:
            fmap = feature_map(facts.crop, conv.stride)
            branch = assess_branch(conv.rate, fmap)
            if branch.reads_padding:
                yield self.diagnostic(
                    f"{conv.head} dilation {fmt.pair(branch.rate)} reads zero padding with "
                    f"{fmt.percent(branch.padding_fraction)} of its taps at crop {fmt.crop(facts.crop)}, "
                    f"stride {conv.stride} (F {fmt.crop(fmap)})",
                    conv.loc,
                )


RULE = BranchReadsPadding()
