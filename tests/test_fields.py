"""Field engine on small analytic networks: hand-computed fields, and an independent gradient check.

Every network states its topology and the field computed by hand in its docstring. Fields are per axis
(h, w); "support" is the set of input offsets the feature at index m reads, relative to m·jump.
"""

from __future__ import annotations

import copy
from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from atrous_advisor.geometry import fields as G  # noqa: E402
from atrous_advisor.graph.capture import capture  # noqa: E402
from atrous_advisor.graph.engine import propagate  # noqa: E402


def field_of(model: nn.Module, shape=(1, 1, 64, 64), prefer="export"):
    """Output NodeField of ``model`` on a meta input of ``shape`` (plus the propagation)."""
    model = copy.deepcopy(model).to("meta").eval()
    prop = propagate(capture(model, torch.empty(*shape, device="meta"), prefer))
    return prop.output_field(), prop


def rf(f):
    return (G.as_number(f.h.rf_max), G.as_number(f.w.rf_max))


# --- hand-computed fields -------------------------------------------------------------------------------


class Dilated(nn.Module):
    """conv3×3 (d=1, p=1) → conv3×3 (d=2, p=2). Field 1 + 2 + 4 = 7, jump 1, support −3..3 (no holes)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 1, 3, padding=1)
        self.b = nn.Conv2d(1, 1, 3, padding=2, dilation=2)

    def forward(self, x):
        return self.b(self.a(x))


class Gridding(nn.Module):
    """Three conv3×3 with dilation 2 (p=2): field 1 + 3·4 = 13 but only even offsets −6..6 are read:
    7 of 13 pixels, lattice step 2 — gridding."""

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=2, dilation=2) for _ in range(3)])

    def forward(self, x):
        return self.convs(x)


class NonSquare(nn.Module):
    """conv (3, 5), stride (1, 2), padding (1, 2): field (3, 5), jump (1, 2), centre offset (0, 0)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, (3, 5), stride=(1, 2), padding=(1, 2))

    def forward(self, x):
        return self.conv(x)


class Strips(nn.Module):
    """Strip kernels conv (1, 7) then (7, 1), 'same' padding: field (7, 7) — a 7×7 window in two steps."""

    def __init__(self):
        super().__init__()
        self.row = nn.Conv2d(1, 1, (1, 7), padding="same")
        self.col = nn.Conv2d(1, 1, (7, 1), padding="same")

    def forward(self, x):
        return self.col(self.row(x))


class Transposed(nn.Module):
    """conv3×3 s2 p1 (field 3, jump 2) → conv_transpose 4×4 s2 p1: an output reads floor(3/2) + 1 = 2
    neighbouring inputs, so field 3 + 1·2 = 5, jump 1."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(1, 1, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1)

    def forward(self, x):
        return self.up(self.down(x))


class Upsample(nn.Module):
    """conv3×3 s2 p1 (field 3, jump 2) → bilinear ×2 (each output reads 2 inputs): field 3 + 2 = 5, jump 1.
    The nearest path reads one input: field 3. Added together: rf_max 5, rf_min 3."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(1, 1, 3, stride=2, padding=1)

    def forward(self, x):
        y = self.down(x)
        return F.interpolate(y, scale_factor=2, mode="bilinear") + F.interpolate(y, scale_factor=2, mode="nearest")


class Concat(nn.Module):
    """Two branches from the input, conv3×3 and conv5×5 ('same'), concatenated: rf_max 5, rf_min 3."""

    def __init__(self):
        super().__init__()
        self.small = nn.Conv2d(1, 2, 3, padding=1)
        self.large = nn.Conv2d(1, 2, 5, padding=2)

    def forward(self, x):
        return torch.cat([self.small(x), self.large(x)], dim=1)


class Residual(nn.Module):
    """x + conv3×3(conv3×3(x)): rf_max 1 + 2 + 2 = 5, rf_min 1 (the identity path keeps a 1-px field)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 1, 3, padding=1)
        self.b = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        return x + self.b(self.a(x))


class Misaligned(nn.Module):
    """conv3×3 s2 p1 (centre of feature 0 at 0) + conv2×2 s2 p0 (centre at 0.5): same shape, misaligned."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 1, 3, stride=2, padding=1)
        self.b = nn.Conv2d(1, 1, 2, stride=2)

    def forward(self, x):
        return self.a(x) + self.b(x)


