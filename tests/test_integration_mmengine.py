"""AtrousAdvisorHook in a real mmengine Runner built from a config (custom_imports + custom_hooks), a few CPU
iterations of a tiny ASPP net: the verdict in the runner's log file, strict=True stopping before the first
step, the model untouched by the check."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("cv2", reason="mmengine's Runner imports cv2 (opencv-python-headless)")
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import Compose  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402
from mmengine.registry import DATASETS, MODELS, TRANSFORMS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

import tiny_seg  # noqa: E402
from atrous_advisor.errors import RetuneRequired  # noqa: E402

pytestmark = pytest.mark.slow


@MODELS.register_module(force=True)
class TinySegmentor(BaseModel):
    def __init__(self, rates) -> None:
        super().__init__()
        self.net = tiny_seg.TinyASPPNet(tuple(rates))

    def forward(self, inputs, data_samples=None, mode: str = "tensor"):
        logits = self.net(inputs)
        if mode == "loss":
            return {"loss": F.cross_entropy(logits, data_samples)}
        return logits


@TRANSFORMS.register_module(name="RandomCrop", force=True)
class SegRandomCrop:
    """mmseg's RandomCrop contract (crop_size = (h, w)) for the test's numpy samples."""

    def __init__(self, crop_size) -> None:
        self.crop_size = crop_size

    def __call__(self, results: dict) -> dict:
        h, w = self.crop_size
        img = results["img"]
        top = np.random.randint(0, img.shape[0] - h + 1)
        left = np.random.randint(0, img.shape[1] - w + 1)
        results["img"] = img[top:top + h, left:left + w]
        results["gt"] = results["gt"][top:top + h, left:left + w]
        return results


@DATASETS.register_module(force=True)
class TinySegDataset(Dataset):
    def __init__(self, pipeline, size: int = 160, length: int = 4) -> None:
        self.pipeline = Compose(pipeline)
        self.size, self.length = size, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng(i)
        sample = self.pipeline({
            "img": rng.random((self.size, self.size, 3), dtype=np.float32),
            "gt": rng.integers(0, tiny_seg.CLASSES, (self.size, self.size)),
        })
        return {"inputs": torch.from_numpy(np.ascontiguousarray(sample["img"].transpose(2, 0, 1))),
                "data_samples": torch.from_numpy(np.ascontiguousarray(sample["gt"]))}


def _config(work_dir, rates, strict: bool, pipeline_crop: bool = True, iters: int = 3) -> Config:
    """The test's config written to a file and read back with ``Config.fromfile``."""
    pipeline = [dict(type="RandomCrop", crop_size=(tiny_seg.CROP, tiny_seg.CROP))] if pipeline_crop else []
    size = 160 if pipeline_crop else tiny_seg.CROP
    config = Config(dict(
        custom_imports=dict(imports=["atrous_advisor.integrations.mmengine"], allow_failed_imports=False),
        custom_hooks=[dict(type="AtrousAdvisorHook", strict=strict)],
        model=dict(type="TinySegmentor", rates=list(rates)),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dict(type="TinySegDataset", pipeline=pipeline, size=size),
            sampler=dict(type="DefaultSampler", shuffle=False),
            collate_fn=dict(type="default_collate"),
            batch_size=2, num_workers=0,
        ),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(logger=dict(type="LoggerHook", interval=1), checkpoint=None),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo")),
        randomness=dict(seed=0),
        log_level="INFO",
        # MMLogger instances are global by name: a unique name keeps each test's log in its own work_dir
        experiment_name=f"aa_{uuid.uuid4().hex[:12]}",
    ))
    path = work_dir / "config.py"
    config.dump(str(path))
    return Config.fromfile(str(path))  # as tools/train.py loads it: custom_imports are imported here


def _log_text(work_dir) -> str:
    return "\n".join(p.read_text() for p in work_dir.rglob("*.log"))


def _hook(runner):
    from atrous_advisor.integrations.mmengine import AtrousAdvisorHook

    return next(h for h in runner.hooks if isinstance(h, AtrousAdvisorHook))


