"""The network of the rate-law experiment (benchmarks/rate_law.py): a stride-4 CNN with a DeepLab ASPP head.

The stem is five plain 3×3 convs (two of them stride 2), so its field is 1 + 2 + 4 + 8 + 8 + 8 = 31 px —
the paper's fixed 32 px margin in FOV = 6·r·s + 32 — and the head's reach is set by the atrous rate alone.
The default rates (24, 48, 72) are DeepLab's rule r = 96 / s at stride 4: the "current" setting a user who
copies the usual recipe would have.

    atrous-advisor inspect benchmarks/rate_law_model.py --crop 160
"""

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    def __init__(self, cin: int, cout: int, rates=(24, 48, 72)):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(cin, cout, 1)] + [conv_bn_relu(cin, cout, 3, dilation=r) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1))
        self.project = conv_bn_relu(cout * (len(rates) + 2), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.pool(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


class RateLawNet(nn.Module):
    def __init__(self, num_classes: int = 5, rates=(24, 48, 72), width: int = 32):
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            conv_bn_relu(3, w // 2, 3, 2), conv_bn_relu(w // 2, w, 3, 2),
            conv_bn_relu(w, w), conv_bn_relu(w, w), conv_bn_relu(w, w),
        )
        self.aspp = ASPP(w, w, rates)
        self.classifier = nn.Conv2d(w, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.aspp(self.stem(x)))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def build_model(num_classes: int = 5, rates=(24, 48, 72), width: int = 32) -> nn.Module:
    return RateLawNet(num_classes, tuple(rates), width)


class PPM(nn.Module):
    """PSPNet's pyramid pooling: average-pool to s×s bins per branch, 1×1 conv, upsample, concatenate with x."""

    def __init__(self, cin: int, cout: int, scales=(1, 2, 3, 6)):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), conv_bn_relu(cin, cout // len(scales) or 1, 1)) for s in scales
        )
        self.bottleneck = conv_bn_relu(cin + len(scales) * (cout // len(scales) or 1), cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False) for stage in self.stages]
        return self.bottleneck(torch.cat([x, *pooled], dim=1))


class PSPLawNet(nn.Module):
    def __init__(self, num_classes: int = 5, scales=(1, 2, 3, 6), width: int = 32):
        super().__init__()
        self.stem = RateLawNet(num_classes, width=width).stem  # the same stride-4 stem, 31 px field
        self.ppm = PPM(width, width, scales)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.ppm(self.stem(x)))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def build_psp(num_classes: int = 5, scales=(1, 2, 3, 6), width: int = 32) -> nn.Module:
    """The same stem under a PSPNet pyramid pooling head (PSPNet's scales 1, 2, 3, 6 by default)."""
    return PSPLawNet(num_classes, tuple(scales), width)
