"""`inspect` on real third-party models (built on meta, weights=None) and through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from atrous_advisor.geometry import branch_info, suggested_rates  # noqa: E402
from atrous_advisor.graph.analysis import capture_and_propagate  # noqa: E402
from atrous_advisor.graph.heads import find_heads  # noqa: E402
from atrous_advisor.graph.inspection import inspect_model  # noqa: E402
from atrous_advisor.graph.loading import load_model, primary_output  # noqa: E402

EXAMPLES = Path(__file__).parents[1] / "examples"
TV_DEEPLAB = "torchvision.models.segmentation:deeplabv3_resnet50"
TV_KWARGS = {"weights": None, "weights_backbone": None}


@pytest.fixture(scope="module")
def tv_report():
    return inspect_model(TV_DEEPLAB, (512, 512), TV_KWARGS)


@pytest.fixture(scope="module")
def smp_report():
    pytest.importorskip("segmentation_models_pytorch")
    return inspect_model(str(EXAMPLES / "smp_deeplabv3plus.py"), (512, 512))


@pytest.mark.slow
def test_torchvision_deeplabv3_head_at_512(tv_report):
    """Rates 12/24/36 at stride 8: F = 64 at 512; rate 36 reads 61% padding (docs/formulas.md §5)."""
    (head,) = tv_report.aspp
    assert head.name == "classifier.0"
    assert head.rates == [(12, 12), (24, 24), (36, 36)]
    assert head.stride == (8, 8) and head.feature_map == (64, 64)
    assert head.image_pool
    assert round(head.padding_fraction[2], 2) == 0.61
    assert head.padding_fraction[2] == branch_info(36, 64).padding_fraction
    assert head.suggested_rates == suggested_rates(512, 8)
    assert tv_report.output_stride == (8, 8)
    assert tv_report.capture == "dispatch" and tv_report.device == "meta"
    assert tv_report.global_context and not tv_report.gridding and not tv_report.misaligned
    # the output is upsampled back to the crop: jump 1, and the cost is split per top-level module
    assert tv_report.output_feature_map == (512, 512) and tv_report.output_jump == (1, 1)
    assert {m.name for m in tv_report.cost_by_module} == {"backbone", "classifier"}
    assert sum(m.params for m in tv_report.cost_by_module) == tv_report.params


@pytest.mark.slow
def test_torchvision_deeplabv3_measures_97_at_769():
    """769 px: 385 after the stem conv, 193 after the max pool, 97 after layer2 — F = ceil(769/8)."""
    loaded = load_model(TV_DEEPLAB, TV_KWARGS)
    (head,) = find_heads(loaded.model, (769, 769))
    assert head.kind == "aspp" and head.feature_map == (97, 97) and head.stride == (8, 8)
    # the names are those of named_modules(): other code does surgery on them
    modules = dict(loaded.model.named_modules())
    assert [modules[m].dilation for m in head.branch_modules] == [(12, 12), (24, 24), (36, 36)]


@pytest.mark.slow
def test_smp_deeplabv3plus_defaults_are_stride8_rates_at_stride16(smp_report):
    (head,) = smp_report.aspp
    assert head.rates == [(12, 12), (24, 24), (36, 36)] and head.stride == (16, 16)
    assert head.feature_map == (32, 32)
    assert head.degenerate == [False, False, True]  # 36 ≥ 32
    assert not head.ok
    assert head.suggested_rates == [(5, 5), (10, 10), (15, 15)]
    assert head.fix and "decoder_atrous_rates=(5, 10, 15)" in head.fix
    assert smp_report.output_stride == (16, 16)
    # smp's decoder upsamples with align_corners=True: ×4 from 32 to 128 does not land on the stride-4 grid
    assert smp_report.misaligned
    assert any("decoder.aspp.0" in w for w in smp_report.warnings)


@pytest.mark.slow
def test_smp_pspnet_pyramid():
    pytest.importorskip("segmentation_models_pytorch")
    report = inspect_model(str(EXAMPLES / "smp_pspnet.py"), (512, 512))
    (ppm,) = report.ppm
    assert ppm.scales == [1, 2, 3, 6] and ppm.feature_map == (64, 64) and ppm.stride == (8, 8)
    assert ppm.cell_pixels[-1] == pytest.approx((512 / 6, 512 / 6))
    assert ppm.suggested_scales == [1, 2, 3, 4] and not ppm.ok
    assert not report.aspp


@pytest.mark.slow
def test_resnet50_trunk_field_427_stride_32():
    from torchvision.models import resnet50

    with torch.device("meta"):
        full = resnet50(weights=None).eval()
    trunk = torch.nn.Sequential(*list(full.children())[:-2]).eval()
    _, prop = capture_and_propagate(trunk, (224, 224))
    out = prop.output_field()
    assert (out.h.rf_max, out.w.rf_max) == (427, 427)
    assert (out.h.jump, out.w.jump) == (32, 32) and (out.h.size, out.w.size) == (7, 7)
    assert out.h.rf_min < 427  # the 1×1 shortcuts keep smaller fields alive
    # the classifier pools globally: no finite field at its output, global context flagged
    _, prop = capture_and_propagate(full, (224, 224))
    out = prop.output_field()
    assert out.h.global_context and out.h.rf_max is None


def test_tiny_example_gridding_border_and_field_map(tmp_path):
    report = inspect_model(str(EXAMPLES / "tiny_aspp.py"), (128, 128), field_map=tmp_path / "f.png")
    (head,) = report.aspp
    assert head.feature_map == (16, 16) and head.degenerate == [False, True, True]
    # stem 15 px + star 2·36·8 + final bilinear 8 px
    assert report.receptive_field == (15 + 2 * 36 * 8 + 8,) * 2
    assert report.gridding  # the branches' blobs are 96 px apart and 15 px wide
    assert report.border_layer == "aspp.project.0"
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_field_map_shows_the_star():
    """Path counts of examples/tiny_aspp.py: blobs on the axes at ±rate·stride, nothing in between."""
    from atrous_advisor.graph.fieldmap import path_counts

    model = load_model(str(EXAMPLES / "tiny_aspp.py"), {"rates": [4, 8, 12]}).model
    counts, _, _ = path_counts(model, (256, 256))
    c = 128
    for arm in (32, 64, 96):  # rate·stride for rates 4, 8, 12
        assert counts[c, c + arm] > 0 and counts[c + arm, c] > 0 and counts[c + arm, c + arm] > 0
    assert counts[c, c + 16] == 0 and counts[c + 48, c + 16] == 0  # between the star's taps
    # every branch's centre tap lands on the centre blob: the peak is there (within the stem's field)
    import numpy as np

    peak = np.unravel_index(int(counts.argmax()), counts.shape)
    assert abs(peak[0] - c) <= 8 and abs(peak[1] - c) <= 8


def test_fvcore_counter_agrees_with_fast_on_convs():
    fast = inspect_model(str(EXAMPLES / "tiny_aspp.py"), (64, 64), layers=False)
    slow = inspect_model(str(EXAMPLES / "tiny_aspp.py"), (64, 64), counter="fvcore", layers=False)
    assert slow.counter == "fvcore" and slow.params == fast.params
    # fvcore also counts batch norm and interpolation: a few percent more than convs alone
    assert fast.macs <= slow.macs <= 1.1 * fast.macs


def test_primary_output():
    t = torch.zeros(1)
    assert primary_output({"aux": torch.ones(1), "out": t}) is t
    assert primary_output((t, torch.ones(1))) is t
    assert primary_output({"logits": t}) is t


# --- CLI ------------------------------------------------------------------------------------------------


def test_cli_json_contract(run_cli):
    result = run_cli("inspect", str(EXAMPLES / "tiny_aspp.py"), "--crop", "128x192", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("model", "crop", "capture", "output_stride", "receptive_field", "global_context", "gridding",
                "params", "macs", "aspp", "ppm", "layers", "border_layer", "warnings"):
        assert key in data
    assert data["crop"] == [128, 192] and data["output_stride"] == [8, 8]
    head = data["aspp"][0]
    for key in ("name", "rates", "feature_map", "image_pool", "suggested_rates", "padding_fraction", "degenerate"):
        assert key in head
    assert head["feature_map"] == [16, 24]
    assert {"name", "op", "feature_map", "rf_max", "rf_min", "jump"} <= set(data["layers"][0])


def test_cli_human_output_and_layers(run_cli):
    result = run_cli("inspect", f"{EXAMPLES / 'tiny_aspp.py'}:build_model", "--crop", "128",
                     "--kwargs", '{"rates": [2, 4, 6]}', "--layers")
    assert result.exit_code == 0, result.output
    assert "ASPP aspp + image pooling" in result.stdout
    assert "per-layer fields" in result.stdout and "stem.0.0" in result.stdout
    assert "captured with dispatch" in result.stdout
    # the header is one line whatever the length of the model's path (a CI checkout's path may be long)
    header = result.stdout.splitlines()[0]
    assert header.startswith(str(EXAMPLES / "tiny_aspp.py")) and header.endswith("captured with dispatch)")


def test_the_header_is_not_wrapped_for_a_long_model_path(run_cli, tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4)
    deep.mkdir()
    (deep / "tiny_aspp.py").write_text((EXAMPLES / "tiny_aspp.py").read_text())
    result = run_cli("inspect", str(deep / "tiny_aspp.py"), "--crop", "64")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].endswith("captured with dispatch)")


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_cli_bad_inputs_exit_2_with_one_line(run_cli, tmp_path):
    line = _one_line_error(run_cli("inspect", str(tmp_path / "missing.py"), "--crop", "64"))
    assert "no such file" in line

    broken = tmp_path / "broken.py"
    broken.write_text("import torch\n\nx = undefined_name + 1\n")
    line = _one_line_error(run_cli("inspect", str(broken), "--crop", "64"))
    assert "NameError" in line and "broken.py:3" in line

    empty = tmp_path / "empty.py"
    empty.write_text("VALUE = 1\n")
    assert "no model found" in _one_line_error(run_cli("inspect", str(empty), "--crop", "64"))

    line = _one_line_error(run_cli("inspect", str(EXAMPLES / "tiny_aspp.py"), "--crop", "64", "--kwargs", "{rates: 1}"))
    assert "--kwargs" in line and "invalid JSON" in line

    assert "no module named" in _one_line_error(run_cli("inspect", "no_such_pkg.models:net", "--crop", "64"))
    assert "crop" in _one_line_error(run_cli("inspect", str(EXAMPLES / "tiny_aspp.py"), "--crop", "0x64"))


@pytest.mark.slow
def test_cli_forward_failure_names_the_divisibility(run_cli):
    pytest.importorskip("segmentation_models_pytorch")
    line = _one_line_error(run_cli("inspect", str(EXAMPLES / "smp_deeplabv3plus.py"), "--crop", "500"))
    assert "forward failed at crop 500x500" in line and "divisible by 16" in line and "--crop 512x512" in line


def test_inspect_command_does_not_import_torch_at_module_level():
    import ast

    source = (Path(__file__).parents[1] / "atrous_advisor" / "commands" / "inspect.py").read_text()
    top = [n for n in ast.parse(source).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in top for a in n.names} | {getattr(n, "module", None) for n in top}
    assert not any(str(n).startswith(("torch", "atrous_advisor.graph")) for n in names if n)




def test_model_that_does_not_export_is_captured_by_dispatch(tmp_path):
    """An output object pytree does not know makes torch.export fail; dispatch tracing still works."""
    source = (
        "import torch\n"
        "class Prediction:\n"
        "    def __init__(self, out):\n"
        "        self.out = out\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(3, 2, 3, padding=2, dilation=2)\n"
        "    def forward(self, x):\n"
        "        return Prediction(self.conv(x))\n"
        "model = Net()\n"
    )
    path = tmp_path / "odd.py"
    path.write_text(source)
    report = inspect_model(str(path), (32, 32), prefer="export")
    assert report.capture == "dispatch" and any("torch.export failed" in n for n in report.notes)
    assert report.receptive_field == (5, 5) and report.gridding


def test_cli_field_map_is_written_where_the_report_says(run_cli, tmp_path):
    """A name without a suffix is written as PNG under that exact name (not NAME.png); a folder is bad input."""
    target = tmp_path / "fieldmap"
    result = run_cli("inspect", str(EXAMPLES / "tiny_aspp.py"), "--crop", "64", "--json", "--field-map", str(target))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["field_map"] == str(target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (tmp_path / "fieldmap.png").exists()

    line = _one_line_error(run_cli("inspect", str(EXAMPLES / "tiny_aspp.py"), "--crop", "64", "--field-map", str(tmp_path)))
    assert "--field-map" in line and "directory" in line
    assert not tmp_path.with_suffix(".png").exists()


def test_cli_load_errors_name_the_user_file_not_internals(run_cli, tmp_path):
    """No uuid-suffixed module names, no frame of this package, no importlib frames in the one line."""
    line = _one_line_error(run_cli("inspect", f"{EXAMPLES / 'tiny_aspp.py'}:missing", "--crop", "64"))
    assert "tiny_aspp.py has no attribute 'missing'" in line

    line = _one_line_error(run_cli("inspect", str(EXAMPLES / "tiny_aspp.py"), "--crop", "64", "--kwargs", '{"nope": 1}'))
    assert "unexpected keyword argument 'nope'" in line and "loading.py" not in line

    bad = tmp_path / "bad_syntax.py"
    bad.write_text("def build_model(:\n    pass\n")
    line = _one_line_error(run_cli("inspect", str(bad), "--crop", "64"))
    assert "SyntaxError" in line and "bad_syntax.py, line 1" in line and "frozen" not in line


def test_non_square_fix_is_a_conv2d_argument():
    """Per-axis rates are given as Conv2d takes them, dilation=padding=(h, w), not as the display form h×w."""
    report = inspect_model(str(EXAMPLES / "tiny_aspp.py"), (128, 64), {"rates": [2, 4, 6]}, layers=False)
    (head,) = report.aspp
    assert head.suggested_rates == [(2, 1), (4, 2), (6, 3)]
    assert "aspp.branches.1.0: dilation=padding=(2, 1)" in head.fix and "padding=2×1" not in head.fix


def test_single_int_alternative_never_suggests_the_current_rates():
    """At 128×416 r* is (2, 8): one int per branch takes their geometric mean, 4, so rates (4, 8, 12) are
    already the best single-int choice and must not be offered as a change."""
    report = inspect_model(str(EXAMPLES / "tiny_aspp.py"), (128, 416), {"rates": [4, 8, 12]}, layers=False)
    (head,) = report.aspp
    assert not head.ok and head.suggested_rates == [(2, 8), (4, 16), (6, 24)]
    assert "current rates (4, 8, 12) are already the closest" in head.fix
    assert "dilation=padding=4," not in head.fix


class _AvgPoolImagePoolASPP(torch.nn.Module):
    """Two dilated branches and an image-pooling branch written as ``F.avg_pool2d(x, x.shape[2:])``."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=8, padding=1)
        self.a = torch.nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.b = torch.nn.Conv2d(8, 8, 3, padding=4, dilation=4)
        self.pool_proj = torch.nn.Conv2d(8, 8, 1)

    def forward(self, x):
        x = self.stem(x)
        pooled = torch.nn.functional.avg_pool2d(x, x.shape[2:])
        pooled = torch.nn.functional.interpolate(self.pool_proj(pooled), size=x.shape[2:], mode="nearest")
        return torch.cat([self.a(x), self.b(x), pooled], 1)


