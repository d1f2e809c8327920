from __future__ import annotations

from typing import Iterator

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.rules.base import Diagnostic, Rule, fix_for_target
from atrous_advisor.configs.settings import Settings


class DeclaredStrideDiffers(Rule):
    """## What it does
    Compares a declared output stride — Detectron2's `MODEL.SEM_SEG_HEAD.COMMON_STRIDE` for
    `DeepLabV3Head` — with the stride the backbone really produces (`RES4_DILATION`/`RES5_DILATION`:
    res5 = 2 gives 16, res4 = 2 with res5 = 4 gives 8).

    ## Why is this bad
    `DeepLabV3Head` upsamples its prediction by `COMMON_STRIDE` and sizes the ASPP image-pooling kernel as
    crop // `COMMON_STRIDE`. Nothing derives it from the backbone; when someone changes the dilations and
    not the stride, the head pools the wrong window or the prediction no longer matches the label size.

    ## Example
    ```yaml
    MODEL:
      RESNETS: {RES4_DILATION: 2, RES5_DILATION: 4}   # stride 8
      SEM_SEG_HEAD: {NAME: DeepLabV3Head, COMMON_STRIDE: 16}
    ```

    ## Fix
    `--fix` sets `COMMON_STRIDE` to the backbone's stride in the linted file.
    """

    code = "AA302"
    name = "declared-stride-differs"
    summary = "A declared output stride differs from the backbone's"
    fix_title = "Set the declared stride to the backbone's"
    fix_availability = "sometimes"

    def check(self, facts: ConfigFacts, settings: Settings) -> Iterator[Diagnostic]:
        declared = facts.declared_stride
        if declared is None or facts.output_stride is None or declared.value == facts.output_stride:
            return
        yield self.diagnostic(
            f"{declared.key} is {declared.value} but the backbone's output stride is {facts.output_stride}",
            declared.loc,
            fix_for_target(f"Set {declared.key} to {facts.output_stride}", declared.target, facts.output_stride, "safe"),
        )


RULE = DeclaredStrideDiffers()
