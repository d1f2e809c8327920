"""segmentation_models_pytorch PSPNet: pyramid pooling (1, 2, 3, 6) at stride 2**encoder_depth (8 by default).

    atrous-advisor inspect examples/smp_pspnet.py --crop 512

encoder_weights=None: nothing is downloaded.
"""

import segmentation_models_pytorch as smp


def build_model(encoder_name: str = "resnet34", classes: int = 19):
    return smp.PSPNet(encoder_name=encoder_name, encoder_weights=None, classes=classes)
