"""Head surgery on heads found by ``find_heads``: rates and pooling scales change in place, weights keep their
shapes, and the edited model computes what a model built with the new configuration computes."""

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from atrous_advisor.errors import InputError  # noqa: E402
from atrous_advisor.graph.heads import find_heads  # noqa: E402
from atrous_advisor.graph.surgery import apply_rates, apply_scales  # noqa: E402

EXAMPLES = Path(__file__).parents[1] / "examples"


def load_tiny():
    """examples/tiny_aspp.py: stride-8 stem, ASPP at (12, 24, 36) with image pooling."""
    spec = importlib.util.spec_from_file_location("tiny_aspp_example", EXAMPLES / "tiny_aspp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_head():
    (head,) = find_heads(load_tiny().build_model(), (64, 64))
    assert head.kind == "aspp" and head.rates == [(12, 12), (24, 24), (36, 36)]
    return head




def test_rates_change_dilation_and_padding_but_not_weights(tiny_head):
    tiny = load_tiny()
    torch.manual_seed(0)
    model = tiny.build_model().eval()
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    x = torch.randn(1, 3, 64, 64)
    before = model(x)
    edits = apply_rates(model, tiny_head, [(1, 1), (2, 2), (3, 3)])
    assert [e.after for e in edits] == [((1, 1), (1, 1)), ((2, 2), (2, 2)), ((3, 3), (3, 3))]
    assert edits[0].before == ((12, 12), (12, 12))
    for name, rate in zip(tiny_head.branch_modules, (1, 2, 3)):
        conv = model.get_submodule(name)
        assert conv.dilation == (rate, rate) and conv.padding == (rate, rate)
    after = model(x)
    assert after.shape == before.shape
    assert not torch.allclose(after, before)  # rate 12 on an 8×8 map was a 1×1 conv; rate 1 reads neighbours
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes


def test_rates_match_a_model_built_with_those_rates(tiny_head):
    """Surgery to (2, 4, 6) computes exactly what the model built with rates (2, 4, 6) computes."""
    tiny = load_tiny()
    torch.manual_seed(0)
    edited = tiny.build_model().eval()
    built = tiny.build_model(rates=(2, 4, 6)).eval()
    built.load_state_dict(edited.state_dict())
    apply_rates(edited, tiny_head, [2, 4, 6])
    x = torch.randn(2, 3, 64, 48)
    assert torch.allclose(edited(x), built(x), atol=1e-6)
    assert find_heads(edited, (64, 64))[0].rates == [(2, 2), (4, 4), (6, 6)]  # inspect sees the new rates


def test_anisotropic_rates(tiny_head):
    model = load_tiny().build_model().eval()
    apply_rates(model, tiny_head, [(1, 2), (2, 4), (3, 6)])
    conv = model.get_submodule(tiny_head.branch_modules[2])
    assert conv.dilation == (3, 6) and conv.padding == (3, 6)
    assert model(torch.randn(1, 3, 64, 96)).shape == (1, 4, 64, 96)


@pytest.mark.parametrize(
    "changes, rates, message",
    [
        ({}, [1, 2], "3 dilated branch\\(es\\) but 2 rates"),
        ({"branch_modules": ["aspp.nothing"]}, [1], "no module 'aspp.nothing'"),
        ({"branch_modules": ["aspp.branches.1.1"]}, [1], "is BatchNorm2d, expected Conv2d"),
        ({"kind": "ppm"}, [1, 2, 3], "not ASPP"),
        ({}, [1, 0, 3], "at least 1"),
    ],
)
def test_bad_rate_surgery_names_the_problem(tiny_head, changes, rates, message):
    model = load_tiny().build_model()
    with pytest.raises(InputError, match=message):
        apply_rates(model, replace(tiny_head, **changes), rates)


def test_scales_on_smp_pspnet_keep_weights_and_change_output():
    smp = pytest.importorskip("segmentation_models_pytorch")
    torch.manual_seed(0)
    model = smp.PSPNet(encoder_name="resnet18", encoder_weights=None, classes=3).eval()
    (head,) = find_heads(model, (128, 128))
    assert head.kind == "ppm" and head.scales == [1, 2, 3, 6]
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    x = torch.randn(1, 3, 128, 128)
    before = model(x)
    edits = apply_scales(model, head, [1, 2, 2, 2])
    assert [e.before for e in edits] == [(1, 1), (2, 2), (3, 3), (6, 6)]
    assert model.get_submodule(head.branch_modules[3]).output_size == (2, 2)
    assert not torch.allclose(model(x), before)
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes
    with pytest.raises(InputError, match="4 pooling branches but 2 scales"):
        apply_scales(model, head, [1, 2])
