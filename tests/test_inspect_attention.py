"""`inspect` on attention-era models built from small configs (random weights, no download): strides as the
architectures document them, global context where there is attention, heads at the right map, and no advice
where the geometry is unknown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from atrous_advisor.graph.capture import capture  # noqa: E402
from atrous_advisor.graph.engine import propagate  # noqa: E402
from atrous_advisor.graph.inspection import inspect_model  # noqa: E402

SMALL = str(Path(__file__).parents[1] / "examples" / "transformers_small.py")
CROP = (256, 256)


@pytest.fixture(scope="module")
def reports():
    torch.set_num_threads(1)
    cache: dict = {}

    def get(name: str, crop=CROP, kwargs=None):
        key = (name, crop)
        if key not in cache:
            spec = name if ":" in name and not name.startswith(":") else f"{SMALL}:{name}"
            cache[key] = inspect_model(spec, crop, kwargs)
        return cache[key]

    return get


# (model, documented coarsest stride, stride of the output map)
STRIDES = [
    ("segformer", 32, 4),  # MiT stages at 4, 8, 16, 32; the all-MLP decoder predicts at 1/4
    ("upernet_swin", 32, 1),  # Swin stages at 4–32; UperNet's logits are resized to the input
    ("upernet_convnext", 32, 1),
    ("beit", 32, 4),  # patch 16; the FPN makes 4, 8, 16, 32 (max pool); the UperHead predicts at 1/4
    ("dpt", 32, 1),  # reassemble at 4, 8, 16, 32; fusion back to 2, then ×2 in the head
    ("mobilevit", 32, 32),  # MobileNet-style stages to 32, DeepLabV3 head at 32 (not resized by HF)
    ("mobilevitv2", 32, 32),
]


@pytest.mark.parametrize("name,stride,out_stride", STRIDES)
def test_documented_strides_and_global_context(reports, name, stride, out_stride):
    r = reports(name)
    assert r.unknown is None and not r.unsupported_ops, (r.unknown, r.unsupported_reasons)
    assert r.output == "logits"
    assert r.output_stride == (stride, stride)
    assert r.output_feature_map == (CROP[0] // out_stride, CROP[1] // out_stride)
    assert r.global_context  # self-attention (or image pooling) reaches every position
    assert r.receptive_field[0] is not None  # the finite paths (convs, windows, residuals) keep a field


@pytest.mark.parametrize("name", ["upernet_swin", "upernet_convnext", "beit"])
def test_upernet_ppm_sits_on_the_stride_32_map(reports, name):
    r = reports(name)
    (ppm,) = r.ppm
    assert ppm.scales == [1, 2, 3, 6] and ppm.stride == (32, 32) and ppm.feature_map == (8, 8)
    assert not r.unassessed
    # 6 bins of 256 px are 43 px cells: the fix is in the model's own config
    config = {"upernet_swin": "UperNetConfig", "upernet_convnext": "UperNetConfig", "beit": "BeitConfig"}[name]
    assert not ppm.ok and ppm.fix and f"{config}(pool_scales=[" in ppm.fix


@pytest.mark.parametrize("name", ["mobilevit", "mobilevitv2"])
def test_mobilevit_aspp_at_stride_32(reports, name):
    r = reports(name)
    (aspp,) = r.aspp
    assert aspp.rates == [(6, 6), (12, 12), (18, 18)] and aspp.stride == (32, 32) and aspp.feature_map == (8, 8)
    assert aspp.degenerate == [False, True, True]  # 12 and 18 ≥ the 8×8 map
    config = {"mobilevit": "MobileViTConfig", "mobilevitv2": "MobileViTV2Config"}[name]
    assert not aspp.ok and aspp.fix and f"{config}(atrous_rates=[" in aspp.fix


def test_smp_deeplabv3plus_on_mit_b0(reports):
    pytest.importorskip("segmentation_models_pytorch")
    r = reports("segmentation_models_pytorch:DeepLabV3Plus", kwargs={"encoder_name": "mit_b0", "encoder_weights": None, "classes": 3})
    assert r.unknown is None and r.global_context
    (aspp,) = r.aspp
    assert aspp.stride == (16, 16) and aspp.feature_map == (16, 16)
    # the last MiT stage runs dilated (stride 1, dilation 2): the encoder ends at 16, not at the 32 px grid of
    # the spatially reduced keys that attention mixes into one global value
    assert r.output_stride == (16, 16)


def test_mask2former_describes_the_masks_and_says_what_it_cannot_follow(reports):
    r = reports("mask2former", crop=(128, 128))
    assert r.output == "masks_queries_logits"  # the spatial output, not the class logits
    # the multi-scale deformable pixel decoder concatenates the levels' tokens: not followed → unknown,
    # with no number in its place
    assert r.unknown and "pixel_level_module" in r.unknown
    assert r.output_stride is None and r.receptive_field is None and r.global_context is None
    assert not (r.aspp or r.ppm or r.fcn)
    assert r.unsupported_ops


# --- unit level: window attention, token round trips, unknown heads ------------------------------------


class WindowAttention(nn.Module):
    """Swin's step: NHWC, (shifted) window partition, attention in each ws×ws window, reverse, residual."""

    def __init__(self, ws: int, shift: int, fused: bool):
        super().__init__()
        self.ws, self.shift, self.fused = ws, shift, fused
        self.qkv = nn.Linear(4, 12)

    def forward(self, x):
        n, c, h, w = x.shape
        ws = self.ws
        t = x.permute(0, 2, 3, 1)
        if self.shift:
            t = torch.roll(t, (-self.shift, -self.shift), (1, 2))
        win = t.view(n, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        q, k, v = self.qkv(win).chunk(3, -1)
        if self.fused:
            a = F.scaled_dot_product_attention(q, k, v)
        else:
            a = torch.softmax(q @ k.transpose(-2, -1), -1) @ v
        t = a.view(n, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, c)
        if self.shift:
            t = torch.roll(t, (self.shift, self.shift), (1, 2))
        return x + t.permute(0, 3, 1, 2)


@pytest.mark.parametrize("fused", [False, True])
def test_window_attention_field_is_the_window_and_shifted_windows_grow_it(fused):
    model = nn.Sequential(nn.Conv2d(4, 4, 2, stride=2), WindowAttention(4, 0, fused), WindowAttention(4, 2, fused)).to("meta").eval()
    prop = propagate(capture(model, torch.empty(1, 4, 32, 32, device="meta"), "dispatch"))
    out = prop.output_field()
    assert not prop.unsupported and out.layout == (-2, -1)
    # jump 2 after the patch conv (field 2); each 4-feature window adds 3 features = 6 px, per axis
    assert (out.h.jump, out.w.jump) == (2, 2)
    assert (out.h.rf_max, out.w.rf_max) == (2 + 6 + 6, 2 + 6 + 6)
    assert not out.h.global_context  # windows are local


def test_global_attention_matmul_and_fused_agree():
    fields = []
    for fused in (False, True):
        model = WindowAttention(16, 0, fused).to("meta").eval()  # one window = the whole 16×16 map
        prop = propagate(capture(model, torch.empty(1, 4, 16, 16, device="meta"), "dispatch"))
        fields.append(prop.output_field())
    assert fields[0] == fields[1]
    assert fields[0].h.global_context and fields[0].h.rf_max == 1


class AsppAfterFlip(nn.Module):
    """An ASPP whose input comes through an op with no handler: found, listed, never advised on."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=8, padding=1)
        self.branches = nn.ModuleList(nn.Conv2d(8, 8, 3, padding=r, dilation=r) for r in (6, 12, 18))

    def forward(self, x):
        y = torch.flip(self.stem(x), (-1,))
        return torch.cat([b(y) for b in self.branches], 1)


def test_head_after_an_unknown_op_gets_no_advice(tmp_path, run_cli):
    path = tmp_path / "flip.py"
    path.write_text(
        "import torch\nfrom torch import nn\n" + "\n".join(
            line for line in _source(AsppAfterFlip).splitlines()
        ) + "\n\ndef build_model():\n    return AsppAfterFlip()\n"
    )
    report = inspect_model(str(path), (256, 256))
    assert report.unknown and "flip" in report.unknown
    assert report.output_stride is None and report.receptive_field is None
    assert not report.aspp and len(report.unassessed) == 1
    (head,) = report.unassessed
    assert head.kind == "aspp" and head.stride is None and "unknown" in head.reason
    result = run_cli("inspect", str(path), "--crop", "256")
    assert result.exit_code == 0
    assert "fix" not in result.stdout and "no advice" in result.stdout and "unknown" in result.stdout
    data = json.loads(run_cli("inspect", str(path), "--crop", "256", "--json").stdout)
    assert data["output_stride"] is None and data["receptive_field"] is None and data["unknown"]


def _source(cls) -> str:
    import inspect as pyinspect
    import textwrap

    return textwrap.dedent(pyinspect.getsource(cls)).replace("F.", "torch.nn.functional.")


def test_spatially_reduced_keys_do_not_set_the_output_stride():
    """SegFormer's keys and values come from a strided conv (sr_ratio 8 on the stride-8 stage: a 64 px grid),
    but attention mixes them into one global value: the output stride is the encoder's 32, not 64."""
    report = inspect_model(f"{SMALL}:segformer", (256, 256), {"sr_ratios": [8, 8, 2, 1]})
    assert report.unknown is None and report.output_stride == (32, 32) and report.global_context