class ImagePool(nn.Module):
    """conv3×3 branch + adaptive-avg-pool-to-1 branch upsampled and concatenated: field 3 (the finite
    path), global context flagged."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        pooled = F.interpolate(self.pool(x), size=x.shape[-2:], mode="bilinear")
        return torch.cat([self.conv(x), pooled], dim=1)


class Pools(nn.Module):
    """maxpool 3×3 s2 p1 (field 3, jump 2) → avgpool 2×2 s2 (field 3 + 1·2 = 5, jump 4, centre 0.5·2 = 1)."""

    def __init__(self):
        super().__init__()
        self.max = nn.MaxPool2d(3, 2, 1)
        self.avg = nn.AvgPool2d(2, 2)

    def forward(self, x):
        return self.avg(self.max(x))


HAND = [
    # model, rf (h, w), rf_min (h, w), jump (h, w), holes, global
    (Dilated, (7, 7), (7, 7), (1, 1), False, False),
    (Gridding, (13, 13), (13, 13), (1, 1), True, False),
    (NonSquare, (3, 5), (3, 5), (1, 2), False, False),
    (Strips, (7, 7), (7, 7), (1, 1), False, False),
    (Transposed, (5, 5), (5, 5), (1, 1), False, False),
    (Upsample, (5, 5), (3, 3), (1, 1), False, False),
    (Concat, (5, 5), (3, 3), (1, 1), False, False),
    (Residual, (5, 5), (1, 1), (1, 1), False, False),
    (ImagePool, (3, 3), (3, 3), (1, 1), False, True),
    (Pools, (5, 5), (5, 5), (4, 4), False, False),
]


@pytest.mark.parametrize("net, field, field_min, jump, holes, is_global", HAND, ids=[h[0].__name__ for h in HAND])
def test_hand_computed_fields(net, field, field_min, jump, holes, is_global):
    out, prop = field_of(net())
    assert rf(out) == field
    assert (G.as_number(out.h.rf_min), G.as_number(out.w.rf_min)) == field_min
    assert (G.as_number(out.h.jump), G.as_number(out.w.jump)) == jump
    assert (out.h.holes, out.w.holes) == (holes, holes)
    assert out.h.global_context == is_global
    assert not prop.unsupported


def test_gridding_lattice_step_and_support():
    out, _ = field_of(Gridding())
    assert out.h.support.offsets() == [-6, -4, -2, 0, 2, 4, 6]
    assert out.h.support.lattice_step == 2


def test_non_square_centres_and_misalignment():
    out, _ = field_of(NonSquare())
    assert (out.h.start, out.w.start) == (0, 0)
    out, _ = field_of(Misaligned())
    assert out.h.misaligned and out.w.misaligned
    out, _ = field_of(Pools())
    assert out.h.start == Fraction(1)  # 2×2 average of features at 0 and 2


def test_both_capture_paths_agree():
    for net in (Transposed, Upsample, ImagePool, Gridding):
        a, pa = field_of(net(), prefer="export")
        b, pb = field_of(net(), prefer="dispatch")
        assert pa.graph.capture == "torch.export" and pb.graph.capture == "dispatch"
        assert a == b, net.__name__


# --- independent check: the non-zero extent of the input gradient ---------------------------------------


def gradient_support(model: nn.Module, size: int) -> tuple[list[int], list[int], tuple[int, int]]:
    """Per axis, the input pixels whose gradient of the centre output is non-zero, in a copy with positive
    weights, neutral batch norm, average instead of max pooling and global pooling cut (float64, CPU)."""
    net = copy.deepcopy(model).double().eval()
    for name, module in list(net.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(module, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode))
            if isinstance(child, nn.AdaptiveAvgPool2d) and child.output_size in (1, (1, 1)):
                setattr(module, child_name, CutGlobal())
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.abs() + 0.1)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    x = torch.ones(1, net_in_channels(net), size, size, dtype=torch.float64, requires_grad=True)
    y = net(x)
    if isinstance(y, dict):
        y = y["out"]
    h, w = y.shape[-2] // 2, y.shape[-1] // 2
    y[0, :, h, w].sum().backward()
    g = x.grad[0].abs().sum(0)
    rows = torch.nonzero(g.sum(1) > 0).flatten().tolist()
    cols = torch.nonzero(g.sum(0) > 0).flatten().tolist()
    return rows, cols, (h, w)


class CutGlobal(nn.Module):
    """Global pooling with its gradient cut: global paths are a flag in the analysis, not a finite support."""

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, 1).detach()


def net_in_channels(net: nn.Module) -> int:
    first = next((m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))), None)
    return first.in_channels if first is not None else 1


class ResBlockNet(nn.Module):
    """A small ResNet-like net: stem conv7×7 s2 p3 → maxpool 3×3 s2 p1 → residual block with a dilated
    conv (d=2) and a strided 1×1 shortcut → bilinear ×4 back up. Checked only against the gradient."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 7, 2, 3)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.a = nn.Conv2d(4, 4, 3, 2, 1)
        self.b = nn.Conv2d(4, 4, 3, 1, 2, dilation=2)
        self.short = nn.Conv2d(4, 4, 1, 2)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        x = self.pool(torch.relu(self.stem(x)))
        y = self.bn(self.b(torch.relu(self.a(x)))) + self.short(x)
        return F.interpolate(y, scale_factor=8, mode="bilinear")


