"""A small self-contained ASPP network needing only torch: a stride-8 stem and a DeepLab-style head.

    atrous-advisor inspect examples/tiny_aspp.py --crop 128 --field-map tiny.png
    atrous-advisor inspect examples/tiny_aspp.py:build_model --crop 128 --kwargs '{"rates": [2, 4, 6]}'

The default rates (12, 24, 36) are DeepLab's stride-8 habit; at a 128 px crop the feature map is 16×16, so
the outer branches only ever read padding off-centre. The stem is deliberately plain (three stride-2 3×3
convs) so its field can be checked by hand: 1 + 2·(1 + 2 + 4) = 15 px at stride 8.
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
    def __init__(self, cin: int, cout: int, rates=(12, 24, 36)):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(cin, cout, 1)] + [conv_bn_relu(cin, cout, 3, dilation=r) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1))
        self.project = conv_bn_relu(cout * (len(rates) + 2), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = F.interpolate(self.pool(x), size=size, mode="bilinear", align_corners=False)
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


class TinyASPPNet(nn.Module):
    def __init__(self, num_classes: int = 4, rates=(12, 24, 36)):
        super().__init__()
        self.stem = nn.Sequential(conv_bn_relu(3, 16, 3, 2), conv_bn_relu(16, 32, 3, 2), conv_bn_relu(32, 64, 3, 2))
        self.aspp = ASPP(64, 32, rates)
        self.classifier = nn.Conv2d(32, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        logits = self.classifier(self.aspp(self.stem(x)))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def build_model(num_classes: int = 4, rates=(12, 24, 36)) -> nn.Module:
    return TinyASPPNet(num_classes, tuple(rates))
