"""`plan`: the fake-tensor estimate against a real CPU step, its shape in crop and batch, the choice, the JSON
contract and bad input. Models are examples/tiny_aspp.py (stride-8 stem, ASPP (12, 24, 36)) unless stated."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from atrous_advisor.advice import advise_ppm, advise_rates
from atrous_advisor.errors import InputError
from atrous_advisor.plan.budget import ALLOCATOR_MARGIN, CONTEXT_RESERVE, parse_memory, usable_bytes
from atrous_advisor.plan.planner import parse_crops, plan_model

EXAMPLES = Path(__file__).parents[1] / "examples"
TINY = str(EXAMPLES / "tiny_aspp.py")
HUGE = 1 << 50

torch.set_num_threads(1)


def _tiny_cpu():
    sys.path.insert(0, str(EXAMPLES))
    try:
        from tiny_aspp import build_model
    finally:
        sys.path.remove(str(EXAMPLES))
    return build_model()


def test_estimate_within_15_percent_of_a_real_cpu_step():
    """The real peak is PyTorch's CPU allocator profiled over one real step of the same model (plan.measure).

    Tolerance 15 %, the issue's bar (on this model and crop the two agree within 1 %: docs/plan.md).
    """
    from atrous_advisor.plan.measure import profiled_peak
    from atrous_advisor.plan.step import make_optimizer, prime_optimizer

    torch.manual_seed(0)
    model = _tiny_cpu().train()
    opt = make_optimizer("sgd", model.parameters())
    prime_optimizer(model, opt)
    real = profiled_peak(model, opt, torch.randn(4, 3, 128, 128), torch.randint(0, 4, (4, 128, 128)))
    estimate = plan_model(TINY, HUGE, 4, crops=[(128, 128)]).candidates[0]
    assert abs(estimate.peak_bytes / real - 1) <= 0.15, (estimate.peak_bytes, real)
    parts = estimate.breakdown
    assert sum(parts.model_dump().values()) == estimate.peak_bytes
    n_params = sum(p.numel() for p in model.parameters())
    assert parts.parameters >= 4 * n_params  # fp32 weights (plus BN buffers)
    assert parts.optimizer >= 4 * n_params  # SGD's momentum buffer: one per weight


def _tracked_step(tracker, model, opt, x, y):
    from atrous_advisor.plan.step import training_step

    for t in [*model.parameters(), *model.buffers()]:
        tracker.track(t, "parameters")
    for state in opt.state.values():
        tracker.track(state["momentum_buffer"], "optimizer")
    tracker.track(x, "activations")
    tracker.track(y, "activations")
    tracker.watch(model, opt)
    with tracker:
        training_step(model, opt, x, y)
    tracker.unwatch()
    return tracker.peak


def test_lean_tracker_on_real_tensors_equals_the_allocator_profile():
    """The accounting itself is exact: on real CPU tensors StepMemory's peak is the profiler's, byte for byte."""
    from atrous_advisor.plan.measure import profiled_peak
    from atrous_advisor.plan.step import make_optimizer, prime_optimizer
    from atrous_advisor.plan.tracker import StepMemory

    torch.manual_seed(0)
    model = _tiny_cpu().train()
    opt = make_optimizer("sgd", model.parameters())
    prime_optimizer(model, opt)
    x, y = torch.randn(2, 3, 128, 128), torch.randint(0, 4, (2, 128, 128))
    assert _tracked_step(StepMemory(block=1), model, opt, x, y) == profiled_peak(model, opt, x, y)


def test_lean_tracker_against_memtracker():
    """Same mechanism as MemTracker, without its per-module bookkeeping: the same peak."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    from atrous_advisor.plan.planner import _fakeify
    from atrous_advisor.plan.step import make_optimizer, prime_optimizer, training_step
    from atrous_advisor.plan.tracker import StepMemory

    peaks = []
    for kind in ("memtracker", "lean"):
        model = _tiny_cpu().train()
        mode = FakeTensorMode()
        _fakeify(model, mode)
        with mode:
            opt = make_optimizer("sgd", model.parameters())
            prime_optimizer(model, opt)
            x, y = torch.empty(2, 3, 96, 96), torch.zeros(2, 96, 96, dtype=torch.long)
            if kind == "memtracker":
                tracker = MemTracker()
                tracker.track_external(model, opt, x, y)
                with tracker:
                    training_step(model, opt, x, y)
                peaks.append(tracker.get_tracker_snapshot("peak")[x.device]["Total"])
            else:
                peaks.append(_tracked_step(StepMemory(block=1), model, opt, x, y))
    assert peaks[0] == peaks[1]