def test_image_pooling_written_as_a_whole_map_avg_pool_is_found():
    with torch.device("meta"):
        model = _AvgPoolImagePoolASPP().eval()
    (site,) = find_heads(model, (64, 64))
    assert site.kind == "aspp" and site.rates == [(2, 2), (4, 4)] and site.image_pool
    _, prop = capture_and_propagate(model, (64, 64))
    assert prop.output_field().h.global_context


def test_rate_one_branch_counts_in_an_aspp_but_undilated_parallel_convs_are_no_aspp(tmp_path):
    """tiny_aspp built with rates (1, 2, 3): three 3×3 branches, the first undilated. Parallel undilated
    3×3 convs merged by cat (an inception-style block) must not be reported as an ASPP."""
    import torch
    from torch import nn

    from atrous_advisor.graph.heads import find_heads
    from atrous_advisor.graph.loading import load_model

    model = load_model(f"{EXAMPLES / 'tiny_aspp.py'}", {"rates": [1, 2, 3]}).model
    (aspp,) = [h for h in find_heads(model, (64, 64)) if h.kind == "aspp"]
    assert aspp.rates == [(1, 1), (2, 2), (3, 3)]
    assert aspp.branch_modules == ["aspp.branches.1.0", "aspp.branches.2.0", "aspp.branches.3.0"]

    class Inception(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 5, padding=2)

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], 1)

    with torch.device("meta"):
        block = Inception()
    assert [h for h in find_heads(block, (32, 32)) if h.kind == "aspp"] == []
