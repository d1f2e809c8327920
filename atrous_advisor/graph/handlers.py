"""One small handler per ATen op kind: how the op changes the field of its input, per axis.

The registry maps an op kind (``"aten.conv2d"``, the op's name without overload) to a pure function
``handler(call: OpCall) -> NodeField``. Ops that keep the geometry are explicit ``neutral`` entries; an op
with no entry is never treated as identity silently — the engine collects it as unsupported, per module.

Extend it for your own ops::

    from atrous_advisor.graph import register_op_handler, neutral
    register_op_handler("mylib.fancy_act", neutral)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Sequence

from atrous_advisor.geometry import fields as G
from atrous_advisor.geometry.fields import AxisField

Layout = Optional[tuple[int, int]]  # dims of H and W as negative indices; None once the layout is lost


@dataclass(frozen=True)
class NodeField:
    """The field of one node: one AxisField per spatial axis, and where those axes sit in the tensor."""

    h: AxisField
    w: AxisField
    layout: Layout = (-2, -1)
    # channels-last data reshaped to (positions, channels) rows for a matmul (how nn.Linear on NHWC
    # dispatches): (shape before the fold, its layout); the geometry is intact and comes back on unfold
    folded: Optional[tuple[tuple[int, ...], Layout]] = None

    @property
    def axes(self) -> tuple[AxisField, AxisField]:
        return (self.h, self.w)

    def map(self, fn: Callable[[AxisField, int], AxisField], layout: Layout | str = "same") -> "NodeField":
        """Apply ``fn(axis_field, axis_index)`` to both axes."""
        return NodeField(fn(self.h, 0), fn(self.w, 1), self.layout if layout == "same" else layout)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TensorArg:
    field: Optional[NodeField]  # None: a parameter, buffer or constant (not data flow from the image)
    shape: tuple[int, ...]


@dataclass(frozen=True)
class OpCall:
    kind: str
    args: tuple
    kwargs: dict
    out_shape: Optional[tuple[int, ...]]

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        if index < len(self.args):
            return self.args[index]
        return self.kwargs.get(name, default)

    @property
    def spatial(self) -> list[TensorArg]:
        """Tensor arguments that carry a field, in order (flattening lists such as cat's inputs)."""
        out: list[TensorArg] = []

        def walk(value: Any) -> None:
            if isinstance(value, TensorArg):
                if value.field is not None:
                    out.append(value)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    walk(v)
            elif isinstance(value, dict):
                for v in value.values():
                    walk(v)

        walk(self.args)
        walk(self.kwargs)
        return out

    def out_size(self, axis: int, layout: Layout = (-2, -1)) -> int:
        assert self.out_shape is not None and layout is not None, f"{self.kind}: no spatial output"
        return int(self.out_shape[layout[axis]])


Handler = Callable[[OpCall], Optional[NodeField]]

OP_HANDLERS: dict[str, Handler] = {}


class HandlerError(Exception):
    """The op's arguments are not what its handler knows (schema changed): reported as unsupported."""


def register_op_handler(kind: str, handler: Handler) -> None:
    """Add or replace the handler of an op kind (``"aten.my_op"`` or ``"module.function"``)."""
    OP_HANDLERS[kind] = handler


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for k in kinds:
            register_op_handler(k, fn)
        return fn

    return deco


def _ints(value: Any, default: Sequence[int]) -> tuple[int, int]:
    """An int or a 1/2-element list → (h, w); an empty list means ``default``."""
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        value = default
    if isinstance(value, int):
        return (value, value)
    value = [int(v) for v in value]
    return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])


def _first(call: OpCall) -> NodeField:
    spatial = call.spatial
    if not spatial:
        raise HandlerError(f"{call.kind}: no input with a field")
    return spatial[0].field  # type: ignore[return-value]


def _spatial_4d(call: OpCall) -> tuple[NodeField, TensorArg]:
    x = call.args[0]
    if not isinstance(x, TensorArg) or x.field is None or len(x.shape) < 3:
        raise HandlerError(f"{call.kind}: expected an (N, C, H, W) input, got {getattr(x, 'shape', x)!r}")
    if x.field.layout != (-2, -1):
        raise HandlerError(f"{call.kind}: input's spatial axes are not its last two dims")
    return x.field, x


