"""AtrousAdvisorCallback in a real Hugging Face Trainer: a tiny UperNet (ConvNeXt backbone, PPM head) and a
tiny SegFormer built from configs (no weights), trained for a few CPU steps."""

from __future__ import annotations

import logging

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import (  # noqa: E402
    ConvNextConfig,
    SegformerConfig,
    SegformerForSemanticSegmentation,
    Trainer,
    TrainingArguments,
    UperNetConfig,
    UperNetForSemanticSegmentation,
)

import tiny_seg  # noqa: E402
from atrous_advisor.errors import RetuneRequired  # noqa: E402
from atrous_advisor.integrations.transformers import AtrousAdvisorCallback  # noqa: E402

pytestmark = pytest.mark.slow
CROP = 64  # UperNet's stride-32 map is 2×2: pool scales 3 and 6 exceed it


def _upernet(scales=(1, 2, 3, 6)):
    backbone = ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1],
                              out_features=["stage1", "stage2", "stage3", "stage4"])
    return UperNetForSemanticSegmentation(UperNetConfig(
        backbone_config=backbone, hidden_size=16, num_labels=tiny_seg.CLASSES, pool_scales=list(scales),
        use_auxiliary_head=False,
    ))


def _segformer():
    return SegformerForSemanticSegmentation(SegformerConfig(
        num_labels=tiny_seg.CLASSES, hidden_sizes=[8, 16, 32, 64], decoder_hidden_size=16, depths=[1, 1, 1, 1],
        num_attention_heads=[1, 1, 1, 1],
    ))


class SegDataset(torch.utils.data.Dataset):
    def __init__(self, n: int = 4) -> None:
        self.images, self.labels = tiny_seg.random_batch(n, crop=CROP)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"pixel_values": self.images[i], "labels": self.labels[i]}


def _trainer(model, callback, tmp_path, steps: int = 2) -> Trainer:
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=2, learning_rate=0.1,
        report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True, log_level="info",
        dataloader_num_workers=0,
    )
    return Trainer(model=model, args=args, train_dataset=SegDataset(), callbacks=[callback])


@pytest.fixture
def hf_log():
    """What the transformers logger shows (its library root logger has its own handler)."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(logging.INFO)
    root = logging.getLogger("transformers")
    root.addHandler(handler)
    yield records
    root.removeHandler(handler)


def test_upernet_ppm_verdict_in_the_trainer_log(tmp_path, hf_log):
    torch.set_num_threads(1)
    callback = AtrousAdvisorCallback()
    trainer = _trainer(_upernet(), callback, tmp_path)
    trainer.train()
    assert trainer.state.global_step == 2
    assert callback.verdict.status == "retune"
    text = "\n".join(hf_log)
    assert "atrous-advisor: UperNetForSemanticSegmentation at crop 64: 1 head to retune" in text
    assert "PPM decode_head: retune: scales (1, 2, 3, 6) on a 2 map at stride 32" in text


def test_strict_stops_before_the_first_optimizer_step(tmp_path, hf_log):
    torch.set_num_threads(1)
    model = _upernet()
    model.train()
    before = tiny_seg.snapshot(model)
    trainer = _trainer(model, AtrousAdvisorCallback(strict=True), tmp_path)
    with pytest.raises(RetuneRequired, match="strict=True: stopping before the first training step"):
        trainer.train()
    assert trainer.state.global_step == 0
    assert tiny_seg.unchanged(model, before)
    assert model.training


def test_segformer_has_no_head_to_check_and_strict_does_not_stop(tmp_path, hf_log):
    """SegFormer's all-MLP decoder has no ASPP or PPM: nothing to retune, so strict lets it train."""
    torch.set_num_threads(1)
    callback = AtrousAdvisorCallback(crop=CROP, strict=True)
    trainer = _trainer(_segformer(), callback, tmp_path, steps=1)
    trainer.train()
    assert trainer.state.global_step == 1
    assert callback.verdict.status == "no-head"
    assert callback.verdict.report.global_context  # attention is followed as global context
    line = next(r for r in hf_log if r.startswith("atrous-advisor: SegformerForSemanticSegmentation"))
    assert "no ASPP, PPM or dilated FCN head found" in line and "fix" not in line