@pytest.fixture(scope="module")
def by_crop():
    """One plan of the tiny model over four crops with no memory limit, shared by the tests below."""
    return plan_model(TINY, HUGE, 2, crops=parse_crops("64:256:64"))


def test_memory_grows_with_crop_and_batch(by_crop):
    peaks = [c.peak_bytes for c in by_crop.candidates]
    assert peaks == sorted(peaks) and len(set(peaks)) == len(peaks)
    by_batch = [plan_model(TINY, HUGE, b, crops=[(64, 64)]).candidates[0].peak_bytes for b in (1, 4)]
    assert by_batch[0] < by_crop.candidates[0].peak_bytes < by_batch[1]  # batch 1, 2, 4 at crop 64


def test_bf16_halves_what_autocast_casts():
    bf16 = plan_model(TINY, HUGE, 2, precision="bf16", crops=[(64, 64)]).candidates[0]
    fp32 = plan_model(TINY, HUGE, 2, crops=[(64, 64)]).candidates[0]
    assert bf16.breakdown.activations < fp32.breakdown.activations
    assert bf16.breakdown.parameters == fp32.breakdown.parameters  # AMP keeps fp32 weights


def test_recommended_fits_and_the_next_crop_does_not(by_crop):
    crops = [c.crop for c in by_crop.candidates]
    peaks = [c.peak_bytes for c in by_crop.candidates]
    # a card whose usable share lies between the 128 and the 192 crop's peaks
    usable = (peaks[1] + peaks[2]) // 2
    budget = CONTEXT_RESERVE + int(usable / (1 - ALLOCATOR_MARGIN)) + 1
    assert peaks[1] <= usable_bytes(budget) < peaks[2]
    report = plan_model(TINY, budget, 2, crops=crops)
    assert [c.peak_bytes for c in report.candidates] == peaks  # the budget does not change the estimate
    assert report.recommended is not None and report.recommended.crop == (128, 128)
    assert [c.fits for c in report.candidates] == [True, True, False, False]
    # and its rates are what `rate` says for that crop at the measured stride 8
    expected = advise_rates((128, 128), 8, branches=3)
    assert report.recommended.output_stride == 8
    assert report.recommended.feature_map == (16, 16)
    assert report.recommended.suggested_rates == expected.suggested_rates
    assert report.recommended.optimal_base_rate == expected.optimal_base_rate


def test_json_contract_and_same_numbers_as_rate(run_cli):
    budget = CONTEXT_RESERVE + (64 << 20)
    result = run_cli("plan", TINY, "--memory", str(budget), "--batch", "2", "--crops", "128,64", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"model", "memory_budget_bytes", "batch", "precision", "candidates", "recommended"}
    assert data["memory_budget_bytes"] == budget and data["batch"] == 2 and data["precision"] == "fp32"
    assert [c["crop"] for c in data["candidates"]] == [[64, 64], [128, 128]]
    for c in data["candidates"]:
        assert set(c) == {"crop", "output_stride", "peak_bytes", "breakdown", "fits", "feature_map", "macs",
                          "optimal_base_rate", "suggested_rates", "suggested_scales"}
        assert set(c["breakdown"]) == {"parameters", "gradients", "optimizer", "activations", "temporary"}
        assert sum(c["breakdown"].values()) == c["peak_bytes"]
        rate = run_cli("rate", "--crop", str(c["crop"][0]), "--stride", str(c["output_stride"]), "--json")
        assert c["suggested_rates"] == json.loads(rate.stdout)["suggested_rates"]
        assert c["suggested_scales"] is None  # an ASPP model: no pooling scales
        assert c["macs"] > 0
    assert data["recommended"] == data["candidates"][1]
    # MACs per image are inspect's count at that crop
    inspected = json.loads(run_cli("inspect", TINY, "--crop", "128", "--json").stdout)
    assert data["candidates"][1]["macs"] == inspected["macs"]


def test_human_output_marks_the_recommendation(run_cli):
    result = run_cli("plan", TINY, "--memory", "2GiB", "--batch", "2", "--crops", "64,128")
    assert result.exit_code == 0, result.output
    assert "→" in result.stdout and "Train at 128 px, output stride 8" in result.stdout
    assert "rates (2, 4, 6)" in result.stdout  # r* = (128 − 32)/(6·8) = 2