GRADIENT_NETS = [Dilated, Gridding, Strips, Concat, Residual, Pools, ResBlockNet]


@pytest.mark.parametrize("net", GRADIENT_NETS, ids=[n.__name__ for n in GRADIENT_NETS])
def test_support_matches_input_gradient(net):
    """The analytic support of the centre output equals the pixels with a non-zero gradient."""
    model = net()
    size = 96
    c = net_in_channels(model)
    out, _ = field_of(model, (1, c, size, size))
    rows, cols, (h, w) = gradient_support(model, size)
    for axis, (centre, seen) in enumerate(((h, rows), (w, cols))):
        f = out.axes[axis]
        origin = centre * f.jump  # feature m reads m·jump + its support offsets
        predicted = sorted({int(origin + o) for o in f.support.offsets()} & set(range(size)))
        assert predicted == seen, (net.__name__, axis)
        assert max(seen) - min(seen) + 1 == G.as_number(f.rf_max)


def test_tiny_aspp_example_matches_gradient():
    """examples/tiny_aspp.py: the star of three dilated branches is exactly the gradient's support."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "examples" / "tiny_aspp.py"
    spec = importlib.util.spec_from_file_location("tiny_aspp_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model(rates=(2, 4, 6))
    out, prop = field_of(model, (1, 3, 256, 256))
    rows, cols, (h, w) = gradient_support(model, 256)
    f = out.h
    predicted = sorted({int(h * f.jump + o) for o in f.support.offsets()} & set(range(256)))
    assert f.jump == 1 and predicted == rows
    # stem field 15 at stride 8, rates up to 6: the star spans 15 + 2·6·8 + 8 (final bilinear) = 119 px
    assert G.as_number(f.rf_max) == 15 + 2 * 6 * 8 + 8


class TransposedOddPhase(nn.Module):
    """conv3×3 s2 p1 (field 3, jump 2) → conv_transpose 3×3 s2 p1 output_padding 1: even outputs read one
    input, odd outputs two (field 3 + 1·2 = 5, jump 1). Output 1 sits at 1 and reads inputs 0 and 1 (at 0
    and 2): its support is −2..2 around itself, not −1..3."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(1, 1, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        return self.up(self.down(x))


def test_transposed_support_is_placed_around_the_widest_phase():
    """At 97 px the output is 98 wide and its centre (49) is an odd, two-input output: the gradient there
    must be exactly the analytic support."""
    model = TransposedOddPhase()
    out, _ = field_of(model, (1, 1, 97, 97))
    assert out.h.support.offsets() == [-2, -1, 0, 1, 2] and G.as_number(out.h.rf_max) == 5
    rows, cols, (h, w) = gradient_support(model, 97)
    assert h % 2 == 1
    assert sorted(int(h * out.h.jump + o) for o in out.h.support.offsets()) == rows


class FixedGlobalPool(nn.Module):
    """conv3×3 s2 p1 (field 3, jump 2) gated by ``F.avg_pool2d(y, y.shape[2:])`` (BiSeNet's global context):
    the pool covers the whole map, so it is global context — field 3 and jump 2 stay the finite path's."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, stride=2, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y * torch.sigmoid(F.avg_pool2d(y, y.shape[2:])) + F.max_pool2d(y, y.shape[2:])


def test_whole_map_pooling_is_global_context():
    from atrous_advisor.graph.inspection import output_stride

    out, prop = field_of(FixedGlobalPool())
    assert out.h.global_context and out.w.global_context
    assert rf(out) == (3, 3) and (out.h.jump, out.w.jump) == (2, 2)
    assert output_stride(prop) == (2, 2)  # not the 64 px "stride" of a pooled-away map


def test_a_padded_pool_of_a_one_pixel_map_stays_a_window():
    """At a tiny crop the stem's 3×3 s2 p1 max pool sees a 1-pixel map: an ordinary layer, not global context."""
    out, _ = field_of(nn.MaxPool2d(3, 2, 1), (1, 1, 1, 1))
    assert not out.h.global_context and out.h.rf_max == 3


def test_field_map_leaves_whole_map_pooling_out():
    """The field map draws finite paths only: FixedGlobalPool's map is the conv's 3×3 window, nothing else."""
    from atrous_advisor.graph.fieldmap import path_counts

    model = FixedGlobalPool()
    model.conv = nn.Conv2d(3, 1, 3, stride=2, padding=1)  # the field map feeds an RGB-shaped image
    counts, (h, w), _ = path_counts(model.to("meta").eval(), (64, 64))
    rows, cols = counts.nonzero()
    assert sorted(set(rows.tolist())) == [2 * h - 1, 2 * h, 2 * h + 1]
    assert sorted(set(cols.tolist())) == [2 * w - 1, 2 * w, 2 * w + 1]
