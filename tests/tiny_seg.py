"""A tiny DeepLab-style network the integration tests train for a few CPU steps.

Three stride-2 convs (output stride 8) and an ASPP (a 1×1 branch plus one 3×3 branch per rate) merged by
concatenation. At a 128 px crop the feature map is 16: rates (12, 24, 36) leave two branches degenerate
(retune); (2, 4, 6) are the suggested rates for that crop (ok).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CROP = 128
BAD_RATES = (12, 24, 36)
GOOD_RATES = (2, 4, 6)
CLASSES = 3


class TinyASPPNet(nn.Module):
    def __init__(self, rates=BAD_RATES, classes: int = CLASSES, width: int = 8) -> None:
        super().__init__()
        layers, channels = [], 3
        for _ in range(3):
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU()]
            channels = width
        self.stem = nn.Sequential(*layers)
        self.branches = nn.ModuleList(
            [nn.Conv2d(width, width, 1)] + [nn.Conv2d(width, width, 3, padding=r, dilation=r) for r in rates]
        )
        self.project = nn.Conv2d(width * (len(rates) + 1), classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.stem(x)
        y = self.project(torch.cat([b(f) for b in self.branches], 1))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def random_batch(n: int, crop: int = CROP, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, crop, crop, generator=g), torch.randint(0, CLASSES, (n, crop, crop), generator=g)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    after = model.state_dict()
    return set(after) == set(before) and all(
        after[k].device == before[k].device and torch.equal(after[k], before[k]) for k in before
    )


class WarpedASPPNet(TinyASPPNet):
    """TinyASPPNet with a ``grid_sample`` warp before the ASPP: an op ``inspect`` has no field handler for,
    so the head's input geometry is unknown and no advice may be given."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.stem(x)
        grid = torch.zeros(f.shape[0], f.shape[2], f.shape[3], 2, device=f.device, dtype=f.dtype)
        f = F.grid_sample(f, grid, align_corners=False)
        y = self.project(torch.cat([b(f) for b in self.branches], 1))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
