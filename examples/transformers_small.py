"""HuggingFace ``transformers`` segmentation models built from small configs (random weights, no download).

The architectures are the real ones — SegFormer, UperNet on Swin and ConvNeXt, BEiT, DPT,
MobileViT v1/v2, Mask2Former — with few layers and narrow widths so they build and trace in well under a
second. Their strides are those of the full-size models::

    atrous-advisor inspect examples/transformers_small.py:segformer --crop 128
    atrous-advisor inspect examples/transformers_small.py:mobilevit --crop 256

Each function returns the model; keyword arguments go to the model's config (``--kwargs '{"num_labels": 19}'``).
"""

from __future__ import annotations

import transformers as T

STAGES = ["stage1", "stage2", "stage3", "stage4"]


def segformer(**config):
    """MiT-style encoder (overlapping patch embeddings at 4, 8, 16, 32; spatial-reduction attention) and the
    all-MLP decoder at stride 4."""
    cfg = dict(depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 32, 64], num_attention_heads=[1, 1, 2, 2],
               decoder_hidden_size=32, num_labels=3)
    return T.SegformerForSemanticSegmentation(T.SegformerConfig(**{**cfg, **config}))


def upernet_swin(**config):
    """UperNet (PPM + FPN) on Swin: patch size 4, window attention with shifted windows, patch merging."""
    backbone = T.SwinConfig(embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 1, 2, 2], window_size=4, out_features=STAGES)
    cfg = dict(backbone_config=backbone, hidden_size=32, auxiliary_in_channels=32, num_labels=3, use_auxiliary_head=False)
    return T.UperNetForSemanticSegmentation(T.UperNetConfig(**{**cfg, **config}))


def upernet_convnext(**config):
    """UperNet (PPM + FPN) on ConvNeXt: a convolutional backbone at strides 4–32."""
    backbone = T.ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], out_features=STAGES)
    cfg = dict(backbone_config=backbone, hidden_size=32, num_labels=3, use_auxiliary_head=False)
    return T.UperNetForSemanticSegmentation(T.UperNetConfig(**{**cfg, **config}))


def _vit(**config):
    return dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, image_size=128,
                patch_size=16, num_labels=3, **config)


def beit(**config):
    """BEiT: ViT at patch 16 with relative position bias; multi-scale FPN (4, 8, 16, 32) and a UperNet head."""
    cfg = _vit(out_indices=[1, 2, 3, 4], use_relative_position_bias=True, auxiliary_channels=16, use_auxiliary_head=False)
    return T.BeitForSemanticSegmentation(T.BeitConfig(**{**cfg, **config}))


def dpt(**config):
    """DPT: ViT at patch 16, reassembled at 4, 8, 16, 32 and fused back to stride 2 (then ×2 in the head)."""
    cfg = _vit(backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
               use_auxiliary_head=False)
    return T.DPTForSemanticSegmentation(T.DPTConfig(**{**cfg, **config}))


def mobilevit(**config):
    """MobileViT v1 with its DeepLabV3 head (ASPP, atrous_rates=[6, 12, 18]) at stride 32."""
    cfg = dict(image_size=256, hidden_sizes=[16, 16, 16], neck_hidden_sizes=[8, 8, 16, 16, 16, 16, 32],
               num_attention_heads=1, aspp_out_channels=16, num_labels=3)
    return T.MobileViTForSemanticSegmentation(T.MobileViTConfig(**{**cfg, **config}))


def mobilevitv2(**config):
    """MobileViTV2 (separable linear attention over F.unfold patches) with its DeepLabV3 head."""
    cfg = dict(image_size=256, width_multiplier=0.25, aspp_out_channels=16, num_labels=3)
    return T.MobileViTV2ForSemanticSegmentation(T.MobileViTV2Config(**{**cfg, **config}))


def mask2former(**config):
    """Mask2Former on Swin: multi-scale deformable pixel decoder, masked-attention decoder; per-query masks
    at stride 4."""
    backbone = T.SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4, out_features=STAGES)
    cfg = dict(backbone_config=backbone, hidden_dim=32, mask_feature_size=32, feature_size=32, encoder_layers=1,
               decoder_layers=2, num_queries=10, encoder_feedforward_dim=64, dim_feedforward=64,
               num_attention_heads=2, num_labels=3)
    return T.Mask2FormerForUniversalSegmentation(T.Mask2FormerConfig(**{**cfg, **config}))