def test_verdict_in_the_runner_log_and_training_runs(tmp_path):
    torch.set_num_threads(1)
    runner = Runner.from_cfg(_config(tmp_path, tiny_seg.BAD_RATES, strict=False))
    runner.train()
    assert runner.iter == 3  # not strict: the run went on
    log = _log_text(tmp_path)
    assert "atrous-advisor: TinySegmentor at crop 128: 1 head to retune" in log
    assert "fix: use rates (2, 4, 6)" in log
    verdict = _hook(runner).verdict
    assert verdict.status == "retune" and verdict.seconds < 30


def test_strict_stops_before_the_first_step_and_leaves_the_model_alone(tmp_path):
    torch.set_num_threads(1)
    runner = Runner.from_cfg(_config(tmp_path, tiny_seg.BAD_RATES, strict=True))
    before = tiny_seg.snapshot(runner.model)
    runner.model.train()
    with pytest.raises(RetuneRequired, match="strict=True: stopping before the first training step"):
        runner.train()
    assert runner.iter == 0
    assert tiny_seg.unchanged(runner.model, before)  # no optimizer step, and the check copied nothing back
    assert runner.model.training
    assert "1 head to retune" in _log_text(tmp_path)


def test_good_rates_pass_strict_with_the_crop_from_the_first_batch(tmp_path):
    """No RandomCrop in the pipeline: the crop comes from the batch the loop loaded for iteration 0."""
    torch.set_num_threads(1)
    runner = Runner.from_cfg(_config(tmp_path, tiny_seg.GOOD_RATES, strict=True, pipeline_crop=False, iters=2))
    runner.train()
    assert runner.iter == 2
    assert _hook(runner).verdict.status == "ok"
    assert "atrous-advisor: TinySegmentor at crop 128: 1 head fits the crop" in _log_text(tmp_path)


def test_crop_of_pipeline_follows_dataset_wrappers_as_configs_write_them():
    from atrous_advisor.integrations.mmengine import crop_of_pipeline

    leaf = dict(type="ADE20KDataset", pipeline=[
        dict(type="LoadImageFromFile"), dict(type="RandomResize", scale=(2048, 512)),
        dict(type="mmseg.RandomCrop", crop_size=(512, 1024), cat_max_ratio=0.75), dict(type="PackSegInputs"),
    ])
    assert crop_of_pipeline(leaf) == (512, 1024)
    assert crop_of_pipeline(dict(type="RepeatDataset", times=2, dataset=leaf)) == (512, 1024)
    square = dict(leaf, pipeline=[dict(type="RandomCrop", crop_size=640)])
    assert crop_of_pipeline(dict(type="ConcatDataset", datasets=[square, square])) == (640, 640)
    assert crop_of_pipeline(dict(type="ConcatDataset", datasets=[leaf, square])) is None  # they disagree
    assert crop_of_pipeline(dict(type="X", pipeline=[dict(type="Resize", scale=(512, 512))])) is None


def test_crop_of_batch_reads_the_image_layouts_frameworks_use():
    from atrous_advisor.integrations._check import crop_of_batch

    images = torch.zeros(2, 3, 64, 96)
    assert crop_of_batch(images) == (64, 96)
    assert crop_of_batch((images, torch.zeros(2, 64, 96, dtype=torch.long))) == (64, 96)
    assert crop_of_batch({"labels": torch.zeros(2, 1, 8, 8), "pixel_values": images}) == (64, 96)
    assert crop_of_batch({"inputs": [torch.zeros(3, 64, 96), torch.zeros(3, 64, 96)]}) == (64, 96)  # mmengine
    assert crop_of_batch({"pixel_values": np.zeros((3, 32, 48))}, example=True) == (32, 48)
    assert crop_of_batch({"pixel_values": np.zeros((3, 32, 48))}) is None  # in a batch, 3-D is not an image
    assert crop_of_batch({"text": "no image"}) is None