# --- ops that keep the geometry -------------------------------------------------------------------------


def neutral(call: OpCall) -> Optional[NodeField]:
    """Same field as the (first) input: pointwise activations, normalisation with fixed statistics, copies."""
    spatial = call.spatial
    return spatial[0].field if spatial else None


NEUTRAL_OPS = (
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
    # dropout (identity in eval) and copies
    "aten.dropout", "aten.dropout_", "aten.feature_dropout", "aten.feature_dropout_", "aten.native_dropout",
    "aten.alpha_dropout", "aten.feature_alpha_dropout",
    "aten.clone", "aten.contiguous", "aten.detach", "aten.detach_", "aten.alias", "aten._to_copy", "aten.to",
    "aten.type_as", "aten.copy", "aten.copy_", "aten.lift_fresh_copy", "aten.zeros_like", "aten.ones_like",
    "aten.empty_like", "aten.full_like", "aten.fill_", "aten.zero_",
    # pointwise unary maths
    "aten.abs", "aten.neg", "aten.exp", "aten.log", "aten.sqrt", "aten.rsqrt", "aten.pow", "aten.clamp",
    "aten.clamp_", "aten.clamp_min", "aten.clamp_min_", "aten.clamp_max", "aten.reciprocal", "aten.sign",
    "aten.square", "aten.erf", "aten.floor", "aten.round", "aten.sin", "aten.cos",
)
for _k in NEUTRAL_OPS:
    register_op_handler(_k, neutral)


@handles("_operator.getitem")
def getitem(call: OpCall) -> Optional[NodeField]:
    """One element of a tuple output (max_pool2d_with_indices, native_batch_norm): same field."""
    return neutral(call)


# --- several paths into one node ------------------------------------------------------------------------


@handles(
    "aten.add", "aten.add_", "aten.sub", "aten.sub_", "aten.rsub", "aten.mul", "aten.mul_", "aten.div", "aten.div_",
    "aten.maximum", "aten.minimum", "aten.where", "aten.addcmul", "aten.addcdiv", "aten.lerp", "aten.cat",
    "aten.stack", "aten.sum_to_size",
)
def merge(call: OpCall) -> Optional[NodeField]:
    """Element-wise ops and channel concatenation: every path reaches every output feature.

    Inputs pooled to 1×1 broadcast against the map (x * gate, image pooling): they bring global context.
    """
    spatial = call.spatial
    if not spatial:
        return None
    layout = spatial[0].field.layout  # type: ignore[union-attr]
    folds = {s.field.folded for s in spatial}  # type: ignore[union-attr]
    if layout is None and len(folds) == 1 and None not in folds:  # rows of one fold (a bias add)
        fields = [s.field for s in spatial]
        axes = [G.merge([f.axes[a] for f in fields], fields[0].axes[a].size) for a in (0, 1)]  # type: ignore[union-attr]
        return replace(fields[0], h=axes[0], w=axes[1])  # type: ignore[arg-type]
    if call.out_shape is None or layout is None or len(call.out_shape) < 2:
        return _lost([s.field for s in spatial])  # type: ignore[misc]
    if call.kind in ("aten.cat", "aten.stack"):
        dim = int(call.arg(1, "dim", 0))
        rank = len(spatial[0].shape)
        if dim % rank in (layout[0] % rank, layout[1] % rank):
            raise HandlerError(f"{call.kind}: concatenation along a spatial axis (dim {dim}) is not modelled")
    sizes = (call.out_size(0, layout), call.out_size(1, layout))
    fields = [s.field for s in spatial if s.field is not None]
    axes = [G.merge([G.broadcast(f.axes[a], sizes[a]) for f in fields], sizes[a]) for a in (0, 1)]
    return NodeField(axes[0], axes[1], layout)


def _lost(fields: Sequence[NodeField]) -> NodeField:
    """Spatial layout gone (flatten, matmul over positions): every output mixes every position → global."""
    axes = [G.merge([G.global_pool(f.axes[a]) for f in fields], 1) for a in (0, 1)]
    return NodeField(axes[0], axes[1], None)


# --- sliding windows ------------------------------------------------------------------------------------


