"""Rules and the facts they read: every rule in the registry fires on a fixture written in a real layout and
stays quiet on a near miss; crops, strides, rates and scales are found where the frameworks really put them."""

from __future__ import annotations

from pathlib import Path

import pytest

from atrous_advisor.configs.engine import lint_paths
from atrous_advisor.configs.rules import RULES
from atrous_advisor.configs.settings import Settings, parse_settings
from atrous_advisor.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
M1 = "mmseg1x/"
D2 = "detectron2/projects/DeepLab/configs/Cityscapes-SemanticSegmentation/"

FIRING = {
    "AA001": M1 + "misc/deeplabv3_r50-d8_computed-crop_ade20k.py",
    "AA002": M1 + "misc/aspp_head_without_backbone_ade20k-512x512.py",
    "AA101": M1 + "deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py",
    "AA102": M1 + "deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-256x256.py",
    "AA103": M1 + "deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-320x320.py",
    "AA201": M1 + "pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py",
    "AA202": M1 + "pspnet/pspnet_r50-d8_4xb4-20k_tiny-40x40.py",
    "AA301": M1 + "deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-256x256.py",
    "AA302": D2 + "deeplab_v3_R_103_os8_mg124_poly_90k_bs16.yaml",
    "AA303": M1 + "unet/fcn_unet_s5-d16_4xb4-40k_hrf-500x500.py",
}
# Near misses: the rule's inputs are all there, and the rule must stay quiet.
QUIET = {
    "AA001": M1 + "deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py",
    "AA002": M1 + "misc/aspp_head_stride_given_ade20k-512x512.py",  # the stride is in a comment
    "AA101": M1 + "deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-640x640.py",  # r* = 12.7, rates (12, 24, 36)
    "AA102": M1 + "deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py",  # 36 < F = 64
    "AA103": M1 + "deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py",  # 61% padding
    "AA201": M1 + "pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-769x769.py",  # 129 px cells
    "AA202": M1 + "pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py",
    "AA301": M1 + "deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py",
    "AA302": D2 + "deeplab_v3_R_103_os16_mg124_poly_90k_bs16.yaml",
    "AA303": M1 + "unet/fcn_unet_s5-d16_4xb4-40k_hrf-256x256.py",
}


def lint_one(relative: str, settings: Settings = Settings()):
    run = lint_paths([FIXTURES / relative], settings)
    assert not run.errors, run.errors
    (result,) = [r for r in run.results if r.path.resolve() == (FIXTURES / relative).resolve()]
    return result


def test_every_registered_rule_has_a_firing_and_a_quiet_fixture():
    assert set(FIRING) == set(RULES) == set(QUIET)


@pytest.mark.parametrize("code", sorted(RULES))
def test_rule_fires(code):
    assert code in {d.code for d in lint_one(FIRING[code]).diagnostics}


@pytest.mark.parametrize("code", sorted(RULES))
def test_rule_stays_quiet_on_near_miss(code):
    result = lint_one(QUIET[code])
    assert code not in {d.code for d in result.diagnostics}


@pytest.mark.parametrize("code", sorted(RULES))
def test_rule_is_documented(code):
    rule = RULES[code]
    doc = type(rule).__doc__ or ""
    for section in ("## What it does", "## Why is this bad", "## Example", "## Fix"):
        assert section in doc, (code, section)
    assert rule.name and rule.summary and rule.fix_availability in ("always", "sometimes", "never")
    assert (rule.fix_title is not None) == (rule.fix_availability != "never")


def test_diagnostics_point_where_the_value_was_set():
    result = lint_one(FIRING["AA101"])
    (aa101,) = [d for d in result.diagnostics if d.code == "AA101"]
    assert aa101.loc.path.name == "deeplabv3_r50-d8.py" and "_base_" in aa101.loc.path.parts
    assert (aa101.loc.line, aa101.loc.col + 1) == (30, 19)  # dilations=(1, 12, 24, 36) in the model base
    assert "(10, 20, 30)" in aa101.message and aa101.fix is not None and aa101.fix.applicability == "safe"


