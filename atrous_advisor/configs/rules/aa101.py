from __future__ import annotations

from typing import Iterator

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.rules._aspp import aspp_context
from atrous_advisor.configs.rules.base import Diagnostic, Rule
from atrous_advisor.configs.settings import Settings
from atrous_advisor.report import format as fmt


class AsppRateOffOptimum(Rule):
    """## What it does
    Checks the ASPP head's base rate against the resolution-aware optimum
    r* = (L − 32) / (2·n·s) for the crop L, output stride s and n dilated branches (Kim et al., Eq. 3).
    The base rate of a set (r, 2r, …, n·r) is its largest rate / n. It fires when
    |r − r*| > max(1, 0.15·r*) on either axis (the tolerance is `tolerance` in `[tool.atrous-advisor]`).

    ## Why is this bad
    The habitual rates (6, 12, 18) at stride 16 and (12, 24, 36) at stride 8 were tuned for ~513 px crops.
    At a smaller crop the outer taps land in zero padding and the head wastes branches; at a larger one its
    field of view never covers the crop. The paper's best measured rate was r* rounded, every time.

    ## Example
    ```python
    # trained at 512×512, stride 8: r* = (512 − 32) / 48 = 10
    model = dict(decode_head=dict(type="ASPPHead", dilations=(1, 12, 24, 36)))
    ```

    ## Fix
    `--fix` writes `dilations=(1, 10, 20, 30)` into the linted config (never into a shared `_base_` file).
    For a non-square crop the optimum differs per axis; the fix then writes per-axis `(h, w)` dilations,
    which PyTorch's `Conv2d` accepts, and is applied only with `--unsafe-fixes`.
    """

    code = "AA101"
    name = "aspp-rate-off-optimum"
    summary = "ASPP base rate outside the tolerance of r* for the crop and stride"
    fix_title = "Set the ASPP rates to the resolution-aware optimum"
    fix_availability = "sometimes"

    def check(self, facts: ConfigFacts, settings: Settings) -> Iterator[Diagnostic]:
        ctx = aspp_context(facts, settings)
        if ctx is None:
            return
        a = ctx.assessment
        if a.within_tolerance:
            return
        default = " (the head's class default)" if ctx.aspp.is_default else ""
        yield self.diagnostic(
            f"ASPP rates {fmt.rates(ctx.aspp.rates)}{default} {ctx.where}: base rate "
            f"{fmt.pair(a.effective_base_rate, digits=1)} is off the optimum r* = {fmt.pair(ctx.optimal, digits=1)} "
            f"by more than max(1, {settings.tolerance:g}·r*); {ctx.use}",
            ctx.aspp.loc,
            ctx.fix,
        )


RULE = AsppRateOffOptimum()
