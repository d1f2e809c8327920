"""One ASPP assessment: `rate`, `inspect` and `lint` give the same verdict and the same suggestion for the same
(crop, stride, rates), because all three call geometry.assess_aspp."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from atrous_advisor import advise_rates
from atrous_advisor.configs.engine import lint_paths
from atrous_advisor.configs.settings import Settings
from atrous_advisor.geometry import PADDING_PROBLEM, assess_aspp, assess_branch, feature_map, padding_fraction

ASPP_CODES = {"AA101", "AA102", "AA103"}

# (crop, stride, rates): square and non-square crops, both strides, fitting, off, padding-heavy and
# degenerate rate sets.
GRID = [
    ((512, 512), 8, (12, 24, 36)),  # off the optimum (r* = 10); 61% padding is not a problem
    ((512, 512), 8, (10, 20, 30)),  # the suggestion itself: ok
    ((769, 769), 8, (15, 30, 45)),  # ok
    ((256, 256), 8, (12, 24, 36)),  # rate 36 ≥ F = 32: degenerate
    ((320, 320), 8, (12, 24, 36)),  # 84% padding
    ((512, 512), 16, (6, 12, 18)),  # ok at stride 16
    ((640, 640), 16, (2, 4, 6)),  # FOV far below the crop
    ((512, 1024), 8, (12, 24, 36)),  # non-square: per-axis suggestion and one int per branch
    ((1024, 512), 16, (6, 12, 18)),
    ((384, 768), 16, (4, 8, 12)),
]

MMSEG_CONFIG = """\
crop_size = {crop}
model = dict(
    type='EncoderDecoder',
    backbone=dict(type='ResNetV1c', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                  dilations={dilations}, strides={strides}, contract_dilation=True),
    decode_head=dict(type='ASPPHead', in_channels=2048, in_index=3, channels=512,
                     dilations=(1, {rates}), num_classes=19))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(type='CityscapesDataset', pipeline=train_pipeline))
