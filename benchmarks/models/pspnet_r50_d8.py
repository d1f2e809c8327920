"""PSPNet R-50-D8 as MMSegmentation builds it, from torchvision parts, for comparing with mmseg's published memory.

Backbone: torchvision ResNet-50 with layers 3 and 4 dilated (output stride 8; torchvision's stem is the
7×7 one, mmseg's ResNetV1c has a deep 3×3 stem). Decode head: mmseg's PSPHead — pool scales (1, 2, 3, 6),
each pooled branch a 1×1 conv to 512 channels with BN/ReLU, upsampled, concatenated with the input and
fused by a 3×3 conv to 512 channels. Auxiliary head: FCNHead on layer 3 (3×3 conv to 256), as in mmseg.
"""

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


def cbr(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PSPHead(nn.Module):
    def __init__(self, cin: int = 2048, channels: int = 512, scales=(1, 2, 3, 6), classes: int = 19):
        super().__init__()
        self.pools = nn.ModuleList([nn.Sequential(nn.AdaptiveAvgPool2d(s), cbr(cin, channels, 1)) for s in scales])
        self.bottleneck = cbr(cin + len(scales) * channels, channels, 3)
        self.cls = nn.Conv2d(channels, classes, 1)

    def forward(self, x):
        size = x.shape[-2:]
        pooled = [F.interpolate(p(x), size=size, mode="bilinear", align_corners=False) for p in self.pools]
        return self.cls(self.bottleneck(torch.cat([x, *pooled], 1)))


class PSPNet(nn.Module):
    def __init__(self, classes: int = 19):
        super().__init__()
        r = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, True, True])
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2)
        self.layer3, self.layer4 = r.layer3, r.layer4
        self.decode = PSPHead(classes=classes)
        self.aux = nn.Sequential(cbr(1024, 256, 3), nn.Conv2d(256, classes, 1))

    def forward(self, x):
        c3 = self.layer3(self.stem(x))
        return {"out": self.decode(self.layer4(c3)), "aux": self.aux(c3)}


def build_model(classes: int = 19) -> nn.Module:
    return PSPNet(classes)
