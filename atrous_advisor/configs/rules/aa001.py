from __future__ import annotations

from typing import Iterator

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.rules.base import Diagnostic, Rule
from atrous_advisor.configs.settings import Settings


class UnresolvedValue(Rule):
    """## What it does
    Reports a value that the checks need (a crop, a stride, dilations, pool scales) but that cannot be
    resolved statically: a function call, an import, a name bound inside an `if`, an unknown YAML tag, a
    backbone type atrous-advisor does not know.

    ## Why is this bad
    atrous-advisor never runs config code and never guesses. A value it cannot read is a value it cannot
    check, so the config is only partly linted; this diagnostic says which value and why.

    ## Example
    ```python
    img_scale = (2048, 512)
    crop_size = tuple(side // 4 for side in img_scale)  # mmengine runs this; atrous-advisor does not
    train_pipeline = [dict(type="RandomCrop", crop_size=crop_size)]
    ```

    ## Fix
    Write the value as a literal (or as arithmetic on names bound earlier in the file), or silence the
    line with `# atrous-advisor: noqa: AA001`.
    """

    code = "AA001"
    name = "unresolved-value"
    summary = "A value the checks need cannot be resolved statically"

    def check(self, facts: ConfigFacts, settings: Settings) -> Iterator[Diagnostic]:
        for item in facts.unresolved:
            yield self.diagnostic(f"cannot resolve {item.what} statically: {item.reason}", item.loc)


RULE = UnresolvedValue()
