"""Lightning: ``AtrousAdvisorCallback``, a pre-flight check of the LightningModule ``trainer.fit`` trains.

    from atrous_advisor.integrations.lightning import AtrousAdvisorCallback
    trainer = L.Trainer(callbacks=[AtrousAdvisorCallback(crop=512, strict=False)])

With ``crop`` given, the check runs at ``on_fit_start``. Without it, it runs at the first
``on_train_batch_start`` on the batch Lightning has already loaded for step 0: the crop is that batch's
image height and width, and no batch is drawn from the loader for the check (its order, length and
augmentation random state are the run's own). Either way it runs before the first optimizer step, and
``strict=True`` raises :class:`~atrous_advisor.errors.RetuneRequired` when a head needs retuning.

The model inspected is the LightningModule itself, called as ``module(images)``; name a submodule
(``submodule="net"``) when its ``forward`` takes something else. The verdict is logged on global rank 0
through Lightning's own logger (``lightning.pytorch``).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from lightning.pytorch.callbacks import Callback

from atrous_advisor.errors import InputError
from atrous_advisor.integrations._check import CropLike, Verdict, as_crop, check_capture, crop_of_batch, enforce, preflight

__all__ = ["AtrousAdvisorCallback"]

log = logging.getLogger("lightning.pytorch.callbacks.atrous_advisor")


class AtrousAdvisorCallback(Callback):
    """Inspect the model at the training crop before the first optimizer step; log the verdict.

    Args:
        crop: the training crop (``512``, ``(512, 1024)`` or ``"512x1024"``); by default the first
            training batch's image size.
        strict: raise ``RetuneRequired`` before the first step when a head needs retuning.
        submodule: the attribute path of the network inside the LightningModule, if ``module(images)`` is
            not how it is called.
        capture: ``"dispatch"`` or ``"export"``, as ``inspect --capture`` (default: the CLI's).
    """

    def __init__(self, crop: Optional[CropLike] = None, strict: bool = False,
                 submodule: Optional[str] = None, capture: Optional[str] = None) -> None:
        super().__init__()
        self.crop = as_crop(crop)
        self.strict = strict
        self.submodule = submodule
        self.capture = check_capture(capture)
        self.verdict: Optional[Verdict] = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.verdict = None  # a second fit() with this callback checks again
        if self.crop is not None:
            self._check(trainer, pl_module, self.crop)

    def on_train_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int) -> None:
        if self.verdict is None:
            self._check(trainer, pl_module, crop_of_batch(batch))

    def _check(self, trainer, pl_module, crop: Optional[tuple[int, int]]) -> None:
        model = pl_module
        if self.submodule:
            try:
                model = pl_module.get_submodule(self.submodule)
            except AttributeError as exc:
                raise InputError(f"submodule {self.submodule!r}: {type(pl_module).__name__} has no such submodule") from exc
        # the copy keeps a reference to the trainer instead of copying the whole training run
        self.verdict = preflight(model, crop, share=(trainer,), capture=self.capture)
        if trainer.is_global_zero:
            for line in self.verdict.lines:
                log.log(logging.WARNING if self.verdict.problem else logging.INFO, line)
        enforce(self.verdict, self.strict)
