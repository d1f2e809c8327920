"""Layouts are recognised by content: what is no config is skipped and counted, never linted or passed as checked."""

from __future__ import annotations

import json
from pathlib import Path

from atrous_advisor.configs.engine import lint_paths
from atrous_advisor.configs.frameworks import Skipped, recognise
from atrous_advisor.configs.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
LAZY = FIXTURES / "detectron2/configs/common/models/panoptic_fpn.py"
MODULE = FIXTURES / "detectron2/projects/DeepLab/deeplab/config.py"
YACS = FIXTURES / "yacs/deeplab-pytorch/configs/voc12.yaml"
CUSTOM = FIXTURES / "yacs/custom/configs/train.yaml"


def test_python_files_are_told_apart_by_content():
    assert recognise(FIXTURES / "mmseg1x/deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py").name == "mmseg"
    assert recognise(FIXTURES / "mmseg1x/_base_/models/deeplabv3_r50-d8.py").name == "mmseg"  # no _base_ key, model = dict
    lazy, module = recognise(LAZY), recognise(MODULE)
    assert isinstance(lazy, Skipped) and "LazyConfig" in lazy.what
    assert isinstance(module, Skipped) and lazy.what != module.what and "ordinary Python module" in module.what


def test_an_upper_case_yaml_is_not_taken_for_detectron2():
    assert recognise(FIXTURES / D2_LEAF).name == "detectron2"
    assert recognise(YACS).name == "yacs"  # EXP/DATASET/MODEL.NAME: deeplab-pytorch's keys, not Detectron2's
    assert recognise(CUSTOM) is None  # `MODEL: {BACKBONE: resnet101}` is no Detectron2 backbone section


D2_LEAF = "detectron2/projects/DeepLab/configs/Cityscapes-SemanticSegmentation/deeplab_v3_R_103_os8_mg124_poly_90k_bs16.yaml"


def test_a_walked_tree_counts_skipped_files_and_lints_only_configs():
    run = lint_paths([FIXTURES / "detectron2"], Settings())
    assert {s.path.name for s in run.skipped} == {"panoptic_fpn.py", "config.py"}
    assert not any(s.named for s in run.skipped)
    assert all(r.framework == "detectron2" for r in run.results) and not run.errors
    assert not any(d.code == "AA001" for r in run.results for d in r.diagnostics)  # no false AA001 from .py files


