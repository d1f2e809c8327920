"""The ATen vocabulary the graph side speaks: which op kinds do what, and how their arguments decode.

One place for it: the field handlers (``handlers``), the path-count picture (``fieldmap``) and the head
finder (``heads``) all read convolution and pooling arguments through :func:`conv_args` and
:func:`pool_args`, and name op families through the sets below, so a new overload or a new spelling of an
op is added once. Both capture paths are covered: ``torch.export`` keeps functional ops (``aten.conv2d``,
``aten.linear``, ``aten.scaled_dot_product_attention``); the dispatch recorder sees what they decompose to
(``aten.convolution``, ``aten.addmm``, ``aten.bmm`` + ``aten._safe_softmax``).

Pure Python: no torch import. Arguments are whatever the capture stored (ints, lists, and objects with a
``.shape`` for tensors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

CONV = frozenset({"aten.conv2d", "aten.convolution", "aten._convolution", "aten.cudnn_convolution"})
CONV_TRANSPOSE = frozenset({"aten.conv_transpose2d"})
MAX_POOL = frozenset({"aten.max_pool2d", "aten.max_pool2d_with_indices"})
AVG_POOL = frozenset({"aten.avg_pool2d"})
POOL = MAX_POOL | AVG_POOL
ADAPTIVE_POOL = frozenset({"aten.adaptive_avg_pool2d", "aten._adaptive_avg_pool2d", "aten.adaptive_max_pool2d"})
# every op that slides a window over H and W
WINDOW = CONV | CONV_TRANSPOSE | POOL

# interpolation → taps each output reads per axis
UPSAMPLE_TAPS = {
    "aten.upsample_nearest2d": 1,
    "aten._upsample_nearest_exact2d": 1,
    "aten.upsample_bilinear2d": 2,
    "aten._upsample_bilinear2d_aa": 2,
    "aten.upsample_bicubic2d": 4,
    "aten._upsample_bicubic2d_aa": 4,
}
UPSAMPLE_MODE = {
    "aten.upsample_nearest2d": "nearest",
    "aten._upsample_nearest_exact2d": "nearest-exact",
    "aten.upsample_bilinear2d": "bilinear",
    "aten._upsample_bilinear2d_aa": "bilinear",
    "aten.upsample_bicubic2d": "bicubic",
    "aten._upsample_bicubic2d_aa": "bicubic",
}

REDUCE = frozenset({
    "aten.mean", "aten.sum", "aten.amax", "aten.amin", "aten.max", "aten.min", "aten.logsumexp", "aten.std",
    "aten.var", "aten.norm", "aten.linalg_vector_norm",
})
SOFTMAX = frozenset({"aten._softmax", "aten.softmax", "aten._log_softmax", "aten.log_softmax", "aten._safe_softmax"})
# matmul-like ops: data times data (attention) or data times a weight (nn.Linear)
MATMUL = frozenset({"aten.linear", "aten.matmul", "aten.bmm", "aten.mm", "aten.addmm", "aten.baddbmm", "aten.einsum"})
SDPA = frozenset({
    "aten.scaled_dot_product_attention", "aten._scaled_dot_product_flash_attention_for_cpu",
    "aten._scaled_dot_product_efficient_attention", "aten._scaled_dot_product_flash_attention",
    "aten._scaled_dot_product_attention_math", "aten._scaled_dot_product_cudnn_attention",
    "aten._scaled_dot_product_fused_attention_overrideable",
})

# element-wise with broadcasting, and concatenation: several paths into one node
ELEMENTWISE = frozenset({
    "aten.add", "aten.add_", "aten.sub", "aten.sub_", "aten.rsub", "aten.mul", "aten.mul_", "aten.div", "aten.div_",
    "aten.maximum", "aten.minimum", "aten.where", "aten.addcmul", "aten.addcdiv", "aten.lerp", "aten.masked_fill",
    "aten.masked_fill_", "aten.fmod", "aten.remainder", "aten.eq", "aten.ne", "aten.lt", "aten.gt", "aten.le",
    "aten.ge", "aten.bitwise_and", "aten.bitwise_or", "aten.logical_and", "aten.logical_or", "aten.floor_divide",
})
CONCAT = frozenset({"aten.cat", "aten.stack"})
MERGE = ELEMENTWISE | CONCAT
RESIDUAL = frozenset({"aten.add", "aten.add_", "aten.sub", "aten.sub_"})

RESHAPE = frozenset({
    "aten.view", "aten.reshape", "aten._unsafe_view", "aten.flatten", "aten.unflatten", "aten.squeeze",
    "aten.squeeze_", "aten.unsqueeze", "aten.unsqueeze_", "aten.view_as", "aten.reshape_as",
})
EXPAND = frozenset({"aten.expand", "aten.expand_as", "aten.repeat"})
PERMUTE = frozenset({"aten.permute", "aten.transpose", "aten.transpose_", "aten.t", "aten.movedim", "aten.swapaxes"})
SPLIT = frozenset({"aten.split", "aten.split_with_sizes", "aten.chunk", "aten.unbind", "aten.unsafe_split", "aten.tensor_split"})
SELECT = frozenset({"aten.select"})
SLICE = frozenset({"aten.slice"})
PAD = frozenset({"aten.constant_pad_nd", "aten.reflection_pad2d", "aten.replication_pad2d", "aten.pad"})
ROLL = frozenset({"aten.roll"})
IM2COL = frozenset({"aten.im2col"})
COL2IM = frozenset({"aten.col2im"})

# the geometry does not change: pointwise activations, normalisation, dropout, copies
NEUTRAL = frozenset({
    # activations
    "aten.relu", "aten.relu_", "aten.relu6", "aten.gelu", "aten.gelu_", "aten.silu", "aten.silu_",
    "aten.sigmoid", "aten.sigmoid_", "aten.tanh", "aten.tanh_", "aten.hardtanh", "aten.hardtanh_",
    "aten.hardswish", "aten.hardswish_", "aten.hardsigmoid", "aten.hardsigmoid_", "aten.leaky_relu",
    "aten.leaky_relu_", "aten.elu", "aten.elu_", "aten.prelu", "aten._prelu_kernel", "aten.mish", "aten.mish_",
    "aten.softplus", "aten.threshold", "aten.threshold_", "aten.celu", "aten.selu", "aten.glu",
    # batch norm in eval uses running statistics: per-channel affine. Group/instance/layer norm: their
    # statistics span the map, but that is normalisation, not context, so they are not counted as global.
    "aten.batch_norm", "aten._native_batch_norm_legit_no_training", "aten._native_batch_norm_legit",
    "aten.native_batch_norm", "aten._native_batch_norm_legit_functional", "aten.cudnn_batch_norm",
    "aten.group_norm", "aten.native_group_norm", "aten.instance_norm", "aten.layer_norm", "aten.native_layer_norm",
    "aten.rms_norm", "aten._fused_rms_norm",
    # dropout (identity in eval) and copies
    "aten.dropout", "aten.dropout_", "aten.feature_dropout", "aten.feature_dropout_", "aten.native_dropout",
    "aten.alpha_dropout", "aten.feature_alpha_dropout",
    "aten.clone", "aten.contiguous", "aten.detach", "aten.detach_", "aten.alias", "aten._to_copy", "aten.to",
    "aten.type_as", "aten.copy", "aten.copy_", "aten.lift_fresh_copy", "aten.zeros_like", "aten.ones_like",
    "aten.empty_like", "aten.full_like", "aten.fill_", "aten.zero_", "aten.bernoulli", "aten.bernoulli_",
    # pointwise unary maths
    "aten.abs", "aten.neg", "aten.exp", "aten.log", "aten.sqrt", "aten.rsqrt", "aten.pow", "aten.clamp",
    "aten.clamp_", "aten.clamp_min", "aten.clamp_min_", "aten.clamp_max", "aten.reciprocal", "aten.sign",
    "aten.square", "aten.erf", "aten.floor", "aten.round", "aten.sin", "aten.cos", "aten.log1p", "aten.expm1",
    "aten.logical_not", "aten.bitwise_not", "aten.isnan", "aten.nan_to_num", "aten.trunc", "aten.ceil",
})


def arg(args: Sequence[Any], kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    """Positional argument ``index`` or keyword ``name`` of an ATen call, else ``default``."""
    if index < len(args):
        return args[index]
    return kwargs.get(name, default)


def pair(value: Any, default: Sequence[int] = (1, 1)) -> tuple[int, int]:
    """An int or a 1/2-element list → (h, w); None or an empty list means ``default``."""
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        value = default
    if isinstance(value, int):
        return (value, value)
    v = [int(x) for x in value]
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


@dataclass(frozen=True)
class ConvArgs:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    transposed: bool
    output_padding: tuple[int, int] = (0, 0)


def conv_args(kind: str, args: Sequence[Any], kwargs: dict) -> ConvArgs | None:
    """The geometry of a 2-d convolution call, or None when it is not one (a 1-d/3-d conv, no 4-d weight).

    ``conv2d(x, w, b, stride, padding, dilation, groups)``; ``conv_transpose2d(x, w, b, stride, padding,
    output_padding, groups, dilation)``; ``convolution(x, w, b, stride, padding, dilation, transposed,
    output_padding, groups)``.
    """
    if kind not in CONV and kind not in CONV_TRANSPOSE:
        return None
    weight = arg(args, kwargs, 1, "weight")
    shape = getattr(weight, "shape", None)
    if shape is None or len(shape) != 4:
        return None
    kernel = (int(shape[2]), int(shape[3]))
    stride = pair(arg(args, kwargs, 3, "stride", 1))
    if kind in CONV_TRANSPOSE:
        padding = pair(arg(args, kwargs, 4, "padding", 0), (0, 0))
        out_pad = pair(arg(args, kwargs, 5, "output_padding", 0), (0, 0))
        return ConvArgs(kernel, stride, padding, pair(arg(args, kwargs, 7, "dilation", 1)), True, out_pad)
    dilation = pair(arg(args, kwargs, 5, "dilation", 1))
    raw_padding = arg(args, kwargs, 4, "padding", 0)
    if raw_padding == "valid":
        padding = (0, 0)
    elif raw_padding == "same":  # PyTorch puts the odd pixel of 'same' padding on the far side
        padding = tuple((d * (k - 1)) // 2 for k, d in zip(kernel, dilation))  # type: ignore[assignment]
    else:
        padding = pair(raw_padding, (0, 0))
    if kind == "aten.conv2d":
        return ConvArgs(kernel, stride, padding, dilation, False)
    transposed = bool(arg(args, kwargs, 6, "transposed", False))
    return ConvArgs(kernel, stride, padding, dilation, transposed, pair(arg(args, kwargs, 7, "output_padding", 0), (0, 0)))


@dataclass(frozen=True)
class PoolArgs:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool


def pool_args(kind: str, args: Sequence[Any], kwargs: dict) -> PoolArgs | None:
    """``max_pool2d(x, kernel, stride=kernel, padding, dilation, ceil_mode)``; ``avg_pool2d(x, kernel,
    stride=kernel, padding, ceil_mode, ...)``."""
    if kind not in POOL:
        return None
    kernel = pair(arg(args, kwargs, 1, "kernel_size"), (1, 1))
    stride = pair(arg(args, kwargs, 2, "stride", []), kernel)
    padding = pair(arg(args, kwargs, 3, "padding", 0), (0, 0))
    if kind in MAX_POOL:
        return PoolArgs(kernel, stride, padding, pair(arg(args, kwargs, 4, "dilation", 1)), bool(arg(args, kwargs, 5, "ceil_mode", False)))
    return PoolArgs(kernel, stride, padding, (1, 1), bool(arg(args, kwargs, 4, "ceil_mode", False)))


def upsample_align(kind: str, args: Sequence[Any], kwargs: dict) -> bool:
    """``align_corners`` of a bilinear/bicubic resize (nearest has none)."""
    if UPSAMPLE_TAPS.get(kind, 1) == 1:
        return False
    return bool(arg(args, kwargs, 2, "align_corners", False))


def pad_amounts(args: Sequence[Any], kwargs: dict) -> list[int]:
    """``pad(x, (last_left, last_right, second_last_left, ...))`` as a flat list."""
    return [int(p) for p in (arg(args, kwargs, 1, "pad", []) or [])]


def reduce_dims(kind: str, args: Sequence[Any], kwargs: dict, rank: int) -> tuple[set[int], bool] | None:
    """(reduced dims, keepdim) of a reduction; every dim when none is given; None when undecodable."""
    if kind in ("aten.std", "aten.var"):
        dims = arg(args, kwargs, 1, "dim", None)
        keep = arg(args, kwargs, 3, "keepdim", False)
    elif kind == "aten.norm":
        dims = arg(args, kwargs, 2, "dim", None)
        keep = arg(args, kwargs, 3, "keepdim", False)
    elif kind == "aten.linalg_vector_norm":
        dims = arg(args, kwargs, 2, "dim", None)
        keep = arg(args, kwargs, 3, "keepdim", False)
    else:
        dims = arg(args, kwargs, 1, "dim", None)
        keep = arg(args, kwargs, 2, "keepdim", False)
    if isinstance(dims, int):
        dims = [dims]
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        return set(range(rank)), bool(keep)
    if not isinstance(dims, (list, tuple)) or not all(isinstance(d, int) for d in dims) or rank == 0:
        return None
    return {int(d) % rank for d in dims}, bool(keep)
