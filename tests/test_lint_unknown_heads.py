"""A head that carries rates or pooling scales but whose type the rules do not know is reported, never passed."""

from __future__ import annotations

import json

import pytest

MMSEG = """crop_size = (512, 512)
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='RandomCrop', crop_size=crop_size)]
train_dataloader = dict(batch_size=2, dataset=dict(type='ADE20KDataset', pipeline=train_pipeline))
model = dict(type='EncoderDecoder',
    backbone=dict(type='ResNetV1c', depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)),
    decode_head=dict(type='{head}', in_index=3, {key}={value}, num_classes=150))
"""

PADDLESEG = """batch_size: 2
iters: 80000
train_dataset:
  type: ADE20K
  dataset_root: data/ADEChallengeData2016/
  transforms:
    - type: RandomPaddingCrop
      crop_size: [512, 512]
  mode: train
model:
  type: {head}
  backbone:
    type: ResNet50_vd
    output_stride: 8
  {key}: {value}
  num_classes: 150
"""

DETECTRON2 = """MODEL:
  META_ARCHITECTURE: "SemanticSegmentor"
  BACKBONE:
    NAME: "build_resnet_deeplab_backbone"
  RESNETS:
    DEPTH: 50
    RES5_DILATION: 2
    OUT_FEATURES: ["res2", "res5"]
  SEM_SEG_HEAD:
    NAME: "{head}"
    IN_FEATURES: ["res2", "res5"]
    ASPP_DILATIONS: [6, 12, 18]
    COMMON_STRIDE: 4
INPUT:
  CROP:
    ENABLED: True
    TYPE: "absolute"
    SIZE: (512, 1024)
"""


@pytest.mark.parametrize("name, text, line", [
    ("m.py", MMSEG.format(head="MyASPPHead", key="dilations", value="(1, 12, 24, 36)"), 6),
    ("m.py", MMSEG.format(head="MyPyramidHead", key="pool_scales", value="(1, 2, 3, 6)"), 6),
    ("p.yml", PADDLESEG.format(head="UPerNetViTAdapter", key="pool_scales", value="[1, 2, 3, 6]"), 15),
    ("d.yaml", DETECTRON2.format(head="MyCustomASPPHead"), 12),
])
def test_an_unknown_head_with_rates_or_scales_is_aa002_and_the_config_partly_checked(run_cli, tmp_path, name, text, line):
    path = tmp_path / name
    path.write_text(text)
    result = run_cli("lint", str(path))
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "All checks passed" not in result.stdout
    assert "AA002" in result.stdout and "is not one atrous-advisor knows" in result.stdout
    assert "partly checked (head type unknown: 1)" in result.stdout
    report = json.loads(run_cli("lint", "--format", "json", str(path)).stdout)
    (config,) = report["configs"]
    assert [(d["code"], d["line"]) for d in config["diagnostics"]] == [("AA002", line)]


@pytest.mark.parametrize("name, text", [
    ("m.py", MMSEG.format(head="OCRHead", key="channels", value="512")),
    ("p.yml", PADDLESEG.format(head="BiSeNetV2", key="align_corners", value="False")),
    ("d.yaml", DETECTRON2.format(head="SemSegFPNHead").replace("    ASPP_DILATIONS: [6, 12, 18]\n", "")),
])
def test_an_unknown_head_without_rates_or_scales_still_passes(run_cli, tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    result = run_cli("lint", str(path))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "All checks passed" in result.stdout