def _conv_padding(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    if padding == "valid":
        return (0, 0)
    if padding == "same":  # PyTorch puts the odd pixel of 'same' padding on the far side
        return tuple((d * (k - 1)) // 2 for k, d in zip(kernel, dilation))  # type: ignore[return-value]
    return _ints(padding, (0, 0))


def _window(call: OpCall, x: NodeField, kernel, stride, padding, dilation) -> NodeField:
    return x.map(lambda f, a: G.window(f, kernel[a], stride[a], padding[a], dilation[a], call.out_size(a)))


@handles("aten.conv2d", "aten.convolution", "aten._convolution", "aten.conv_transpose2d", "aten.cudnn_convolution")
def conv(call: OpCall) -> NodeField:
    """Convolution (stride, padding, dilation, groups, non-square kernels) and transposed convolution.

    Groups do not change the geometry: every output channel still reads the same window.
    """
    x, _ = _spatial_4d(call)
    weight = call.args[1]
    if not isinstance(weight, TensorArg) or len(weight.shape) != 4:
        raise HandlerError(f"{call.kind}: expected a 4-d weight, got {getattr(weight, 'shape', weight)!r}")
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    if call.kind == "aten.conv_transpose2d":
        stride, padding = _ints(call.arg(3, "stride", 1), (1, 1)), _ints(call.arg(4, "padding", 0), (0, 0))
        dilation, transposed = _ints(call.arg(7, "dilation", 1), (1, 1)), True
    elif call.kind == "aten.conv2d":
        stride, dilation = _ints(call.arg(3, "stride", 1), (1, 1)), _ints(call.arg(5, "dilation", 1), (1, 1))
        padding, transposed = _conv_padding(call.arg(4, "padding", 0), kernel, dilation), False
    else:  # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
        stride, padding = _ints(call.arg(3, "stride", 1), (1, 1)), _ints(call.arg(4, "padding", 0), (0, 0))
        dilation, transposed = _ints(call.arg(5, "dilation", 1), (1, 1)), bool(call.arg(6, "transposed", False))
    if transposed:
        return x.map(
            lambda f, a: G.transposed_window(f, kernel[a], stride[a], padding[a], dilation[a], call.out_size(a))
        )
    return _window(call, x, kernel, stride, padding, dilation)


def _pool_window(call: OpCall, x: NodeField, kernel, stride, padding, dilation) -> NodeField:
    """A pooling window; one that covers a whole axis and leaves one value is global pooling
    (``F.avg_pool2d(x, x.shape[2:])``, as in BiSeNet): global context, not a finite field."""

    def one(f: AxisField, a: int) -> AxisField:
        extent = dilation[a] * (kernel[a] - 1) + 1
        # (unpadded and over a real map: a 3×3 pool of a 1-pixel map at a tiny crop is still an ordinary layer)
        if call.out_size(a) == 1 and padding[a] == 0 and f.size > 1 and extent >= f.size:
            return G.global_pool(f)
        return G.window(f, kernel[a], stride[a], padding[a], dilation[a], call.out_size(a))

    return x.map(one)


@handles("aten.max_pool2d", "aten.max_pool2d_with_indices")
def max_pool(call: OpCall) -> NodeField:
    x, _ = _spatial_4d(call)
    kernel = _ints(call.arg(1, "kernel_size"), (1, 1))
    stride = _ints(call.arg(2, "stride", []), kernel)
    padding = _ints(call.arg(3, "padding", 0), (0, 0))
    dilation = _ints(call.arg(4, "dilation", 1), (1, 1))
    return _pool_window(call, x, kernel, stride, padding, dilation)


@handles("aten.avg_pool2d")
def avg_pool(call: OpCall) -> NodeField:
    x, _ = _spatial_4d(call)
    kernel = _ints(call.arg(1, "kernel_size"), (1, 1))
    stride = _ints(call.arg(2, "stride", []), kernel)
    padding = _ints(call.arg(3, "padding", 0), (0, 0))
    return _pool_window(call, x, kernel, stride, padding, (1, 1))


@handles("aten.adaptive_avg_pool2d", "aten._adaptive_avg_pool2d", "aten.adaptive_max_pool2d")
def adaptive_pool(call: OpCall) -> NodeField:
    """Adaptive pooling: to one bin it is global context (image pooling, PPM scale 1), else a bin window."""
    x, _ = _spatial_4d(call)
    return x.map(lambda f, a: G.adaptive_pool(f, call.out_size(a)))


@handles("aten.mean", "aten.sum", "aten.amax", "aten.amin", "aten.max", "aten.min", "aten.logsumexp", "aten.std", "aten.var")
def reduce(call: OpCall) -> Optional[NodeField]:
    """Reductions: over a spatial dim that axis becomes global; over channels the geometry is unchanged."""
    x = call.args[0]
    if not isinstance(x, TensorArg) or x.field is None:
        return None
    layout = x.field.layout
    dims = call.arg(1, "dim", None)
    if isinstance(dims, int):
        dims = [dims]
    rank = len(x.shape)
    if layout is None:
        return x.field
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        return _lost([x.field])
    if not isinstance(dims, (list, tuple)) or not all(isinstance(d, int) for d in dims):
        raise HandlerError(f"{call.kind}: unexpected dim argument {dims!r}")
    reduced = {d % rank for d in dims}
    keepdim = bool(call.arg(2, "keepdim", False))
    spatial_dims = (layout[0] % rank, layout[1] % rank)
    axes = [G.global_pool(x.field.axes[a]) if spatial_dims[a] in reduced else x.field.axes[a] for a in (0, 1)]
    if keepdim:
        new_layout: Layout = layout
    elif any(d in reduced for d in spatial_dims):
        return NodeField(axes[0], axes[1], None)
    else:  # dims removed before H/W shift their negative index? no: negative indices from the end are stable
        new_layout = layout
    return NodeField(axes[0], axes[1], new_layout)


# --- interpolation --------------------------------------------------------------------------------------

_TAPS = {
    "aten.upsample_nearest2d": 1,
    "aten._upsample_nearest_exact2d": 1,
    "aten.upsample_bilinear2d": 2,
    "aten._upsample_bilinear2d_aa": 2,
    "aten.upsample_bicubic2d": 4,
    "aten._upsample_bicubic2d_aa": 4,
}


@handles(*_TAPS)
def upsample(call: OpCall) -> NodeField:
    """Interpolation to the measured output size: the jump shrinks by out/in, each output reads 1/2/4 taps."""
    x, _ = _spatial_4d(call)
    taps = _TAPS[call.kind]
    align = bool(call.arg(2, "align_corners", False)) if taps > 1 else False
    return x.map(lambda f, a: G.resample(f, call.out_size(a), taps, align))


@handles("aten.constant_pad_nd", "aten.reflection_pad2d", "aten.replication_pad2d", "aten.pad")
def pad(call: OpCall) -> NodeField:
    """Explicit padding: feature 0 now sits ``left`` features before the old one (a 1-tap window)."""
    x, _ = _spatial_4d(call)
    amounts = list(call.arg(1, "pad", []))
    left = (amounts[2] if len(amounts) >= 4 else 0, amounts[0] if amounts else 0)  # pad is (wl, wr, ht, hb)
    return x.map(lambda f, a: G.window(f, 1, 1, left[a], 1, call.out_size(a)))


@handles("aten.slice")
def slice_(call: OpCall) -> NodeField:
    """Slicing channels keeps the geometry; slicing a spatial axis shifts feature 0 and can stride it."""
    x = call.args[0]
    if not isinstance(x, TensorArg) or x.field is None:
        raise HandlerError("aten.slice: no input field")
    layout = x.field.layout
    rank = len(x.shape)
    dim = int(call.arg(1, "dim", 0)) % rank
    if layout is None or dim not in (layout[0] % rank, layout[1] % rank):
        return x.field
    axis = 0 if dim == layout[0] % rank else 1
    start = call.arg(2, "start", 0) or 0
    step = int(call.arg(4, "step", 1) or 1)
    size_in = x.shape[dim]
    start = max(0, min(int(start) + (size_in if int(start) < 0 else 0), size_in))
    out = int(call.out_shape[dim]) if call.out_shape else 0
    axes = list(x.field.axes)
    axes[axis] = G.window(axes[axis], 1, step, -start, 1, out)
    return NodeField(axes[0], axes[1], layout)


# --- reshaping ------------------------------------------------------------------------------------------


@handles(
    "aten.view", "aten.reshape", "aten._unsafe_view", "aten.flatten", "aten.unflatten", "aten.squeeze",
    "aten.squeeze_", "aten.unsqueeze", "aten.unsqueeze_", "aten.expand", "aten.split", "aten.split_with_sizes",
    "aten.chunk", "aten.unbind", "aten.select", "aten.view_as", "aten.reshape_as", "aten.expand_as",
)
def reshape(call: OpCall) -> Optional[NodeField]:
    """Reshapes keep the geometry while H and W survive as the same trailing dims; otherwise it is lost."""
    x = call.args[0]
    if not isinstance(x, TensorArg) or x.field is None:
        return None
    layout = x.field.layout
    out = call.out_shape
    if out is None:
        return _lost([x.field])
    if layout is None:
        if x.field.folded is not None and tuple(out) == x.field.folded[0]:  # unfold: H and W are back
            return replace(x.field, layout=x.field.folded[1], folded=None)
        return x.field if x.field.folded is None or out[-1:] == x.shape[-1:] else _lost([x.field])
    keep = -min(layout)  # number of trailing dims from the first spatial one
    if len(out) >= keep and len(x.shape) >= keep and tuple(out[-keep:]) == tuple(x.shape[-keep:]):
        return x.field
    if -1 not in layout and len(out) >= 1 and out[-1] == x.shape[-1]:
        # channels-last rows for a matmul: positions folded into rows, channels kept as the last dim
        return replace(x.field, layout=None, folded=(tuple(x.shape), layout))
    return _lost([x.field])


@handles("aten.permute", "aten.transpose", "aten.t", "aten.movedim")
def permute(call: OpCall) -> Optional[NodeField]:
    """Axis permutations move H and W (NCHW → NHWC for a channels-last LayerNorm): track where they go."""
    x = call.args[0]
    if not isinstance(x, TensorArg) or x.field is None or x.field.layout is None:
        return x.field if isinstance(x, TensorArg) else None
    rank = len(x.shape)
    if call.kind == "aten.permute":
        order = [int(d) % rank for d in call.arg(1, "dims")]
    else:
        if call.kind == "aten.t":
            d0, d1 = 0, 1
        else:
            d0, d1 = int(call.arg(1, "dim0")) % rank, int(call.arg(2, "dim1")) % rank
        order = list(range(rank))
        order[d0], order[d1] = order[d1], order[d0]
    h, w = (x.field.layout[0] % rank, x.field.layout[1] % rank)
    new = (order.index(h) - rank, order.index(w) - rank)
    return replace(x.field, layout=new)


@handles("aten.linear", "aten.matmul", "aten.bmm", "aten.mm", "aten.addmm", "aten.baddbmm", "aten.einsum")
def matmul(call: OpCall) -> Optional[NodeField]:
    """A linear map over the last dim: neutral when that dim is channels, global when it is a spatial one."""
    spatial = call.spatial
    if not spatial:
        return None
    fields = [s.field for s in spatial]
    if len(spatial) == 1:  # data times a weight: channels mixed, positions untouched if they are not the last dim
        f = fields[0]
        data_arg = 1 if call.kind in ("aten.addmm", "aten.baddbmm") else 0  # addmm(bias, data, weight)
        contracted_last = call.kind != "aten.einsum" and call.args[data_arg] is spatial[0]
        if f is not None and contracted_last and (f.folded is not None or (f.layout is not None and -1 not in f.layout)):
            return f
    return _lost(fields)  # type: ignore[arg-type]


@handles("aten._softmax", "aten.softmax", "aten._log_softmax", "aten.log_softmax")
def softmax(call: OpCall) -> Optional[NodeField]:
    """Softmax over channels (class scores) keeps the geometry; over a spatial dim it is global."""
    x = call.args[0]
    if not isinstance(x, TensorArg) or x.field is None:
        return None
    layout = x.field.layout
    rank = len(x.shape)
    dim = int(call.arg(1, "dim", -1)) % rank
    if layout is None or dim not in (layout[0] % rank, layout[1] % rank):
        return x.field
    return _lost([x.field])
