"""HuggingFace segmentation models at their published sizes, from default configs (random init, nothing
downloaded): what bench_inspect_breadth.py inspects."""

from __future__ import annotations

import transformers as T

STAGES = ["stage1", "stage2", "stage3", "stage4"]


def segformer():  # SegformerConfig() is MiT-b0
    return T.SegformerForSemanticSegmentation(T.SegformerConfig(num_labels=19))


def upernet_swin():  # SwinConfig() is Swin-T
    return T.UperNetForSemanticSegmentation(T.UperNetConfig(backbone_config=T.SwinConfig(out_features=STAGES), num_labels=19))


def upernet_convnext():  # ConvNextConfig() is ConvNeXt-T
    backbone = T.ConvNextConfig(hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3], out_features=STAGES)
    return T.UperNetForSemanticSegmentation(T.UperNetConfig(backbone_config=backbone, num_labels=19))


def beit():  # BEiT-B, as in microsoft/beit-base-finetuned-ade-640-640
    return T.BeitForSemanticSegmentation(T.BeitConfig(image_size=512, out_indices=[3, 5, 7, 11], use_relative_position_bias=True, num_labels=19))


def dpt():  # DPT-L, as in Intel/dpt-large-ade
    return T.DPTForSemanticSegmentation(T.DPTConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                                    intermediate_size=4096, backbone_out_indices=[5, 11, 17, 23],
                                                    neck_hidden_sizes=[256, 512, 1024, 1024], num_labels=19))


def mobilevit():  # MobileViT-S with its DeepLabV3 head
    return T.MobileViTForSemanticSegmentation(T.MobileViTConfig(num_labels=19))


def mobilevitv2():
    return T.MobileViTV2ForSemanticSegmentation(T.MobileViTV2Config(num_labels=19))


def mask2former():  # Swin-T backbone
    return T.Mask2FormerForUniversalSegmentation(T.Mask2FormerConfig(num_labels=19))