def test_a_named_lazyconfig_is_said_in_one_line_and_never_all_checks_passed(run_cli, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    result = run_cli("lint", str(LAZY.relative_to(FIXTURES)))
    assert result.exit_code == 0
    assert result.stderr == f"{LAZY.relative_to(FIXTURES)}: skipped: a Detectron2 LazyConfig (Python); atrous-advisor reads Detectron2's YAML configs\n"
    assert "All checks passed" not in result.stdout and "1 file skipped." in result.stdout
    report = json.loads(run_cli("lint", "--json", str(LAZY.relative_to(FIXTURES))).stdout)
    assert report["skipped"] == [{"path": str(LAZY.relative_to(FIXTURES)), "what": report["skipped"][0]["what"], "named": True, "special": False, "recognised": True}]
    assert report["summary"]["passed"] is False


def test_a_named_file_in_no_known_layout_exits_2_naming_it(run_cli, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    result = run_cli("lint", "yacs/custom/configs/train.yaml")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: yacs/custom/configs/train.yaml: not a config layout")
    assert "[tool.atrous-advisor]" in result.stderr
    assert "0 configs" in result.stdout and "could not be linted" in result.stdout


PANOPTIC = FIXTURES / "detectron2/projects/Panoptic-DeepLab/configs/Cityscapes-PanopticSegmentation"
PANOPTIC_LEAF = PANOPTIC / "panoptic_deeplab_R_52_os16_mg124_poly_90k_bs32_crop_512_1024.yaml"
D2_BASE = FIXTURES / "detectron2/projects/DeepLab/configs/Cityscapes-SemanticSegmentation/Base-DeepLabV3-OS16-Semantic.yaml"


def test_panoptic_deeplab_checks_both_aspp_heads():
    (result,) = lint_paths([PANOPTIC_LEAF], Settings()).results
    facts = result.facts
    assert (facts.crop, facts.aspp.stride, facts.aspp.head) == ((512, 1024), 16, "PanopticDeepLabSemSegHead")
    (ins,) = facts.extra_aspp
    assert (ins.head, ins.stride, ins.rates) == ("PanopticDeepLabInsEmbedHead", 16, (6, 12, 18))
    aa101 = sorted(d.loc.line for d in result.diagnostics if d.code == "AA101")
    assert aa101 == [12, 19]  # SEM_SEG_HEAD.ASPP_DILATIONS and INS_EMBED_HEAD.ASPP_DILATIONS in the base


def _d2_leaf(tmp_path, body: str) -> Path:
    leaf = tmp_path / "leaf.yaml"
    leaf.write_text(f'_BASE_: "{D2_BASE}"\n' + body)
    return leaf


def test_detectron2_backbone_name_decides_whether_the_stride_is_known(tmp_path):
    leaf = _d2_leaf(tmp_path, 'MODEL:\n  BACKBONE:\n    NAME: "build_hrnet_backbone"\nINPUT:\n  CROP:\n    SIZE: (512, 512)\n')
    (result,) = lint_paths([leaf], Settings()).results
    assert result.facts.aspp.stride is None and result.facts.output_stride is None  # no stride 16 guessed
    (diag,) = [d for d in result.diagnostics if d.code == "AA002"]
    assert "'build_hrnet_backbone' is not a backbone whose strides atrous-advisor knows" in diag.message
    assert not any(d.code == "AA101" for d in result.diagnostics)


def test_detectron2_in_features_are_ordered_by_stride_and_invalid_dilations_are_reported(tmp_path):
    reordered = _d2_leaf(tmp_path, 'MODEL:\n  SEM_SEG_HEAD:\n    IN_FEATURES: ["res5", "res2"]\n')
    (result,) = lint_paths([reordered], Settings()).results
    assert result.facts.aspp.stride == 16  # res5, although written first
    invalid = _d2_leaf(tmp_path, "MODEL:\n  RESNETS:\n    RES4_DILATION: 2\n    RES5_DILATION: 2\n")
    (result,) = lint_paths([invalid], Settings()).results
    assert result.facts.aspp is None
    (diag,) = result.diagnostics
    assert diag.code == "AA001" and diag.loc.line == 5 and "refused by Detectron2" in diag.message


def test_the_per_axis_detectron2_fix_is_read_back_by_lint(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    leaf = _d2_leaf(tmp_path, "MODEL:\n  SEM_SEG_HEAD:\n    ASPP_DILATIONS: [6, 12, 18]\n")
    assert run_cli("lint", "--fix", "--unsafe-fixes", "leaf.yaml").exit_code in (0, 1)
    assert "ASPP_DILATIONS: [[5, 10], [10, 20], [15, 30]]" in leaf.read_text()
    report = json.loads(run_cli("lint", "--json", "leaf.yaml").stdout)
    (config,) = report["configs"]
    assert config["aspp_rates"] == [[5, 10], [10, 20], [15, 30]] and config["checked"] == "full"
    assert not any(d["code"] in ("AA001", "AA101") for d in config["diagnostics"])


def test_apc_and_dm_heads_pool_like_ppm_and_are_checked_under_its_rules(run_cli, tmp_path, monkeypatch):
    apc = lint_paths([FIXTURES / "mmseg1x/apcnet/apcnet_r50-d8_4xb4-80k_ade20k-512x512.py"], Settings()).results[0]
    dm = lint_paths([FIXTURES / "mmseg1x/dmnet/dmnet_r50-d8_4xb4-80k_ade20k-512x512.py"], Settings()).results[0]
    assert (apc.facts.ppm.head, apc.facts.ppm.key, apc.facts.ppm.scales, apc.facts.ppm.stride) == (
        "APCHead", "pool_scales", (1, 2, 3, 6), 8)
    assert (dm.facts.ppm.head, dm.facts.ppm.key, dm.facts.ppm.scales) == ("DMHead", "filter_sizes", (1, 3, 5, 7))
    # 512 at stride 8: F = 64; a 5×5 filter pools 12.8-feature (102 px) cells, a 7×7 one 73 px cells
    (aa201,) = dm.diagnostics
    assert aa201.code == "AA201" and "scale 5: 102 px, scale 7: 73 px" in aa201.message
    assert "use filter_sizes=(1, 3, 4)" in aa201.message and aa201.fix.target.keys[-1] == "filter_sizes"
    # the fix writes `filter_sizes` (not pool_scales) into the leaf, and the fixed leaf passes
    leaf = tmp_path / "dmnet_ade20k-512x512.py"
    leaf.write_text((FIXTURES / "mmseg1x/dmnet/dmnet_r50-d8_4xb4-80k_ade20k-512x512.py").read_text().replace(
        "'../_base_/", f"'{(FIXTURES / 'mmseg1x/_base_').resolve()}/"))
    monkeypatch.chdir(tmp_path)
    result = run_cli("lint", "--fix", leaf.name)
    assert "filter_sizes=(1, 3, 4)" in leaf.read_text() and "All checks passed" in result.stdout


PADDLE = FIXTURES / "paddleseg/configs"


def test_paddleseg_crop_is_read_w_h_and_the_stride_from_output_stride():
    leaf = PADDLE / "deeplabv3p/deeplabv3p_resnet50_os8_cityscapes_1024x512_80k.yml"
    run = lint_paths([leaf], Settings())
    assert len(run.results) == 3  # and the two configs that inherit it
    (os8,) = [r for r in run.results if r.path == leaf]
    facts = os8.facts
    assert os8.framework == "paddleseg"
    assert (facts.crop, facts.crop_source, facts.crop_loc.path.name) == ((512, 1024), "RandomPaddingCrop.crop_size", "cityscapes.yml")
    assert (facts.aspp.rates, facts.aspp.stride, facts.aspp.to_written([5, 10, 15])) == ((12, 24, 36), 8, [1, 5, 10, 15])
    # ResNet_vd at stride 8: stage 3 dilated by 2, stage 4 by 4 × multi_grid (1, 2, 4)
    assert sorted(c.rate for c in facts.dilated_convs) == [2, 4, 8, 16]
    (os16,) = lint_paths([PADDLE / "deeplabv3p/deeplabv3p_resnet50_os16_cityscapes_1024x512_80k.yml"], Settings()).results
    assert (os16.facts.aspp.stride, os16.facts.aspp.rates) == (16, (6, 12, 18))


def test_paddleseg_inherited_false_replaces_the_base_mapping():
    (leaf,) = lint_paths([PADDLE / "deeplabv3p/deeplabv3p_resnet50_os16_cityscapes_512x512_80k.yml"], Settings()).results
    assert leaf.facts.crop == (512, 512) and leaf.facts.crop_loc.path.name.endswith("512x512_80k.yml")
    assert leaf.diagnostics == []  # (5, 10, 15) at 512, stride 16: r* = 5


def test_paddleseg_code_defaults_apply_and_the_fix_writes_under_model(run_cli, tmp_path, monkeypatch):
    (psp,) = lint_paths([PADDLE / "pspnet/pspnet_resnet50_os8_cityscapes_1024x512_80k.yml"], Settings()).results
    # bin_sizes and backbone_indices are not written: PSPNet's defaults (1, 2, 3, 6) and (2, 3) apply
    assert (psp.facts.ppm.scales, psp.facts.ppm.is_default, psp.facts.ppm.stride, psp.facts.ppm.key) == (
        (1, 2, 3, 6), True, 8, "bin_sizes")
    (aa201,) = psp.diagnostics
    assert aa201.code == "AA201" and "use bin_sizes=(1, 2, 3, 4)" in aa201.message
    base = (PADDLE / "_base_").resolve()
    leaf = tmp_path / "psp.yml"
    leaf.write_text((PADDLE / "pspnet/pspnet_resnet50_os8_cityscapes_1024x512_80k.yml").read_text().replace(
        "'../_base_/", f"'{base}/"))
    monkeypatch.chdir(tmp_path)
    run_cli("lint", "--fix", "psp.yml")
    assert "  bin_sizes: [1, 2, 3, 4]\n" in leaf.read_text()
    assert run_cli("lint", "psp.yml").stdout == "All checks passed (1 config).\n"


def test_a_changed_paddleseg_base_lints_what_inherits_it(run_cli, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    report = json.loads(run_cli("lint", "--json", "paddleseg/configs/_base_/cityscapes.yml").stdout)
    assert len(report["configs"]) == 4 and {c["framework"] for c in report["configs"]} == {"paddleseg"}


def test_the_three_yacs_research_layouts_are_read_with_their_codes_values():
    run = lint_paths([FIXTURES / "yacs"], Settings())
    by_name = {r.path.name: r for r in run.results}
    assert set(by_name) == {"voc12.yaml", "ade20k_pspnet50.yaml", "ade20k_psanet50.yaml",
                            "ade20k-resnet50dilated-ppm_deepsup.yaml"}
    assert [(s.path.name, s.recognised) for s in run.skipped] == [("train.yaml", False)]
    # deeplab-pytorch: the factory's rates at stride 8, the crop from IMAGE.SIZE.TRAIN; no fix (rates are code)
    voc = by_name["voc12.yaml"]
    assert (voc.facts.crop, voc.facts.aspp.rates, voc.facts.aspp.stride) == ((321, 321), (6, 12, 18, 24), 8)
    (aa101,) = voc.diagnostics
    assert aa101.code == "AA101" and "r* = 4.5" in aa101.message and aa101.fix is None
    # semseg: PSPNet's fixed bins at stride 8 on the train_h x train_w crop; PSANet has no pyramid
    psp, psa = by_name["ade20k_pspnet50.yaml"], by_name["ade20k_psanet50.yaml"]
    assert (psp.facts.crop, psp.facts.ppm.scales, psp.facts.ppm.stride) == ((473, 473), (1, 2, 3, 6), 8)
    assert [d.code for d in psp.diagnostics] == ["AA201"] and psa.facts.ppm is None and psa.diagnostics == []
    # CSAIL: no crop in training; the PPM is not passed, AA002 says why and asks for one
    csail = by_name["ade20k-resnet50dilated-ppm_deepsup.yaml"]
    assert csail.facts.ppm.stride == 8
    (aa002,) = csail.diagnostics
    assert aa002.code == "AA002" and "does not crop" in aa002.message
    with_crop = lint_paths([FIXTURES / "yacs/semantic-segmentation-pytorch"], Settings(crop=(450, 450))).results[0]
    assert [d.code for d in with_crop.diagnostics] == ["AA201"]


def test_a_user_key_mapping_reads_and_fixes_any_yacs_layout(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.atrous-advisor.keys]\nrates = "MODEL.HEAD.ASPP_RATES"\ncrop = "INPUT.TRAIN_CROP"\nstride = "MODEL.OUTPUT_STRIDE"\n')
    config = tmp_path / "train.yaml"
    config.write_text(CUSTOM.read_text().replace("OUTPUT_STRIDE: 16", "OUTPUT_STRIDE: 8"))
    report = json.loads(run_cli("lint", "--json", "train.yaml").stdout)
    (cfg,) = report["configs"]
    assert (cfg["framework"], cfg["crop"], cfg["output_stride"], cfg["aspp_rates"]) == ("yacs", [512, 512], 8, [6, 12, 18])
    assert [d["code"] for d in cfg["diagnostics"]] == ["AA101"] and cfg["diagnostics"][0]["line"] == 5
    run_cli("lint", "--fix", "train.yaml")
    assert "ASPP_RATES: [1, 10, 20, 30]" in config.read_text()  # the 1×1 branch kept
    assert run_cli("lint", "train.yaml").stdout == "All checks passed (1 config).\n"
    (tmp_path / "pyproject.toml").write_text('[tool.atrous-advisor.keys]\ncrop = "INPUT.TRAIN_CROP"\n')
    bad = run_cli("lint", "train.yaml")
    assert bad.exit_code == 2 and "names no `rates` or `scales` key" in bad.stderr


NEW = FIXTURES / "mmseg_new/configs"
NEW_512 = NEW / "deeplabv3plus/deeplabv3plus_r50_d8_4xb2_40k_cityscapes_512x1024.py"
NEW_769 = NEW / "deeplabv3plus/deeplabv3plus_r50_d8_4xb2_40k_cityscapes_769x769.py"


def test_new_style_configs_are_read_through_read_base_and_class_types():
    run = lint_paths([NEW_512], Settings())
    by_name = {r.path.name: r for r in run.results}
    assert set(by_name) == {NEW_512.name, NEW_769.name}  # the 769 config imports the 512 one: linted too
    f512, f769 = by_name[NEW_512.name].facts, by_name[NEW_769.name].facts
    assert by_name[NEW_512.name].framework == "mmseg_new"
    # type=DepthwiseSeparableASPPHead (an imported class) is the head; the crop comes from the base's pipeline
    assert (f512.aspp.head, f512.crop, f512.aspp.stride, f512.aspp.rates) == (
        "DepthwiseSeparableASPPHead", (512, 1024), 8, (12, 24, 36))
    assert f512.aspp.loc.path.name == "deeplabv3plus_r50_d8.py"
    # model.update(decode_head=dict(dilations=...)) merges; train_dataloader.update(...) replaces the pipeline
    assert (f769.crop, f769.aspp.rates) == ((769, 769), (15, 30, 45)) and by_name[NEW_769.name].diagnostics == []


def test_a_new_style_fix_updates_the_model_instead_of_rebinding_it(run_cli, tmp_path, monkeypatch):
    leaf = tmp_path / "configs/deeplabv3plus/leaf_512x512.py"
    leaf.parent.mkdir(parents=True)
    base = tmp_path / "configs/_base_"
    import shutil

    shutil.copytree(NEW / "_base_", base)
    leaf.write_text(NEW_512.read_text().replace("(512, 1024)", "(512, 512)") + "train_dataloader.update(dataset=dict(pipeline=[dict(type=RandomCrop, crop_size=(512, 512))]))\n")
    monkeypatch.chdir(tmp_path)
    result = run_cli("lint", "--fix", "configs/deeplabv3plus/leaf_512x512.py")
    text = leaf.read_text()
    assert text.endswith("model.update(decode_head=dict(dilations=(1, 10, 20, 30)))\n"), text
    assert "All checks passed" in result.stdout


def test_an_unknown_read_base_import_is_an_error_naming_the_line(tmp_path):
    leaf = tmp_path / "leaf.py"
    leaf.write_text("from mmengine.config import read_base\n\nwith read_base():\n    from .missing import *\n")
    run = lint_paths([leaf], Settings())
    (error,) = run.errors
    assert "leaf.py:4: read_base() imports 'missing.py', not found" in error.message


def test_paddleseg_pooling_heads_on_stdc_and_resnet(tmp_path):
    base = (PADDLE / "_base_/cityscapes.yml").resolve()
    liteseg = tmp_path / "pp_liteseg_stdc2.yml"
    liteseg.write_text(f"_base_: '{base}'\nmodel:\n  type: PPLiteSeg\n  backbone:\n    type: STDC2\n  num_classes: 19\n")
    ann = tmp_path / "ann_r50.yml"
    ann.write_text(f"_base_: '{base}'\nmodel:\n  type: ANN\n  backbone:\n    type: ResNet50_vd\n    output_stride: 8\n"
                   "  backbone_indices: [2, 3]\n  psp_size: [1, 3, 6, 8]\n")
    by_name = {r.path.name: r.facts for r in lint_paths([liteseg, ann], Settings()).results}
    lite, annf = by_name["pp_liteseg_stdc2.yml"].ppm, by_name["ann_r50.yml"].ppm
    # STDC's last feature is at stride 32; PP-LiteSeg's default bins (1, 2, 4)
    assert (lite.scales, lite.stride, lite.key, lite.is_default) == ((1, 2, 4), 32, "cm_bin_sizes", True)
    assert (annf.scales, annf.stride, annf.key) == ((1, 3, 6, 8), 8, "psp_size")


def test_a_config_without_a_dataloader_asks_for_the_crop_and_takes_it_from_the_flag(run_cli, tmp_path, monkeypatch):
    """The issue's case: backbone and ASPP head, no train_dataloader: AA002 names the crop; --crop 512 checks it."""
    monkeypatch.chdir(tmp_path)
    model = (FIXTURES / "mmseg1x/_base_/models/deeplabv3_r50-d8.py").resolve()
    (tmp_path / "cfg.py").write_text(f"_base_ = [{str(model)!r}]\n")
    plain_run = run_cli("lint", "cfg.py")
    assert plain_run.exit_code == 1 and "All checks passed" not in plain_run.stdout
    assert "AA002 ASPPHead rates (12, 24, 36) not checked: the training crop is unknown (no training dataset" in plain_run.stdout
    flagged = json.loads(run_cli("lint", "--json", "--crop", "512", "cfg.py").stdout)["configs"][0]
    assert [d["code"] for d in flagged["diagnostics"]] == ["AA101"] and flagged["supplied"] == {"crop": "--crop"}


def test_a_changed_new_style_base_lints_configs_that_import_it_through_another_config(tmp_path):
    import shutil

    shutil.copytree(NEW, tmp_path / "configs")
    child = tmp_path / "configs/deeplabv3plus/child_r101.py"  # imports a leaf, never names a _base_ file
    child.write_text("from mmengine.config import read_base\n\nwith read_base():\n"
                     "    from .deeplabv3plus_r50_d8_4xb2_40k_cityscapes_512x1024 import *\n\n"
                     "model.update(backbone=dict(depth=101))\n")
    run = lint_paths([tmp_path / "configs/_base_/models/deeplabv3plus_r50_d8.py"], Settings())
    assert {r.path.name for r in run.results} == {NEW_512.name, NEW_769.name, "child_r101.py"}


def test_a_script_importing_framework_classes_is_a_module_not_a_new_style_config(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("from mmseg.models import ASPPHead\n\ncfg = dict(type=ASPPHead, dilations=(1, 6))\n\n\n"
                      "def main():\n    pass\n")
    found = recognise(script)
    assert isinstance(found, Skipped) and found.what == "an ordinary Python module"
    assert recognise(NEW / "_base_/models/deeplabv3plus_r50_d8.py").name == "mmseg_new"  # a base without read_base


def test_a_named_base_that_nothing_inherits_is_said_not_passed(run_cli, tmp_path, monkeypatch):
    base = tmp_path / "configs/_base_/models/deeplabv3_r50-d8.py"
    base.parent.mkdir(parents=True)
    base.write_text((FIXTURES / "mmseg1x/_base_/models/deeplabv3_r50-d8.py").read_text())
    monkeypatch.chdir(tmp_path)
    result = run_cli("lint", "configs/_base_/models/deeplabv3_r50-d8.py")
    assert "All checks passed" not in result.stdout and result.stdout.endswith("1 file skipped.\n")
    assert "no config under the searched folders inherits" in result.stderr


def test_an_unreadable_yaml_in_a_walked_folder_is_an_error_with_its_line(tmp_path):
    (tmp_path / "ok.yaml").write_text("MODEL:\n  META_ARCHITECTURE: SemanticSegmentor\n")
    (tmp_path / "bad.yaml").write_text("MODEL:\n  SEM_SEG_HEAD:\n    ASPP_DILATIONS: [6, 12, 18\n")
    run = lint_paths([tmp_path], Settings())
    (error,) = run.errors
    assert error.path.name == "bad.yaml" and "unreadable YAML" in error.message and "bad.yaml:" in error.message
    assert [r.path.name for r in run.results] == ["ok.yaml"]


def test_both_panoptic_heads_are_in_the_json(run_cli, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    report = json.loads(run_cli("lint", "--json", str(PANOPTIC_LEAF.relative_to(FIXTURES))).stdout)
    (config,) = report["configs"]
    assert [(h["head"], h["rates"], h["output_stride"]) for h in config["aspp_heads"]] == [
        ("PanopticDeepLabSemSegHead", [6, 12, 18], 16), ("PanopticDeepLabInsEmbedHead", [6, 12, 18], 16)]
