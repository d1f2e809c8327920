"""A tiny DeepLab-style network for the validate tests: output stride 8, an ASPP head, CPU-fast at 64 px.

Backbone: four 3×3 convs (three of stride 2), field 31 px, jump 8. Head: a 1×1 branch, three 3×3 branches
at ``rates`` (DeepLab's stride-8 default 12, 24, 36), image pooling, concat, 1×1 projection, classifier,
bilinear upsampling to the input. At 64 px (8×8 features) the default rates are ≥ F: every dilated branch is
exactly a 1×1 conv. ``self.head.convs.{1,2,3}`` are the dilated convs.
"""

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=dilation * (kernel - 1) // 2, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ImagePool(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(super().forward(x), size=x.shape[-2:], mode="nearest")


class ASPP(nn.Module):
    def __init__(self, cin: int, cout: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        branches = [conv_bn_relu(cin, cout, kernel=1)] + [conv_bn_relu(cin, cout, 3, dilation=r) for r in rates]
        self.convs = nn.ModuleList([*branches, ImagePool(cin, cout)])
        self.project = conv_bn_relu(cout * len(self.convs), cout, kernel=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


class TinyASPPNet(nn.Module):
    def __init__(self, num_classes: int = 5, width: int = 16, rates: tuple[int, ...] = (12, 24, 36)) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            conv_bn_relu(3, width, stride=2),
            conv_bn_relu(width, width, stride=2),
            conv_bn_relu(width, 2 * width, stride=2),
            conv_bn_relu(2 * width, 2 * width),
        )
        self.head = ASPP(2 * width, 2 * width, rates)
        self.classifier = nn.Conv2d(2 * width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.classifier(self.head(self.backbone(x)))
        return {"out": F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)}


def build_model(num_classes: int = 5, width: int = 16, rates: tuple[int, ...] = (12, 24, 36)) -> TinyASPPNet:
    return TinyASPPNet(num_classes=num_classes, width=width, rates=tuple(rates))


# The dilated branches, as find_heads names them (used where the graph package is not under test).
DILATED_BRANCHES = ["head.convs.1.0", "head.convs.2.0", "head.convs.3.0"]
