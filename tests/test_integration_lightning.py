"""AtrousAdvisorCallback in a real Lightning Trainer training a tiny ASPP net for a few CPU steps."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

L = pytest.importorskip("lightning.pytorch")
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import tiny_seg  # noqa: E402
from atrous_advisor.errors import InputError, RetuneRequired  # noqa: E402
from atrous_advisor.integrations.lightning import AtrousAdvisorCallback  # noqa: E402

pytestmark = pytest.mark.slow


class TinyModule(L.LightningModule):
    def __init__(self, rates) -> None:
        super().__init__()
        self.net = tiny_seg.TinyASPPNet(rates)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader:
    return DataLoader(TensorDataset(*tiny_seg.random_batch(6)), batch_size=2)


def _trainer(callback, steps: int = 3) -> "L.Trainer":
    return L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])


@pytest.fixture
def lightning_log():
    """What Lightning's logger shows (its handler or the root's, whichever it uses)."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(logging.INFO)
    logger = logging.getLogger("lightning.pytorch")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_verdict_in_lightnings_log_crop_from_the_first_batch(lightning_log):
    torch.set_num_threads(1)
    model = TinyModule(tiny_seg.BAD_RATES)
    callback = AtrousAdvisorCallback()
    trainer = _trainer(callback)
    trainer.fit(model, _loader())
    assert trainer.global_step == 3  # not strict: the run went on
    assert callback.verdict.status == "retune"
    text = "\n".join(lightning_log)
    assert "atrous-advisor: TinyModule at crop 128: 1 head to retune" in text
    assert "fix: use rates (2, 4, 6)" in text


@pytest.mark.parametrize("crop", [None, tiny_seg.CROP], ids=["crop-from-batch", "crop-given"])
def test_strict_stops_before_the_first_optimizer_step(lightning_log, crop):
    torch.set_num_threads(1)
    model = TinyModule(tiny_seg.BAD_RATES)
    before = tiny_seg.snapshot(model)
    trainer = _trainer(AtrousAdvisorCallback(crop=crop, strict=True))
    with pytest.raises(RetuneRequired, match="1 head to retune"):
        trainer.fit(model, _loader())
    assert trainer.global_step == 0
    assert tiny_seg.unchanged(model, before)


def test_given_crop_is_checked_at_fit_start_and_good_rates_pass_strict(lightning_log):
    torch.set_num_threads(1)
    model = TinyModule(tiny_seg.GOOD_RATES)
    callback = AtrousAdvisorCallback(crop=tiny_seg.CROP, strict=True, submodule="net")
    trainer = _trainer(callback, steps=2)
    trainer.fit(model, _loader())
    assert trainer.global_step == 2
    assert callback.verdict.status == "ok"
    assert any("atrous-advisor: TinyASPPNet at crop 128: 1 head fits the crop" in r for r in lightning_log)


def test_a_head_inspect_cannot_assess_is_unknown_and_strict_does_not_stop(lightning_log):
    torch.set_num_threads(1)

    class Warped(TinyModule):
        def __init__(self):
            super().__init__(tiny_seg.BAD_RATES)
            self.net = tiny_seg.WarpedASPPNet(tiny_seg.BAD_RATES)

    callback = AtrousAdvisorCallback(strict=True)
    trainer = _trainer(callback, steps=1)
    trainer.fit(Warped(), _loader())
    assert trainer.global_step == 1
    assert callback.verdict.status == "unknown"
    text = "\n".join(lightning_log)
    assert "1 head could not be checked; no advice given" in text
    assert "grid_sampler_2d" in text and "fix" not in text and "retune" not in text


def test_bad_arguments_fail_when_the_callback_is_built():
    with pytest.raises(InputError, match="capture 'trace'"):
        AtrousAdvisorCallback(capture="trace")
    with pytest.raises(InputError, match="crop"):
        AtrousAdvisorCallback(crop=(512, 512, 3))


def test_a_wrong_submodule_name_is_one_clear_error():
    trainer = _trainer(AtrousAdvisorCallback(crop=tiny_seg.CROP, submodule="backbone"))
    with pytest.raises(InputError, match="submodule 'backbone': TinyModule has no such submodule"):
        trainer.fit(TinyModule(tiny_seg.GOOD_RATES), _loader())
