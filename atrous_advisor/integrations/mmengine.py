"""mmengine: ``AtrousAdvisorHook``, a pre-flight check of the model the Runner is about to train.

In a config::

    custom_imports = dict(imports=['atrous_advisor.integrations.mmengine'], allow_failed_imports=False)
    custom_hooks = [dict(type='AtrousAdvisorHook', strict=False)]

At ``before_train`` the hook takes ``runner.model`` (unwrapped from MMDistributedDataParallel and the other
mmengine model wrappers), the crop from the train pipeline's ``RandomCrop`` (``crop_size``), inspects a copy
on the meta device and logs the verdict through ``runner.logger``. When the pipeline has no crop, the check
runs at the first ``before_train_iter`` on the batch the loop has already loaded (nothing extra is read).
With ``strict=True`` a head that needs retuning raises :class:`~atrous_advisor.errors.RetuneRequired`
there, before the first iteration's forward pass and optimizer step.
"""

from __future__ import annotations

from typing import Any, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from atrous_advisor.integrations._check import CropLike, Verdict, as_crop, check_capture, crop_of_batch, enforce, preflight

__all__ = ["AtrousAdvisorHook", "crop_of_pipeline"]

_CROP_TRANSFORMS = ("RandomCrop",)  # mmseg's (and mmcv's) RandomCrop: crop_size is (h, w) or an int


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else getattr(item, key, None)


def crop_of_pipeline(dataset: Any) -> Optional[tuple[int, int]]:
    """``crop_size`` of the ``RandomCrop`` in a train dataset's pipeline, as a config dict or a built dataset;
    wrappers (``RepeatDataset``, ``ClassBalancedDataset``, ``ConcatDataset``) are followed. None when there is
    no crop or the datasets disagree."""
    if dataset is None:
        return None
    inner = _get(dataset, "dataset")
    if inner is not None:
        return crop_of_pipeline(inner)
    datasets = _get(dataset, "datasets")
    if datasets:
        crops = {crop_of_pipeline(d) for d in datasets}
        return crops.pop() if len(crops) == 1 else None
    pipeline = _get(dataset, "pipeline")
    transforms = _get(pipeline, "transforms") if pipeline is not None and not isinstance(pipeline, list) else pipeline
    for step in transforms or ():
        kind = step.get("type") if isinstance(step, dict) else type(step).__name__
        name = kind.rsplit(".", 1)[-1] if isinstance(kind, str) else getattr(kind, "__name__", "")
        size = _get(step, "crop_size")
        if name in _CROP_TRANSFORMS and size is not None:
            return as_crop(size)
    return None


@HOOKS.register_module()
class AtrousAdvisorHook(Hook):
    """Inspect the model at the training crop before the first iteration; log the verdict.

    Args:
        crop: the training crop (``512``, ``(512, 1024)`` or ``"512x1024"``); by default read from the
            train pipeline, else from the first batch.
        strict: raise ``RetuneRequired`` before the first iteration when a head needs retuning.
        capture: ``"dispatch"`` or ``"export"``, as ``inspect --capture`` (default: the CLI's).
    """

    priority = "VERY_HIGH"  # run before the other hooks' before_train_iter: stop before anything else starts

    def __init__(self, crop: Optional[CropLike] = None, strict: bool = False,
                 capture: Optional[str] = None) -> None:
        self.crop = as_crop(crop)
        self.strict = strict
        self.capture = check_capture(capture)
        self.verdict: Optional[Verdict] = None
        self._waiting_for_batch = False

    def before_train(self, runner) -> None:
        crop = self.crop or crop_of_pipeline((runner.cfg.get("train_dataloader") or {}).get("dataset"))
        if crop is None:
            crop = crop_of_pipeline(getattr(runner.train_loop.dataloader, "dataset", None))
        if crop is None:
            self._waiting_for_batch = True
            return
        self._check(runner, crop)

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        if self._waiting_for_batch:
            self._waiting_for_batch = False
            self._check(runner, crop_of_batch(data_batch))

    def _check(self, runner, crop: Optional[tuple[int, int]]) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.verdict = preflight(model, crop, capture=self.capture)
        log = runner.logger.warning if self.verdict.problem else runner.logger.info
        for line in self.verdict.lines:
            log(line)
        enforce(self.verdict, self.strict)
