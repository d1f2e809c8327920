from __future__ import annotations

from typing import Iterator

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.rules._ppm import ppm_analysis, where
from atrous_advisor.configs.rules.base import Diagnostic, Rule
from atrous_advisor.configs.settings import Settings
from atrous_advisor.geometry import collapses_to_global


class PpmCellBelowMinCell(Rule):
    """## What it does
    Computes the cell size of every pyramid-pooling scale, F·s / k px for scale k on the feature map F at
    stride s, and fires when a cell is smaller than `min-cell` (120 px by default; `[tool.atrous-advisor]`).
    Scale 1 (global pooling) is exempt: its cell is the whole crop.

    ## Why is this bad
    Adaptive pooling is relative to the crop, objects are not. At a small crop the finest bins summarise
    less than one object, so that pyramid level adds noise rather than context. Note that larger scales make
    smaller cells.

    ## Example
    ```python
    # 512×512 at stride 8: F = 64, the 6×6 grid has 85 px cells
    model = dict(decode_head=dict(type="PSPHead", pool_scales=(1, 2, 3, 6)))
    ```

    ## Fix
    `--fix` caps the scales at floor(crop / min-cell): `pool_scales=(1, 2, 3, 4)` here.
    """

    code = "AA201"
    name = "ppm-cell-below-min-cell"
    summary = "A pyramid-pooling cell is smaller than min-cell pixels"
    fix_title = "Cap the pool scales at crop / min-cell"
    fix_availability = "sometimes"

    def check(self, facts: ConfigFacts, settings: Settings) -> Iterator[Diagnostic]:
        found = ppm_analysis(facts, settings)
        if found is None:
            return
        analysis, fix = found
        assert facts.ppm is not None  # ppm_analysis found a PPM
        # Scale 1 pools the whole crop: no other setting makes its cell larger, so it is never reported.
        small = [c for c in analysis.cells if c.below_min_cell and c.scale != 1]
        if not small:
            return
        cells = ", ".join(f"scale {c.scale}: {min(c.cell_pixels):.0f} px" for c in small)
        default = " (the head's class default)" if facts.ppm.is_default else ""
        hint = f"; use {facts.ppm.key}={analysis.suggested_scales}" if analysis.suggested_scales != facts.ppm.scales else ""
        if not hint and collapses_to_global(analysis.crop, analysis.min_cell):
            hint = ("; at this crop only global pooling would keep cells that large, and a pyramid cut to it measured "
                    "worse, so no change is suggested: train at a larger crop or lower min-cell")
        yield self.diagnostic(
            f"{facts.ppm.head} {facts.ppm.key} {facts.ppm.scales}{default} {where(analysis)}: cells below "
            f"min-cell {analysis.min_cell} px ({cells}){hint}",
            facts.ppm.loc,
            fix if analysis.suggested_scales != facts.ppm.scales else None,
        )


RULE = PpmCellBelowMinCell()
