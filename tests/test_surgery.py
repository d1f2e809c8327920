"""Head surgery: rates and pooling scales change in place, weights keep their shapes, outputs change."""

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from atrous_advisor.errors import InputError  # noqa: E402
from atrous_advisor.train.surgery import apply_rates, apply_scales  # noqa: E402

MODELS = Path(__file__).parent / "models"


def load_tiny():
    spec = importlib.util.spec_from_file_location("tiny_aspp", MODELS / "tiny_aspp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Site:
    """The fields of graph.heads.HeadSite that surgery reads."""

    kind: str
    name: str
    branch_modules: list = field(default_factory=list)


def test_rates_change_dilation_and_padding_but_not_weights():
    tiny = load_tiny()
    torch.manual_seed(0)
    model = tiny.build_model().eval()
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    x = torch.randn(1, 3, 64, 64)
    before = model(x)["out"]
    edits = apply_rates(model, Site("aspp", "head", tiny.DILATED_BRANCHES), [(1, 1), (2, 2), (3, 3)])
    assert [e.after for e in edits] == [((1, 1), (1, 1)), ((2, 2), (2, 2)), ((3, 3), (3, 3))]
    assert edits[0].before == ((12, 12), (12, 12))
    for name, rate in zip(tiny.DILATED_BRANCHES, (1, 2, 3)):
        conv = model.get_submodule(name)
        assert conv.dilation == (rate, rate) and conv.padding == (rate, rate)
    after = model(x)["out"]
    assert after.shape == before.shape
    assert not torch.allclose(after, before)  # rate 12 on an 8×8 map was a 1×1 conv; rate 1 reads neighbours
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes


def test_rates_match_a_model_built_with_those_rates():
    """Surgery to (2, 4, 6) computes exactly what the model built with rates (2, 4, 6) computes."""
    tiny = load_tiny()
    torch.manual_seed(0)
    edited = tiny.build_model().eval()
    built = tiny.build_model(rates=(2, 4, 6)).eval()
    built.load_state_dict(edited.state_dict())
    apply_rates(edited, Site("aspp", "head", tiny.DILATED_BRANCHES), [2, 4, 6])
    x = torch.randn(2, 3, 64, 48)
    assert torch.allclose(edited(x)["out"], built(x)["out"], atol=1e-6)


def test_anisotropic_rates():
    tiny = load_tiny()
    model = tiny.build_model().eval()
    apply_rates(model, Site("aspp", "head", tiny.DILATED_BRANCHES), [(1, 2), (2, 4), (3, 6)])
    conv = model.get_submodule(tiny.DILATED_BRANCHES[2])
    assert conv.dilation == (3, 6) and conv.padding == (3, 6)
    assert model(torch.randn(1, 3, 64, 96))["out"].shape == (1, 5, 64, 96)


@pytest.mark.parametrize(
    "site, rates, message",
    [
        (Site("aspp", "head", ["head.convs.1.0"]), [1, 2], "1 dilated branches but 2 rates"),
        (Site("aspp", "head", ["head.nothing"]), [1], "no module 'head.nothing'"),
        (Site("aspp", "head", ["head.convs.1.1"]), [1], "is BatchNorm2d, expected Conv2d"),
        (Site("ppm", "psp", ["head.convs.1.0"]), [1], "not ASPP"),
        (Site("aspp", "head", ["head.convs.1.0"]), [0], "at least 1"),
    ],
)
def test_bad_rate_surgery_names_the_problem(site, rates, message):
    model = load_tiny().build_model()
    with pytest.raises(InputError, match=message):
        apply_rates(model, site, rates)


def test_scales_on_smp_pspnet_keep_weights_and_change_output():
    smp = pytest.importorskip("segmentation_models_pytorch")
    torch.manual_seed(0)
    model = smp.PSPNet(encoder_name="resnet18", encoder_weights=None, classes=3).eval()
    pools = [f"decoder.psp.blocks.{i}.pool.0" for i in range(4)]
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    x = torch.randn(1, 3, 128, 128)
    before = model(x)
    edits = apply_scales(model, Site("ppm", "decoder.psp", pools), [1, 2, 2, 2])
    assert [e.before for e in edits] == [(1, 1), (2, 2), (3, 3), (6, 6)]
    assert model.get_submodule(pools[3]).output_size == (2, 2)
    assert not torch.allclose(model(x), before)
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes
    with pytest.raises(InputError, match="4 pooling branches but 2 scales"):
        apply_scales(model, Site("ppm", "decoder.psp", pools), [1, 2])