def test_nothing_fits_exits_1(run_cli):
    result = run_cli("plan", TINY, "--memory", "1025MiB", "--batch", "64", "--crops", "256", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["recommended"] is None


def test_image_limits_candidates_and_adds_the_whole_image():
    report = plan_model(TINY, HUGE, 2, crops=parse_crops("64:256:64"), image=(100, 140))
    assert [c.crop for c in report.candidates] == [(64, 64), (100, 140)]
    assert report.recommended.crop == (100, 140)


def test_model_without_aspp_or_ppm_gets_no_stride_and_no_rates(tmp_path):
    path = tmp_path / "plain.py"
    path.write_text(
        "from torch import nn\n"
        "def build_model():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.Upsample(scale_factor=2))\n"
    )
    report = plan_model(str(path), HUGE, 2, crops=[(64, 64)])
    c = report.candidates[0]
    assert c.output_stride is None and c.suggested_rates is None and c.optimal_base_rate is None
    assert "no ASPP or PPM head" in report.head


def test_smp_strides_through_the_builder_argument():
    """smp DeepLabV3+ (ResNet-18, 4 stages) at encoder_output_stride 8 and 16: the strides are measured on the
    graph, each gets its own feature map and rates; stride 8 never costs less (at 64 px both peaks are the
    optimizer step's, where activations are gone)."""
    report = plan_model("segmentation_models_pytorch:DeepLabV3Plus", HUGE, 2, crops=[(64, 64)], strides=[8, 16],
                        kwargs={"encoder_name": "resnet18", "encoder_weights": None, "encoder_depth": 4,
                                "decoder_channels": 32})
    by_stride = {c.output_stride: c for c in report.candidates}
    assert set(by_stride) == {8, 16}
    assert by_stride[8].peak_bytes >= by_stride[16].peak_bytes
    assert by_stride[16].suggested_rates == advise_rates((64, 64), 16, branches=3).suggested_rates
    assert by_stride[8].feature_map == (8, 8) and by_stride[16].feature_map == (4, 4)


def test_ppm_model_gets_scales_like_ppm():
    report = plan_model(str(EXAMPLES / "smp_pspnet.py"), HUGE, 2, crops=[(256, 256)], kwargs={"encoder_name": "resnet18"})
    c = report.candidates[0]
    assert c.suggested_rates is None
    assert c.suggested_scales == advise_ppm((256, 256), c.output_stride).suggested_scales


@pytest.mark.parametrize("text,expected", [
    ("24GiB", 24 << 30), ("24G", 24 << 30), ("24000MB", 24 * 10**9), ("0.5TiB", 1 << 39), ("512 MiB", 512 << 20),
    ("1000", 1000),
])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "0", "0GiB", "-5G", "24 parsecs", "", "1e9"])
def test_parse_memory_rejects(text):
    with pytest.raises(InputError):
        parse_memory(text)


@pytest.mark.parametrize("args,needle", [
    (["--memory", "lots", "--batch", "2"], "--memory 'lots'"),
    (["--memory", "0", "--batch", "2"], "more than zero"),
    (["--memory", "1GiB", "--batch", "2"], "less than the parameters alone"),
    (["--memory", "8G", "--batch", "0"], "--batch"),
    (["--memory", "8G", "--batch", "2", "--crops", "a:b"], "--crops"),
    (["--memory", "8G", "--batch", "2", "--crops", "512x0"], "--crops '512x0'"),
    (["--memory", "8G", "--batch", "2", "--image", "0x5"], "--image '0x5'"),
    (["--memory", "8G", "--batch", "2", "--precision", "fp8"], "--precision"),
    (["--memory", "8G", "--batch", "2", "--optimizer", "lion"], "--optimizer"),
    (["--memory", "8G", "--batch", "2", "--crops", "64", "--strides", "8,16"], "output-stride arguments"),
    (["--memory", "8G", "--batch", "2", "--kwargs", "{bad"], "--kwargs"),
])
def test_bad_input_is_one_line_exit_2(run_cli, args, needle):
    result = run_cli("plan", TINY, *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr


@pytest.mark.parametrize("body,needle", [
    # a data-dependent op: no shape without the data, on meta or fake tensors
    ("nn.Conv2d(3, 4, 3, padding=1)\n"
     "class M(nn.Module):\n"
     "    def __init__(self):\n"
     "        super().__init__(); self.c = nn.Conv2d(3, 4, 3, padding=1)\n"
     "    def forward(self, x):\n"
     "        y = self.c(x)\n"
     "        return y[:, :, :, : int(torch.nonzero(y[0, 0, 0] > 0).shape[0]) + 1]\n"
     "def build_model():\n"
     "    return M()\n", "nonzero"),
    # batch norm after global pooling sees one value per channel at batch 1
    ("def build_model():\n"
     "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.BatchNorm2d(4))\n",
     "--batch 2 or more"),
])
def test_a_step_that_cannot_run_is_one_line_naming_why(run_cli, tmp_path, body, needle):
    path = tmp_path / "model.py"
    path.write_text("import torch\nfrom torch import nn\n" + body)
    result = run_cli("plan", str(path), "--memory", "8GiB", "--batch", "1", "--crops", "32")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr
