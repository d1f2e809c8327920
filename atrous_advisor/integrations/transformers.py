"""Hugging Face ``Trainer``: ``AtrousAdvisorCallback``, a pre-flight check of the model it is about to train.

    from atrous_advisor.integrations.transformers import AtrousAdvisorCallback
    trainer = Trainer(model=model, args=args, train_dataset=train, callbacks=[AtrousAdvisorCallback()])

At ``on_train_begin`` (after the optimizer is built, before the first step) the callback inspects a meta
copy of ``model`` called as ``model(pixel_values)``, logs the verdict through the ``transformers`` logger
(problems as warnings, so they show at the default verbosity; an ok verdict at info level, shown with
``TrainingArguments(log_level="info")``), and with ``strict=True`` raises
:class:`~atrous_advisor.errors.RetuneRequired` when a head needs retuning.

The crop is ``crop`` when given, else the ``pixel_values`` size of the train dataset's first example
(``train_dataset[0]``: one item read from the dataset, not a batch drawn from the loader, so the run's
batch order is unchanged; a random transform on that item runs once more). Attention models (SegFormer,
Swin, BEiT) are reported as "unknown" where the graph cannot be followed yet, with no advice.
"""

from __future__ import annotations

from typing import Any, Optional

from transformers import TrainerCallback
from transformers.utils import logging

from atrous_advisor.integrations._check import CropLike, Verdict, as_crop, check_capture, crop_of_batch, enforce, preflight

__all__ = ["AtrousAdvisorCallback"]

log = logging.get_logger("transformers.trainer.atrous_advisor")


def _first_example_crop(dataloader: Any) -> Optional[tuple[int, int]]:
    dataset = getattr(dataloader, "dataset", None)
    if dataset is None or not hasattr(dataset, "__getitem__"):
        return None  # an IterableDataset has no first item to read without drawing from the stream
    try:
        return crop_of_batch(dataset[0], example=True)
    except (IndexError, KeyError, TypeError):
        return None


class AtrousAdvisorCallback(TrainerCallback):
    """Inspect the model at the training crop before the first optimizer step; log the verdict.

    Args:
        crop: the training crop (``512``, ``(512, 1024)`` or ``"512x1024"``); by default the size of the
            first training example's ``pixel_values``.
        strict: raise ``RetuneRequired`` before the first step when a head needs retuning.
        capture: ``"dispatch"`` or ``"export"``, as ``inspect --capture`` (default: the CLI's).
    """

    def __init__(self, crop: Optional[CropLike] = None, strict: bool = False,
                 capture: Optional[str] = None) -> None:
        self.crop = as_crop(crop)
        self.strict = strict
        self.capture = check_capture(capture)
        self.verdict: Optional[Verdict] = None

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        if model is None:
            return
        crop = self.crop or _first_example_crop(train_dataloader)
        self.verdict = preflight(model, crop, capture=self.capture)
        if state.is_world_process_zero:
            for line in self.verdict.lines:
                (log.warning if self.verdict.problem else log.info)(line)
        enforce(self.verdict, self.strict)