"""

# A stem of stride-2 3×3 convs (padding 1: F = ceil(L / s), as ResNet's) and a DeepLab ASPP head.
TINY_MODEL = '''\
import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self, rates, stride):
        super().__init__()
        stem, c = [], 3
        while stride > 1:
            stem += [nn.Conv2d(c, 8, 3, 2, 1), nn.ReLU()]
            c, stride = 8, stride // 2
        self.stem = nn.Sequential(*stem)
        self.branches = nn.ModuleList([nn.Conv2d(8, 4, 1)] + [nn.Conv2d(8, 4, 3, padding=r, dilation=r) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 4, 1))
        self.project = nn.Conv2d(4 * (len(rates) + 2), 2, 1)

    def forward(self, x):
        f = self.stem(x)
        pooled = F.interpolate(self.pool(f), size=f.shape[-2:], mode="bilinear", align_corners=False)
        y = self.project(torch.cat([b(f) for b in self.branches] + [pooled], dim=1))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def build_model(rates=(12, 24, 36), stride=8):
    return Net(tuple(rates), stride)
'''


def _as_pairs(rates) -> list[tuple[int, int]]:
    return [(r, r) if isinstance(r, int) else (int(r[0]), int(r[1])) for r in rates]


def _lint(tmp_path: Path, crop, stride: int, rates) -> tuple[bool, list | None, str]:
    backbone = {8: ("(1, 1, 2, 4)", "(1, 2, 1, 1)"), 16: ("(1, 1, 1, 2)", "(1, 2, 2, 1)")}[stride]
    path = tmp_path / f"deeplabv3_r50-d{stride}_{crop[0]}x{crop[1]}.py"
    path.write_text(MMSEG_CONFIG.format(crop=tuple(crop), dilations=backbone[0], strides=backbone[1],
                                        rates=", ".join(map(str, rates))))
    run = lint_paths([path], Settings())
    assert not run.errors, run.errors
    (result,) = run.results
    assert result.facts.crop == tuple(crop) and result.facts.aspp.stride == stride  # read, not assumed
    found = [d for d in result.diagnostics if d.code in ASPP_CODES and d.message.startswith("ASPP")]
    suggestions = {tuple(_as_pairs(d.fix.value[1:])) for d in found if d.fix is not None}
    assert len(suggestions) <= 1  # every rule that fires suggests the same rates
    return not found, (list(suggestions.pop()) if suggestions else None), " ".join(d.message for d in found)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "tiny_aspp_net.py"
    path.write_text(TINY_MODEL)
    return str(path)


@pytest.mark.parametrize("crop, stride, rates", GRID, ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_rate_inspect_and_lint_agree(crop, stride, rates, tmp_path, tiny_model):
    torch = pytest.importorskip("torch")
    from atrous_advisor.graph.inspection import inspect_model

    torch.set_num_threads(1)
    expected = assess_aspp(rates, crop, stride)

    rate = advise_rates(crop, stride, current=rates)
    inspected = inspect_model(tiny_model, crop, {"rates": list(rates), "stride": stride}, layers=False,
                              prefer="dispatch")
    (head,) = inspected.aspp
    assert head.feature_map == feature_map(crop, stride) and head.stride == (stride, stride)  # measured
    lint_ok, lint_suggestion, lint_text = _lint(tmp_path, crop, stride, rates)

    assert rate.ok == head.ok == lint_ok == expected.ok
    assert rate.suggested_rates == head.suggested_rates == expected.suggested_rates
    assert rate.single_int_rates == expected.single_int_rates
    if not expected.ok:
        assert lint_suggestion == expected.suggested_rates
        assert rate.verdict.startswith("Retune") and head.fix is not None
        if expected.single_int_rates is not None:  # non-square: both name the one-int-per-branch option
            one_int = ", ".join(map(str, expected.single_int_rates))
            assert one_int in rate.snippets["mmsegmentation"] and f"one int per branch: ({one_int})" in lint_text
            clause = head.fix.split("one int per branch")[1]
            assert all(f"dilation=padding={r}," in clause + "," for r in expected.single_int_rates)
    # the per-branch flags are the same numbers in every command
    assert [b.padding_fraction for b in rate.evaluations[1].branches] == head.padding_fraction
    assert [b.degenerate for b in rate.evaluations[1].branches] == head.degenerate


def test_grid_covers_every_verdict_and_flag():
    assessments = [assess_aspp(rates, crop, stride) for crop, stride, rates in GRID]
    assert {a.verdict for a in assessments} == {"ok", "retune"}
    assert any(a.degenerate_rates for a in assessments) and any(a.padding_rates for a in assessments)
    assert any(a.single_int_rates for a in assessments)


@pytest.mark.parametrize("crop", [96, 128, 256, 320, 512, 769, 1024, 2048])
@pytest.mark.parametrize("stride", [8, 16])
def test_the_suggestion_is_never_flagged_where_it_fits(crop, stride):
    """The padding threshold sits above what the resolution-aware rates themselves read (≈56%)."""
    a = assess_aspp(assess_aspp([1, 2, 3], crop, stride).suggested_rates, crop, stride)
    fmap = feature_map(crop, stride)
    if a.verdict == "no_fit":  # tiny maps: even rates (1, 2, 3) reach the border
        assert 3 >= 0.75 * min(fmap)
    else:
        assert a.ok and a.within_tolerance and not a.padding_rates


def test_padding_threshold_is_where_each_axis_keeps_half_its_taps():
    fmap = 64
    assert padding_fraction(48, fmap) == pytest.approx(PADDING_PROBLEM)  # d = 3F/4: 1 − (1/2)²
    assert not assess_branch(48, fmap).reads_padding and assess_branch(49, fmap).reads_padding
    assert not assess_branch(64, fmap).reads_padding and assess_branch(64, fmap).degenerate  # AA102, not AA103


def test_lint_tolerance_is_an_override_of_the_same_assessment():
    loose = assess_aspp((12, 24, 36), 512, 8, tolerance=0.25)
    assert assess_aspp((12, 24, 36), 512, 8).verdict == "retune" and loose.verdict == "ok"


def test_crop_within_the_margin_is_unknown_not_a_guess():
    a = assess_aspp((1, 2, 3), 32, 8)
    assert a.verdict == "unknown" and a.optimal_base_rate is None and a.suggested_rates is None
    assert "margin" in a.reason
    b = assess_aspp((4, 8), 32, 8)  # F = 4: rates 4 and 8 are 1×1 convs, whatever r* is
    assert b.verdict == "no_fit" and b.degenerate_rates == [(4, 4), (8, 8)]
