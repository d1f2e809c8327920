"""segmentation_models_pytorch DeepLabV3+ with its defaults: encoder_output_stride=16 and
decoder_atrous_rates=(12, 24, 36) — the rates DeepLab uses at output stride 8.

    atrous-advisor inspect examples/smp_deeplabv3plus.py --crop 512

encoder_weights=None: nothing is downloaded.
"""

import segmentation_models_pytorch as smp


def build_model(encoder_name: str = "resnet34", classes: int = 19):
    return smp.DeepLabV3Plus(encoder_name=encoder_name, encoder_weights=None, classes=classes)
