from __future__ import annotations

from typing import Iterator

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.rules._ppm import ppm_analysis, where
from atrous_advisor.configs.rules.base import Diagnostic, Rule
from atrous_advisor.configs.settings import Settings
from atrous_advisor.report import format as fmt


class PpmScaleAboveFeatureMap(Rule):
    """## What it does
    Fires when a pyramid-pooling scale k is larger than the feature map F it pools (on either axis).

    ## Why is this bad
    With k > F, adaptive pooling has fewer input positions than bins: bins repeat input features, so the
    level is an upsampled copy of the feature map, not a summary of regions.

    ## Example
    ```python
    # a 64×64 crop at stride 16: F = 4, scale 6 > 4
    model = dict(decode_head=dict(type="PSPHead", pool_scales=(1, 2, 3, 6)))
    ```

    ## Fix
    `--fix` caps the scales at F (and at crop / min-cell).
    """

    code = "AA202"
    name = "ppm-scale-above-feature-map"
    summary = "A pyramid-pooling scale is larger than the feature map"
    fix_title = "Cap the pool scales at the feature map"
    fix_availability = "sometimes"

    def check(self, facts: ConfigFacts, settings: Settings) -> Iterator[Diagnostic]:
        found = ppm_analysis(facts, settings)
        if found is None:
            return
        analysis, fix = found
        assert facts.ppm is not None  # ppm_analysis found a PPM
        big = [c.scale for c in analysis.cells if c.redundant]
        if big:
            yield self.diagnostic(
                f"{facts.ppm.head} pool scale(s) {fmt.ints(big)} exceed the {fmt.crop(analysis.feature_map)}-position "
                f"feature map {where(analysis)}: bins repeat features; use {facts.ppm.key}={analysis.suggested_scales}",
                facts.ppm.loc,
                fix,
            )


RULE = PpmScaleAboveFeatureMap()