def test_crop_trap_points_at_the_believed_crop_and_names_the_real_one():
    result = lint_one(FIRING["AA301"])
    aa301 = sorted((d.loc.line, d.message) for d in result.diagnostics if d.code == "AA301")
    assert [line for line, _ in aa301] == [1, 5]  # the file name, then `crop_size = (256, 256)`
    assert all("512×1024" in message and "cityscapes.py:4" in message for _, message in aa301)
    assert result.facts.crop == (512, 1024)
    assert all("redefine train_pipeline here" in message for _, message in aa301)


def test_crop_mismatch_in_the_leafs_own_pipeline_is_not_blamed_on_a_base(tmp_path):
    """The leaf crops 256x256 itself; the stale crop_size it inherits (and its name) are what is wrong."""
    base = (FIXTURES / M1 / "_base_/datasets/cityscapes.py").resolve()
    leaf = tmp_path / "fcn_cityscapes-512x1024.py"
    leaf.write_text(f"_base_ = [{str(base)!r}]\n"
                    "train_dataloader = dict(dataset=dict(pipeline=[dict(type='RandomCrop', crop_size=(256, 256))]))\n")
    run = lint_paths([leaf], Settings())
    (result,) = run.results
    messages = {d.loc.path.name: d.message for d in result.diagnostics if d.code == "AA301"}
    assert set(messages) == {"cityscapes.py", leaf.name}
    assert not any("redefine train_pipeline" in m for m in messages.values())
    assert "set crop_size to the pipeline's crop in fcn_cityscapes-512x1024.py" in messages["cityscapes.py"]
    assert "rename the file" in messages[leaf.name]


@pytest.mark.parametrize(
    ("relative", "crop", "stride", "rates", "scales"),
    [
        (M1 + "deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py", (512, 1024), 8, (12, 24, 36), None),
        (M1 + "deeplabv3/deeplabv3_r101-d8_4xb4-80k_ade20k-512x512.py", (512, 512), 8, (12, 24, 36), None),
        (M1 + "deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-640x640.py", (640, 640), 8, (12, 24, 36), None),  # Concat
        (M1 + "deeplabv3/deeplabv3_r50-d8_fitted-rates_ade20k-512x512.py", (512, 512), 8, (10, 20, 30), None),
        (M1 + "deeplabv3plus/deeplabv3plus_r50-d8_4xb4-80k_ade20k-512x512.py", (512, 512), 8, (12, 24, 36), None),
        (M1 + "pspnet/pspnet_r50-d8_from-deeplabv3_4xb2-40k_cityscapes-769x769.py", (769, 769), 8, None, (1, 2, 3, 6)),
        (M1 + "fastfcn/fastfcn_r50-d32_jpu_psp_4xb4-80k_ade20k-512x512.py", (512, 512), 8, None, (1, 2, 3, 6)),  # JPU
        (M1 + "fcn/fcn-d6_r50-d16_4xb2-40k_cityscapes-512x1024.py", (512, 1024), 16, None, None),
        (M1 + "unet/deeplabv3_unet-s5-d16_4xb4-40k_hrf-256x256.py", (256, 256), 1, (12, 24, 36), None),  # RepeatDataset
        (M1 + "unet/fcn_unet_s5-d16_4xb4-40k_hrf-500x500.py", (500, 500), 1, None, None),
        ("mmseg0x/deeplabv3/deeplabv3_r50-d8_512x512_20k_voc12aug.py", (512, 512), 8, (12, 24, 36), None),
        ("mmseg0x/deeplabv3/deeplabv3_r50-d8_64x64_40k_drive.py", (64, 64), 8, (2, 3, 4), None),  # 0.x RepeatDataset
        (D2 + "deeplab_v3_R_103_os16_mg124_poly_90k_bs16.yaml", (512, 1024), 16, (6, 12, 18), None),
        (D2 + "deeplab_v3_plus_R_103_os16_mg124_poly_90k_bs16.yaml", (512, 1024), 16, (6, 12, 18), None),
        (D2 + "deeplab_v3_R_103_os8_mg124_poly_90k_bs16.yaml", (512, 1024), 8, (12, 24, 36), None),
        (D2 + "deeplab_v3_R_103_os16_mg124_poly_90k_bs16_512x512.yaml", (512, 512), 16, (6, 12, 18), None),
    ],
)
def test_facts_found_where_the_frameworks_put_them(relative, crop, stride, rates, scales):
    facts = lint_one(relative).facts
    assert facts.crop == crop
    assert facts.output_stride == stride
    assert (facts.aspp.rates if facts.aspp else None) == rates
    assert (facts.ppm.scales if facts.ppm else None) == scales


