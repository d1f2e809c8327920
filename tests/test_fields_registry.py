"""Registry-driven: every op handler has a case here, every registered ATen kind is a real op, and ops
without a handler are reported per module — never silently treated as identity."""

from __future__ import annotations

from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from atrous_advisor.graph import OP_HANDLERS, neutral, register_op_handler  # noqa: E402
from atrous_advisor.graph.capture import capture  # noqa: E402
from atrous_advisor.graph.engine import propagate  # noqa: E402


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.weight = nn.Parameter(torch.ones(1, 1, 3, 3))
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return self.fn(self, x)


def run(fn, shape=(1, 4, 16, 16)):
    """Field at the output of ``fn(module, x)`` and the op kinds in its graph (both capture paths agree)."""
    results = []
    for prefer in ("export", "dispatch"):
        model = Fn(fn).to("meta").eval()
        prop = propagate(capture(model, torch.empty(*shape, device="meta"), prefer))
        results.append((prop.output_field(), {n.kind for n in prop.graph.nodes}, prop))
    assert results[0][0] == results[1][0], "export and dispatch capture disagree"
    return results[0]


def axis(out, a=0):
    return out.axes[a]


# Each case: (handler name, function of (module, x), check(out_field, kinds)).
CASES = {
    "neutral": (lambda m, x: torch.relu(F.dropout(x, 0.5, False)), lambda o, k: axis(o).rf_max == 1 and "aten.relu" in k),
    "getitem": (
        lambda m, x: F.max_pool2d(x, 3, 2, 1, return_indices=True)[0],
        lambda o, k: axis(o).rf_max == 3 and axis(o).jump == 2,
    ),
    "merge": (
        lambda m, x: torch.cat([x, x * torch.sigmoid(x)], 1) - torch.cat([x, x], 1),
        lambda o, k: axis(o).rf_max == 1 and {"aten.cat", "aten.mul", "aten.sub"} <= k,
    ),
    "conv": (
        lambda m, x: F.conv_transpose2d(F.conv2d(x[:, :1], m.weight, stride=2, padding=1), m.weight, stride=2, padding=1, output_padding=1),
        lambda o, k: axis(o).rf_max == 3 + 1 * 2 and axis(o).jump == 1,
    ),
    "pool": (
        lambda m, x: F.max_pool2d(x, 3, 2, 1) + F.avg_pool2d(x, 3, 2, 1),
        lambda o, k: axis(o).rf_max == 3 and axis(o).jump == 2 and {"aten.max_pool2d", "aten.avg_pool2d"} <= k,
    ),
    "restride": (lambda m, x: torch.relu(x).as_strided(x.shape, x.stride()), lambda o, k: axis(o).rf_max == 1),
    "roll": (lambda m, x: F.conv2d(torch.roll(x[:, :1], 1, -1), m.weight), lambda o, k: axis(o).rf_max == 3),
    "split": (
        lambda m, x: x.split(2, 1)[0] + x.unbind(0)[0][:2],
        lambda o, k: axis(o).rf_max == 1 and o.layout == (-2, -1),
    ),
    "expand": (
        lambda m, x: x.mean((2, 3), keepdim=True).expand(-1, -1, 16, 16) + x,
        lambda o, k: axis(o).rf_max == 1 and axis(o).global_context,
    ),
    "im2col": (
        lambda m, x: F.unfold(x, 3, padding=1).view(1, 36, 16, 16),
        lambda o, k: axis(o).rf_max == 3 and o.layout == (-2, -1),
    ),
    "col2im": (
        lambda m, x: F.fold(F.unfold(x, 4, stride=4), (16, 16), 4, stride=4),
        lambda o, k: axis(o).rf_max == 1 and axis(o).jump == 1 and o.layout == (-2, -1),
    ),
    "attention": (
        # global self-attention over the tokens, with the residual: every position reads every other
        lambda m, x: F.scaled_dot_product_attention(*[x.flatten(2).transpose(1, 2)] * 3).transpose(1, 2).view(1, 4, 16, 16) + x,
        lambda o, k: axis(o).rf_max == 1 and axis(o).global_context and o.layout == (-2, -1),
    ),
    "adaptive_pool": (
        lambda m, x: F.adaptive_avg_pool2d(x, 4) + F.adaptive_avg_pool2d(F.adaptive_avg_pool2d(x, 1), 4),
        lambda o, k: axis(o).rf_max == 4 and axis(o).jump == 4 and axis(o).global_context and axis(o).binned,
    ),
    "reduce": (
        lambda m, x: x.mean(1, keepdim=True) + x.mean((2, 3), keepdim=True),
        lambda o, k: axis(o).rf_max == 1 and axis(o).global_context and "aten.mean" in k,
    ),
    "upsample": (
        lambda m, x: F.interpolate(x, scale_factor=2, mode="nearest"),
        lambda o, k: axis(o).rf_max == 1 and axis(o).jump == Fraction(1, 2) and axis(o).size == 32,
    ),
    "pad": (
        lambda m, x: F.conv2d(F.pad(x[:, :1], (1, 1, 2, 2)), m.weight),
        lambda o, k: axis(o, 0).start == -1 and axis(o, 1).start == 0 and axis(o).rf_max == 3,
    ),
    "slice_": (
        lambda m, x: x[:, :, 2:, ::2],
        lambda o, k: axis(o, 0).start == 2 and axis(o, 1).jump == 2 and axis(o, 0).size == 14,
    ),
    "reshape": (
        # Swin's window partition (4×4 windows of 4×4) and its reverse give the map back
        lambda m, x: x.view(1, 4, 4, 4, 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(16, 4, 4, 4)
        .reshape(1, 4, 4, 4, 4, 4).permute(0, 3, 1, 4, 2, 5).reshape(1, 4, 16, 16),
        lambda o, k: axis(o).rf_max == 1 and o.layout == (-2, -1),
    ),
    "permute": (
        lambda m, x: F.layer_norm(x.permute(0, 2, 3, 1), (4,)).permute(0, 3, 1, 2),
        lambda o, k: axis(o).rf_max == 1 and not axis(o).global_context,
    ),
    "matmul": (
        lambda m, x: m.lin(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) + (x.flatten(2) @ x.flatten(2).transpose(1, 2)).mean(),
        lambda o, k: axis(o).rf_max == 1 and axis(o).global_context,
    ),
    "softmax": (
        lambda m, x: torch.softmax(x, 1) + torch.softmax(x.flatten(2), -1).view_as(x),
        lambda o, k: axis(o).rf_max == 1 and axis(o).global_context,
    ),
}


def test_every_handler_has_a_case():
    handlers = {fn.__name__ for fn in OP_HANDLERS.values()}
    assert handlers == set(CASES), f"handlers without a case: {handlers - set(CASES)}; stale cases: {set(CASES) - handlers}"


def test_every_registered_aten_kind_is_a_real_op():
    missing = [k for k in OP_HANDLERS if k.startswith("aten.") and not hasattr(torch.ops.aten, k.split(".", 1)[1])]
    assert not missing


@pytest.mark.parametrize("name", sorted(CASES))
def test_handler_case(name):
    fn, check = CASES[name]
    out, kinds, prop = run(fn)
    assert not prop.unsupported, prop.unsupported
    assert check(out, kinds), (name, out)
    assert any(OP_HANDLERS.get(k) is not None and OP_HANDLERS[k].__name__ == name for k in kinds), name


class Flipped(nn.Module):
    """torch.flip has no handler: it is reported with its module, and the output is unknown — not passed
    through silently, and not estimated."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        return self.conv(torch.flip(x, (-1,)))


def test_unknown_op_is_reported_per_module_and_a_handler_can_be_registered():
    from atrous_advisor.graph.handlers import Unknown

    prop = propagate(capture(Flipped().to("meta"), torch.empty(1, 1, 8, 8, device="meta")))
    assert prop.unsupported == {"aten.flip": {"<root>": 1}}
    assert any("aten.flip" in note for note in prop.notes)
    assert isinstance(prop.output_field(), Unknown) and prop.output_field().op == "aten.flip"
    try:
        register_op_handler("aten.flip", neutral)
        prop = propagate(capture(Flipped().to("meta"), torch.empty(1, 1, 8, 8, device="meta")))
        assert prop.unsupported == {}
        assert prop.output_field().h.rf_max == 3
    finally:
        OP_HANDLERS.pop("aten.flip", None)


class TokenPad(nn.Module):
    """F.pad on the token dim of (N, C, H·W): positions and padding cannot be told apart; the note says why."""

    def forward(self, x):
        return F.pad(x.flatten(2), (1, 1)).mean(-1)


def test_a_refused_call_of_a_registered_op_says_why():
    prop = propagate(capture(TokenPad().to("meta"), torch.empty(1, 2, 8, 8, device="meta")))
    assert list(prop.unsupported) == ["aten.constant_pad_nd"] or list(prop.unsupported) == ["aten.pad"]
    (note,) = [n for n in prop.notes if "pad" in n]
    assert "padding dim" in note
