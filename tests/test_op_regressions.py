"""Two op handlers the type checker caught wrong: ``aten.stack`` inserted a bare factor where a dim belongs,
and ``aten.einsum`` used a name it never defined. Both now give the field a conv stack has."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from atrous_advisor.api import inspect_model  # noqa: E402


class Stacked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 5, padding=2)

    def forward(self, x):
        return torch.stack([self.a(x), self.b(x)], dim=1).sum(dim=1)


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.mix = nn.Parameter(torch.ones(2, 4))

    def forward(self, x):
        return torch.einsum("bchw,dc->bdhw", self.conv(x), self.mix)  # a 1×1 channel mix, written as einsum


@pytest.mark.parametrize("model, field", [(Stacked, 5), (Mixed, 3)])
def test_stack_and_einsum_keep_the_field(model, field):
    torch.set_num_threads(1)
    report = inspect_model(model(), (32, 32))
    assert not report.unsupported_ops
    assert tuple(report.receptive_field) == (field, field)
