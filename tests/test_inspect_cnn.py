"""`inspect` on CNNs: models named as people name them (offline), the output path decides the stride, no
dilated-FCN head inside an encoder, and the misaligned-paths warning names its real cause."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torch import nn  # noqa: E402

from atrous_advisor.errors import ModelLoadError  # noqa: E402
from atrous_advisor.graph.inspection import inspect_model  # noqa: E402
from atrous_advisor.graph.loading import load_model  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_torchvision_builder_by_name_needs_no_kwargs():
    """deeplabv3_resnet50's weights_backbone defaults to ImageNet weights: it is set to None, and said."""
    loaded = load_model("torchvision.models.segmentation:deeplabv3_resnet50")
    assert loaded.device == "meta"
    (note,) = [n for n in loaded.notes if "without pretrained weights" in n]
    assert "weights_backbone=None" in note and "weights=None" not in note  # weights already defaults to None


def test_given_weight_kwargs_are_left_alone():
    loaded = load_model("torchvision.models.segmentation:deeplabv3_resnet50", {"weights_backbone": None})
    assert not any("without pretrained weights" in n for n in loaded.notes)


def test_a_type_error_inside_the_builder_is_the_builders(tmp_path):
    path = tmp_path / "net.py"
    path.write_text("def build_model(width=8):\n    return len(width)\n")
    with pytest.raises(ModelLoadError) as err:
        load_model(str(path))
    assert "building the model failed: TypeError" in str(err.value) and "net.py:2" in str(err.value)
    with pytest.raises(ModelLoadError) as err:
        load_model(str(path), {"depth": 3})
    assert "calling build_model(**kwargs) failed" in str(err.value) and "depth" in str(err.value)


def test_network_failure_is_one_line_naming_the_weights_argument(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(
        "import urllib.error\n"
        "def build_model(checkpoint='http://example.invalid/w.pth'):\n"
        "    raise urllib.error.URLError('no network')\n"
    )
    with pytest.raises(ModelLoadError) as err:
        load_model(str(path))
    message = str(err.value)
    assert "needs the network" in message and "weights argument" in message and "\n" not in message


@pytest.mark.slow
def test_smp_pspnet_mobilenet_stride_is_the_output_paths():
    """smp's PSPNet keeps encoder_depth=3: the output path and its PPM are at stride 8, though the unused
    deeper encoder blocks run at 16."""
    pytest.importorskip("segmentation_models_pytorch")
    r = inspect_model("segmentation_models_pytorch:PSPNet", (512, 512), {"encoder_name": "mobilenet_v2"})
    assert r.output_stride == (8, 8)
    (ppm,) = r.ppm
    assert ppm.stride == (8, 8) and ppm.feature_map == (64, 64)


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["mobilenet_v2", "efficientnet-b0"])
def test_no_dilated_fcn_head_inside_an_encoder(encoder):
    """At output stride 8 the last MobileNetV2/EfficientNet block is dilated and has no residual: it is
    still the encoder (the ASPP's convs come after it), not a head."""
    pytest.importorskip("segmentation_models_pytorch")
    r = inspect_model("segmentation_models_pytorch:DeepLabV3", (512, 512), {"encoder_name": encoder})
    assert not r.fcn and len(r.aspp) == 1 and r.aspp[0].stride == (8, 8)


class LargeFov(nn.Module):
    """DeepLab-v1's LargeFOV head: one rate-12 3×3 conv on a stride-8 map, then 1×1 classifiers."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1))
        self.fc6 = nn.Conv2d(8, 8, 3, padding=12, dilation=12)
        self.fc7 = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        return self.fc7(torch.relu(self.fc6(self.backbone(x))))


def test_a_real_dilated_fcn_head_is_still_found(tmp_path):
    path = tmp_path / "largefov.py"
    import inspect as pyinspect

    path.write_text("import torch\nfrom torch import nn\n\n" + pyinspect.getsource(LargeFov) + "\nmodel = LargeFov()\n")
    r = inspect_model(str(path), (256, 256))
    (head,) = r.fcn
    assert head.name == "fc6" and head.rate == (12, 12) and head.stride == (8, 8)


def test_misaligned_warning_names_the_resize(tmp_path):
    """Two paths: stride 4, and stride 8 resized ×2 with align_corners=False (half-pixel centres)."""
    path = tmp_path / "fpn.py"
    path.write_text(
        "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.c4 = nn.Conv2d(3, 4, 3, 4, 1)\n"
        "        self.c8 = nn.Conv2d(4, 4, 3, 2, 1)\n"
        "    def forward(self, x):\n"
        "        a = self.c4(x)\n"
        "        return a + F.interpolate(self.c8(a), scale_factor=2, mode='bilinear', align_corners=False)\n"
        "model = Net()\n"
    )
    r = inspect_model(str(path), (64, 64))
    assert r.misaligned
    (w,) = [w for w in r.warnings if w.startswith("misaligned")]
    assert "align_corners=False" in w and "align_corners=True" not in w


def test_head_whose_map_times_stride_is_not_the_crop_gets_no_advice(tmp_path):
    """A model that analyses one 128×128 tile of its input: its ASPP sees a 16×16 map at stride 8 — 128 px of
    a 512 crop. Rates computed for the crop would be for another image: the head is listed, not advised.
    (A resize is not such a case: the jump is in input pixels, so map × stride gives the crop back.)"""
    path = tmp_path / "tile.py"
    path.write_text(
        "import torch\nfrom torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.stem = nn.Conv2d(3, 8, 3, 8, 1)\n"
        "        self.aspp = nn.ModuleList(nn.Conv2d(8, 8, 3, padding=r, dilation=r) for r in (2, 4, 6))\n"
        "    def forward(self, x):\n"
        "        y = self.stem(x[:, :, :128, :128])\n"
        "        return torch.cat([b(y) for b in self.aspp], 1)\n"
        "model = Net()\n"
    )
    r = inspect_model(str(path), (512, 512))
    assert not r.aspp and r.unknown is None
    (head,) = r.unassessed
    assert head.kind == "aspp" and head.stride == (8, 8) and "does not give back the 512×512 crop" in head.reason