def test_fcn_d6_dilated_convs_and_their_stride():
    facts = lint_one(M1 + "fcn/fcn-d6_r50-d16_4xb2-40k_cityscapes-512x1024.py").facts
    convs = sorted((c.head, c.rate, c.stride) for c in facts.dilated_convs)
    # decode and auxiliary FCNHead(dilation=6), and the backbone's dilated last stage (d16: dilations (1, 1, 1, 2))
    assert convs == [("FCNHead", 6, 16), ("FCNHead", 6, 16), ("ResNetV1c stage 4", 2, 16)]


def test_mmseg_multi_grid_convs_and_d16_stride():
    facts = lint_one(M1 + "deeplabv3/deeplabv3_r101-d16-mg124_4xb2-40k_cityscapes-512x1024.py").facts
    assert facts.output_stride == 16 and facts.aspp.rates == (6, 12, 18)
    assert [(c.rate, c.stride) for c in facts.dilated_convs] == [(2, 16), (4, 16), (8, 16)]  # 2 × (1, 2, 4)


def test_detectron2_multi_grid_convs():
    facts = lint_one(D2 + "deeplab_v3_R_103_os8_mg124_poly_90k_bs16.yaml").facts
    assert [(c.rate, c.stride) for c in facts.dilated_convs] == [(4, 8), (8, 8), (16, 8)]  # RES5_DILATION 4 × (1, 2, 4)


def test_unknown_backbone_is_reported_only_when_a_rule_needs_the_stride(tmp_path):
    pipeline = "train_dataloader = dict(dataset=dict(pipeline=[dict(type='RandomCrop', crop_size=(512, 512))]))\n"
    segformer = tmp_path / "segformer.py"
    segformer.write_text(pipeline + "model = dict(backbone=dict(type='MixVisionTransformer'), decode_head=dict(type='SegformerHead'))\n")
    psp = tmp_path / "psp_on_mit.py"
    psp.write_text(pipeline + "model = dict(backbone=dict(type='MixVisionTransformer'), decode_head=dict(type='PSPHead'))\n")
    assert lint_paths([segformer], Settings()).results[0].diagnostics == []
    (diag,) = lint_paths([psp], Settings()).results[0].diagnostics
    assert diag.code == "AA002" and "backbone type 'MixVisionTransformer' is not one atrous-advisor knows" in diag.message
    assert diag.loc.line == 2  # on the head's line


def test_smp_takes_the_crop_from_settings():
    deeplab = lint_one("smp/deeplabv3_resnet34/config.json", Settings(crop=(512, 512)))
    assert deeplab.facts.output_stride == 8 and deeplab.facts.aspp.rates == (12, 24, 36)
    assert {d.code for d in deeplab.diagnostics} == {"AA101"}
    fitted = lint_one("smp/deeplabv3_resnet34/config.json", Settings(crop=(608, 608)))  # r* = 12
    assert fitted.diagnostics == []
    psp = lint_one("smp/pspnet_resnet34/config.json", Settings(crop=(512, 512)))
    assert psp.facts.output_stride == 8 and psp.facts.ppm.scales == (1, 2, 3, 6)
    assert {d.code for d in psp.diagnostics} == {"AA201"} and psp.diagnostics[0].fix is None  # sizes are fixed in smp
    no_crop = lint_one("smp/deeplabv3_resnet34/config.json")
    assert no_crop.facts.crop is None and [d.code for d in no_crop.diagnostics] == ["AA002"]


