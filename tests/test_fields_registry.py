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
    "max_pool": (lambda m, x: F.max_pool2d(x, 3, 2, 1), lambda o, k: axis(o).rf_max == 3 and axis(o).jump == 2),
    "avg_pool": (lambda m, x: F.avg_pool2d(x, 2), lambda o, k: axis(o).rf_max == 2 and axis(o).start == Fraction(1, 2)),
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
        lambda m, x: x.view(1, 4, 16, 16).flatten(2).unsqueeze(-1),
        lambda o, k: axis(o).global_context and not axis(o).finite,
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


class Rolled(nn.Module):
    """torch.roll has no handler: it must be reported with its module, not passed through silently."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        return self.conv(torch.roll(x, 1, -1))


def test_unknown_op_is_reported_per_module_and_a_handler_can_be_registered():
    prop = propagate(capture(Rolled().to("meta"), torch.empty(1, 1, 8, 8, device="meta")))
    assert prop.unsupported == {"aten.roll": {"<root>": 1}}
    assert any("aten.roll" in note for note in prop.notes)
    try:
        register_op_handler("aten.roll", neutral)
        prop = propagate(capture(Rolled().to("meta"), torch.empty(1, 1, 8, 8, device="meta")))
        assert prop.unsupported == {}
        assert prop.output_field().h.rf_max == 3
    finally:
        OP_HANDLERS.pop("aten.roll", None)


class ChannelsLastPad(nn.Module):
    """F.pad on an NHWC tensor: aten.pad has a handler, but it only models NCHW; the note must say why."""

    def forward(self, x):
        return F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1)).permute(0, 3, 1, 2)


def test_a_refused_call_of_a_registered_op_says_why():
    prop = propagate(capture(ChannelsLastPad().to("meta"), torch.empty(1, 2, 8, 8, device="meta")))
    assert list(prop.unsupported) == ["aten.pad"]
    (note,) = [n for n in prop.notes if "aten.pad" in n]
    assert "not its last two dims" in note
