"""torchvision's DeepLabV3-ResNet50: output stride 8, ASPP rates (12, 24, 36) with image pooling.

    atrous-advisor inspect examples/torchvision_deeplabv3.py --crop 512

No weights are downloaded: weights=None, weights_backbone=None.
"""

from torchvision.models.segmentation import deeplabv3_resnet50


def build_model(num_classes: int = 19):
    return deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