def test_select_ignore_and_tolerance():
    leaf = FIRING["AA102"]
    assert {d.code for d in lint_one(leaf).diagnostics} == {"AA101", "AA102"}
    assert {d.code for d in lint_one(leaf, Settings(select=("AA10",), ignore=("AA101",))).diagnostics} == {"AA102"}
    # 512 at stride 8: r* = 10, rates (12, 24, 36) are 20% off; a 25% tolerance accepts them.
    assert lint_one(FIRING["AA101"], Settings(tolerance=0.25)).diagnostics == []


def test_settings_table_is_validated(tmp_path):
    settings = parse_settings({"select": ["AA1"], "min-cell": 64, "crop": "512x1024", "tolerance": 0.2}, tmp_path)
    assert settings.crop == (512, 1024) and settings.min_cell == 64 and settings.enabled("AA101")
    assert not settings.enabled("AA301")
    with pytest.raises(ConfigError, match="unknown key"):
        parse_settings({"min_size": 3}, tmp_path)
    with pytest.raises(ConfigError, match="crop"):
        parse_settings({"crop": "big"}, tmp_path)


def test_a_pipeline_set_on_the_repeat_dataset_wrapper_is_named_as_the_cause(tmp_path):
    """HRF's base wraps the dataset in RepeatDataset: `dataset=dict(pipeline=...)` lands on the wrapper, unused."""
    base = (FIXTURES / M1 / "_base_/datasets/hrf.py").resolve()
    leaf = tmp_path / "fcn_hrf-128x128.py"
    leaf.write_text(f"_base_ = [{str(base)!r}]\n"
                    "crop_size = (128, 128)\n"
                    "train_pipeline = [dict(type='RandomCrop', crop_size=crop_size)]\n"
                    "train_dataloader = dict(dataset=dict(pipeline=train_pipeline))\n")
    (result,) = lint_paths([leaf], Settings()).results
    messages = [d.message for d in result.diagnostics if d.code == "AA301"]
    assert messages and all("set `train_dataloader.dataset.dataset.pipeline` instead" in m for m in messages)
    assert not any("redefine train_pipeline" in m for m in messages)


@pytest.mark.parametrize("change", [
    "_base_.model.decode_head.update(dilations=(1, 5, 10, 15))",
    "_base_.model.decode_head.dilations = (1, 5, 10, 15)",
    "_base_['model']['decode_head']['dilations'] = (1, 5, 10, 15)",
])
def test_a_child_changing_the_base_dict_in_place_is_aa001_not_the_base_value(tmp_path, change):
    """mmengine's `_base_` is the merged base dict: changing it changes the result (mmengine gives (1, 5, 10, 15))."""
    base = (FIXTURES / M1 / "_base_/models/deeplabv3_r50-d8.py").resolve()
    data = (FIXTURES / M1 / "_base_/datasets/ade20k.py").resolve()
    leaf = tmp_path / "leaf.py"
    leaf.write_text(f"_base_ = [{str(base)!r}, {str(data)!r}]\n{change}\n")
    (result,) = lint_paths([leaf], Settings()).results
    assert result.facts.aspp is None
    assert [(d.code, d.loc.path.name, d.loc.line) for d in result.diagnostics] == [("AA001", "leaf.py", 2)]


def test_aa201_below_twice_min_cell_reports_the_cells_but_suggests_no_cut_to_global_pooling(tmp_path):
    leaf = tmp_path / "psp_96.py"
    leaf.write_text(
        "crop_size = (96, 96)\n"
        "train_dataloader = dict(dataset=dict(pipeline=[dict(type='RandomCrop', crop_size=crop_size)]))\n"
        "model = dict(backbone=dict(type='ResNetV1c', strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)),\n"
        "             decode_head=dict(type='PSPHead', in_index=3, pool_scales=(1, 2, 3, 6)))\n")
    (result,) = lint_paths([leaf], Settings()).results
    (aa201,) = [d for d in result.diagnostics if d.code == "AA201"]
    assert "no change is suggested" in aa201.message and "use pool_scales" not in aa201.message
    assert aa201.fix is None
