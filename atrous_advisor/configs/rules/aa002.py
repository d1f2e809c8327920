from __future__ import annotations

from typing import Iterator

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.rules.base import Diagnostic, Rule
from atrous_advisor.report import format as fmt
from atrous_advisor.configs.settings import Settings


def how_to_supply(missing: list[str], comments: bool = True) -> str:
    """One sentence: the places a crop or a stride can be given (configs/supplied.py); JSON has no comments."""
    example = {"crop": "crop=512x1024", "stride": "stride=16"}
    settings = {"crop": 'crop = "512x1024"', "stride": "stride = 16"}
    comment = " ".join(example[m] for m in missing)
    flags = "/".join(f"--{m}" for m in missing)
    table = ", ".join(f"`{settings[m]}`" for m in missing)
    here = f"in this file as `# atrous-advisor: {comment}`, " if comments else ""
    return f"give {' and '.join(missing)} {here}with {flags}, or as {table} in [tool.atrous-advisor]"


class ContextHeadNotChecked(Rule):
    """## What it does
    Reports an ASPP or pyramid-pooling head whose rates or scales could not be checked because the training
    crop or the output stride is unknown, on the head's line, saying which value is missing, why, and how
    to give it. It also reports a head that carries rates or pooling scales (`dilations`, `pool_scales`,
    `aspp_ratios`, `bin_sizes`, …) but whose type the rules do not know.

    ## Why is this bad
    A linter that says "passed" about a head it could not check is worse than none: the head may carry
    exactly the mismatch the checks exist to catch. No config with such a head passes silently.

    ## Example
    ```python
    # no model.backbone in this file or its bases: the stride is unknown
    model = dict(decode_head=dict(type="ASPPHead", dilations=(1, 12, 24, 36)))
    ```

    ## Fix
    Give the missing value where the config cannot: a comment in the config itself,
    `# atrous-advisor: crop=512x1024 stride=16`; or `--crop`/`--stride` on the command line; or
    `crop`/`stride` in `[tool.atrous-advisor]`. These only fill in what the config does not carry.
    """

    code = "AA002"
    name = "context-head-not-checked"
    summary = "An ASPP or pooling head could not be checked: its crop, stride or head type is unknown"

    def check(self, facts: ConfigFacts, settings: Settings) -> Iterator[Diagnostic]:
        heads = []
        if facts.aspp is not None:
            heads.append((facts.aspp.head, f"rates {fmt.rates(facts.aspp.rates)}", facts.aspp.stride, facts.aspp.loc))
        if facts.ppm is not None:
            heads.append((facts.ppm.head, f"{facts.ppm.key} {fmt.ints(facts.ppm.scales)}", facts.ppm.stride, facts.ppm.loc))
        for head, what, stride, loc in heads:
            missing, why = [], []
            if facts.crop is None:
                missing.append("crop")
                if facts.unresolved_crop:
                    why.append("the training crop cannot be resolved (AA001)")
                else:
                    why.append(f"the training crop is unknown ({facts.crop_why or 'the config sets none'})")
            if stride is None:
                missing.append("stride")
                why.append(f"the output stride is unknown ({facts.stride_why or 'it cannot be derived'})")
            if missing:
                yield self.diagnostic(
                    f"{head} {what} not checked: {' and '.join(why)}; {how_to_supply(missing, facts.path.suffix.lower() != '.json')}", loc
                )
        for unknown in facts.unknown_heads:
            yield self.diagnostic(
                f"{unknown.head} {unknown.key} {unknown.value} not checked: {unknown.why}; check these rates or "
                "scales by hand, or run `atrous-advisor inspect` on the built model", unknown.loc
            )


RULE = ContextHeadNotChecked()
