from __future__ import annotations

from typing import Iterator

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.rules.base import Diagnostic, Rule
from atrous_advisor.configs.settings import Settings
from atrous_advisor.configs.values import canonical
from atrous_advisor.report import format as fmt


class BelievedCropDiffers(Rule):
    """## What it does
    Compares the crop a reader would believe — a top-level `crop_size`, or the `…512x1024` in the config's
    file name — with the crop the training pipeline really uses: `RandomCrop.crop_size` in the resolved
    `train_dataloader.dataset.pipeline` (through `RepeatDataset`/`ConcatDataset`; `data.train` in 0.x).

    ## Why is this bad
    mmengine evaluates every file in its own namespace. A child that sets `crop_size = (256, 256)` does not
    change the base's `train_pipeline`, which was built with the base's crop: the model trains at the old
    crop, and every rate and scale chosen for the new crop is wrong.

    ## Example
    ```python
    _base_ = ["../_base_/datasets/cityscapes.py"]  # RandomCrop(crop_size=(512, 1024)) in there
    crop_size = (256, 256)  # trains at 512x1024 anyway
    ```

    ## Fix
    Redefine the pipeline in the child with the new crop and assign it to
    `train_dataloader = dict(dataset=dict(pipeline=train_pipeline))`; or rename the file.
    """

    code = "AA301"
    name = "believed-crop-differs"
    summary = "crop_size or the file name states a crop the pipeline does not use"

    def check(self, facts: ConfigFacts, settings: Settings) -> Iterator[Diagnostic]:
        if facts.crop is None or facts.crop_source != "RandomCrop.crop_size" or facts.crop_loc is None:
            return
        for believed in facts.believed:
            if believed.crop == facts.crop:
                continue
            what = (
                f"crop_size = {believed.crop}"
                if believed.source == "crop_size"
                else f"the file name says {believed.crop[0]}x{believed.crop[1]}"
            )
            if facts.stray_pipeline is not None:
                where, wrapper = facts.stray_pipeline
                inner = where[: -len(".pipeline")] + ".dataset.pipeline"
                why = f"; `{where}` is set on a {wrapper}, which has no pipeline: set `{inner}` instead"
            elif canonical(facts.crop_loc.path) != canonical(facts.path):
                why = " and a base's pipeline keeps the crop it was built with; redefine train_pipeline here"
            elif believed.source == "crop_size":
                why = f"; set crop_size to the pipeline's crop in {facts.path.name}"
            else:
                why = "; rename the file or change the crop"
            yield self.diagnostic(
                f"{what}, but training crops {fmt.crop(facts.crop)}: RandomCrop.crop_size is set at "
                f"{facts.crop_loc.path.name}:{facts.crop_loc.line}{why}",
                believed.loc,
            )


RULE = BelievedCropDiffers()
