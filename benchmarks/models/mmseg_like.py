"""DeepLabV3 and PSPNet R-{50,101}-D8 as MMSegmentation builds them, from torchvision parts, to compare `plan`
with the training memory mmseg publishes (mmseg itself is not installed here).

What is mmseg's and kept: the ResNetV1c deep stem (three 3×3 convs, 32-32-64 channels, instead of one 7×7),
layers 3 and 4 dilated 2 and 4 (output stride 8), the decode heads at 512 channels — ASPPHead: a 1×1 branch,
three 3×3 branches at (12, 24, 36) and image pooling, each 512 channels, fused by a 3×3 conv; PSPHead: pool
scales (1, 2, 3, 6) at 512 channels fused by a 3×3 conv — Dropout2d(0.1) before the classifier, and the
auxiliary FCNHead on layer 3 (one 3×3 conv to 256). What is not: SyncBN (plain BatchNorm2d here).
"""

from typing import Callable

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


def cbr(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ASPPHead(nn.Module):
    def __init__(self, cin: int = 2048, channels: int = 512, dilations=(12, 24, 36)):
        super().__init__()
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), cbr(cin, channels, 1))
        self.aspp = nn.ModuleList([cbr(cin, channels, 1)] + [cbr(cin, channels, 3, dilation=d) for d in dilations])
        self.bottleneck = cbr((len(dilations) + 2) * channels, channels, 3)

    def forward(self, x):
        pooled = F.interpolate(self.image_pool(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.bottleneck(torch.cat([pooled] + [b(x) for b in self.aspp], 1))


class PSPHead(nn.Module):
    def __init__(self, cin: int = 2048, channels: int = 512, scales=(1, 2, 3, 6)):
        super().__init__()
        self.pools = nn.ModuleList([nn.Sequential(nn.AdaptiveAvgPool2d(s), cbr(cin, channels, 1)) for s in scales])
        self.bottleneck = cbr(cin + len(scales) * channels, channels, 3)

    def forward(self, x):
        pooled = [F.interpolate(p(x), size=x.shape[-2:], mode="bilinear", align_corners=False) for p in self.pools]
        return self.bottleneck(torch.cat([x, *pooled], 1))


class EncoderDecoder(nn.Module):
    def __init__(self, resnet: Callable, head: nn.Module, classes: int):
        super().__init__()
        r = resnet(weights=None, replace_stride_with_dilation=[False, True, True])
        deep_stem = nn.Sequential(cbr(3, 32, 3, 2), cbr(32, 32, 3), cbr(32, 64, 3))
        self.backbone = nn.Sequential(deep_stem, r.maxpool, r.layer1, r.layer2, r.layer3)
        self.layer4 = r.layer4
        self.decode = nn.Sequential(head, nn.Dropout2d(0.1), nn.Conv2d(512, classes, 1))
        self.aux = nn.Sequential(cbr(1024, 256, 3), nn.Dropout2d(0.1), nn.Conv2d(256, classes, 1))

    def forward(self, x):
        c3 = self.backbone(x)
        return {"out": self.decode(self.layer4(c3)), "aux": self.aux(c3)}


def deeplabv3(depth: int = 50, classes: int = 19) -> nn.Module:
    resnet = {50: torchvision.models.resnet50, 101: torchvision.models.resnet101}[depth]
    return EncoderDecoder(resnet, ASPPHead(), classes)


def pspnet(depth: int = 50, classes: int = 19) -> nn.Module:
    resnet = {50: torchvision.models.resnet50, 101: torchvision.models.resnet101}[depth]
    return EncoderDecoder(resnet, PSPHead(), classes)
