"""One small handler per ATen op kind: how the op changes the field of its input, per axis, and where the
image's rows and columns sit in its output (:mod:`atrous_advisor.graph.layout`).

The registry maps an op kind (``"aten.conv2d"``, the op's name without overload) to a pure function
``handler(call: OpCall) -> NodeField``. Ops that keep the geometry are explicit ``neutral`` entries. A
handler that cannot follow a call raises :class:`HandlerError`; an op with no entry is never treated as
identity. Either way the engine marks that node — and everything computed from it — *unknown*.

Extend it for your own ops::

    from atrous_advisor.graph import register_op_handler, neutral
    register_op_handler("mylib.fancy_act", neutral)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Callable, Optional, Sequence

from atrous_advisor.geometry import fields as G
from atrous_advisor.geometry.fields import AxisField
from atrous_advisor.graph import aten
from atrous_advisor.graph import layout as L

Layout = Optional[tuple[int, int]]  # dims of H and W as negative indices; None when they are not two whole dims
# per axis, for a strided slice x[..., o::k, ...]: (start before slicing, jump before slicing, k, o)
Phase = Optional[tuple[Fraction, Fraction, int, int]]


@dataclass(frozen=True)
class NodeField:
    """The field of one node: one AxisField per spatial axis, and where those axes sit in the tensor."""

    h: AxisField
    w: AxisField
    dims: L.Dims = ()
    phase: tuple[Phase, Phase] = (None, None)
    # indices (in ``OpCall.spatial`` order) of inputs this op mixed over all their positions (the keys and
    # values of global attention): their own stride does not reach the output as a feature grid
    global_args: frozenset = frozenset()

    @property
    def axes(self) -> tuple[AxisField, AxisField]:
        return (self.h, self.w)

    @property
    def layout(self) -> Layout:
        """(dim of H, dim of W) when the node is a plain map (NCHW, NHWC, …), else None (token forms)."""
        return L.spatial_dims(self.dims)

    def map(self, fn: Callable[[AxisField, int], AxisField]) -> "NodeField":
        """Apply ``fn(axis_field, axis_index)`` to both axes (layout unchanged)."""
        return NodeField(fn(self.h, 0), fn(self.w, 1), self.dims)


@dataclass(frozen=True)
class Unknown:
    """A node whose field cannot be derived: the op, the module and why. Every node computed from it is
    unknown too (the same object travels, so the report names the first cause)."""

    op: str
    module: str
    reason: str

    def line(self) -> str:
        return f"{self.op.split('.', 1)[-1]} in {self.module or '<root>'}: {self.reason}"


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
        return aten.arg(self.args, self.kwargs, index, name, default)

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
    """The handler cannot follow this call (arguments it does not model, a layout it cannot track)."""


def register_op_handler(kind: str, handler: Handler) -> None:
    """Add or replace the handler of an op kind (``"aten.my_op"`` or ``"module.function"``)."""
    OP_HANDLERS[kind] = handler


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for k in kinds:
            register_op_handler(k, fn)
        return fn

    return deco


def _data(call: OpCall, index: int = 0) -> tuple[NodeField, TensorArg, L.Dims]:
    """The data argument ``index`` with its layout checked against its real shape."""
    x = call.args[index] if index < len(call.args) else None
    if not isinstance(x, TensorArg) or x.field is None:
        raise HandlerError(f"argument {index} carries no field")
    dims = L.fit(x.field.dims, x.shape)
    if dims is None:
        raise HandlerError(f"layout {x.field.dims} does not match the shape {x.shape}")
    return x.field, x, dims


def _with(field: NodeField, dims: Optional[L.Dims], why: str = "") -> NodeField:
    if dims is None:
        raise HandlerError(why or "the rows and columns of the map cannot be followed")
    return NodeField(field.h, field.w, L.normalize(dims), field.phase)


def _spatial_4d(call: OpCall) -> tuple[NodeField, TensorArg]:
    f, x, dims = _data(call)
    if len(x.shape) < 3 or L.spatial_dims(dims) != (-2, -1):
        raise HandlerError("input's spatial axes are not its last two dims")
    return NodeField(f.h, f.w, dims), x


def _canonical_out(call: OpCall, axes: Sequence[AxisField]) -> NodeField:
    assert call.out_shape is not None
    return NodeField(axes[0], axes[1], L.canonical(call.out_shape))


# --- pooling over a set of positions (attention, softmax, reductions) ----------------------------------


def _round(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def block(f: AxisField, extent: int) -> AxisField:
    """Every feature mixed with the ``extent`` features of its block (a window of windowed attention): the
    field grows by the block, centred; the grid of features is unchanged."""
    if extent <= 1:
        return f
    lo = -((extent - 1) // 2)
    grow = (extent - 1) * f.jump
    return replace(
        f,
        rf_max=None if f.rf_max is None else f.rf_max + grow,
        rf_min=None if f.rf_min is None else f.rf_min + grow,
        support=f.support.spread(_round(t * f.jump) for t in range(lo, lo + extent)),
    )


def pool_axis(f: AxisField, factors: Sequence[L.Factor]) -> AxisField:
    """The axis after mixing over the positions that ``factors`` enumerate: global when they span the whole
    axis (global attention, also at a dilation as in MobileViT), else the block they cover (a window)."""
    if not factors:
        return f
    span, step = L.extent(factors)
    if span + step - 1 >= f.size:
        return G.global_pool(f)
    return block(f, span)


def _pooled(field: NodeField, dims: Sequence[L.Dim]) -> list[AxisField]:
    """Both axes of ``field`` mixed over the positions found in ``dims``."""
    return [pool_axis(field.axes[a], [x for d in dims for x in L.axis_factors(d, tag)]) for a, tag in enumerate(L.AXIS_TAGS)]


def _merge_axes(parts: Sequence[Sequence[AxisField]]) -> list[AxisField]:
    out = []
    for a in (0, 1):
        size = max(p[a].size for p in parts)
        out.append(G.merge([G.broadcast(p[a], size) for p in parts], size))
    return out


# --- ops that keep the geometry -------------------------------------------------------------------------


def neutral(call: OpCall) -> Optional[NodeField]:
    """Same field as the (first) input: pointwise activations, normalisation with fixed statistics, copies."""
    spatial = call.spatial
    return spatial[0].field if spatial else None


NEUTRAL_OPS = tuple(sorted(aten.NEUTRAL))
for _k in NEUTRAL_OPS:
    register_op_handler(_k, neutral)


@handles("_operator.getitem")
def getitem(call: OpCall) -> Optional[NodeField]:
    """One element of a tuple output (max_pool2d_with_indices, native_batch_norm, unbind): same field."""
    spatial = call.spatial
    if not spatial:
        return None
    f = spatial[0].field
    if call.out_shape is None:
        return f
    dims = L.fit(f.dims, call.out_shape)  # type: ignore[union-attr]
    return _with(f, dims, "an element of a split along the rows or columns")  # type: ignore[arg-type]


@handles("aten.as_strided", "aten.as_strided_")
def restride(call: OpCall) -> NodeField:
    """A re-stride to the same shape (a channels-last copy after pooling): the values are the same."""
    f, x, dims = _data(call)
    if call.out_shape is None or tuple(call.out_shape) != tuple(x.shape):
        raise HandlerError(f"as_strided {tuple(x.shape)} → {call.out_shape} reads the memory in another order")
    return NodeField(f.h, f.w, dims, f.phase)


@handles("aten.roll")
def roll(call: OpCall) -> NodeField:
    """Shifted windows (Swin) roll the map, attend in windows, and roll back: the field of the windows is
    modelled centred, so the shift does not change its extent; the cyclic wrap is masked by the model."""
    f, x, dims = _data(call)
    return _with(f, dims)


# --- several paths into one node ------------------------------------------------------------------------


def _out_dims(inputs: Sequence[tuple[NodeField, L.Dims, tuple[int, ...]]], out_shape: Sequence[int], skip: int = -1) -> L.Dims:
    """Per output dim, the factors of the inputs that are not broadcast along it (inputs aligned right)."""
    rank = len(out_shape)
    dims: list[L.Dim] = []
    for i in range(rank):
        if i == skip:
            dims.append(L.plain(int(out_shape[i])))
            continue
        chosen: Optional[L.Dim] = None
        unit: L.Dim = ()
        for _, d, shape in inputs:
            j = i - (rank - len(shape))
            if j < 0:
                continue
            if int(shape[j]) == int(out_shape[i]) and L.has_tokens(d[j]):
                if chosen is not None and L.normalize((chosen,)) != L.normalize((d[j],)):
                    raise HandlerError(f"inputs disagree on where the positions are in dim {i}")
                chosen = chosen or d[j]
            elif int(shape[j]) == 1 and L.has_tokens(d[j]):
                unit = unit + d[j]  # a pooled axis broadcast against the others
        dims.append(chosen if chosen is not None else (L.plain(int(out_shape[i])) + unit if int(out_shape[i]) == 1 else L.plain(int(out_shape[i]))))
    return tuple(dims)


def _phases(fields: Sequence[NodeField]) -> list[Optional[AxisField]]:
    """Per axis, the space-to-depth block when the inputs are all ``k`` phases of one strided slice
    (Swin's patch merging: x[0::2, 0::2], x[1::2, 0::2], ...): one k-wide window, not misaligned paths."""
    out: list[Optional[AxisField]] = []
    for a in (0, 1):
        phases = [f.phase[a] for f in fields]
        if any(p is None for p in phases) or len({p[:3] for p in phases}) != 1:  # type: ignore[index]
            out.append(None)
            continue
        start, jump, k, _ = phases[0]  # type: ignore[misc]
        if {p[3] for p in phases} != set(range(k)):  # type: ignore[index]
            out.append(None)
            continue
        axes = [f.axes[a] for f in fields]
        merged = G.merge(axes, axes[0].size)
        grow = (k - 1) * jump
        out.append(
            replace(
                merged,
                start=start + Fraction(k - 1, 2) * jump,
                rf_max=None if merged.rf_max is None else max(x.rf_max for x in axes if x.rf_max is not None) + grow,
                rf_min=None if merged.rf_min is None else min(x.rf_min for x in axes if x.rf_min is not None) + grow,
                misaligned=any(x.misaligned for x in axes),
            )
        )
    return out


@handles(*sorted(aten.MERGE), "aten.sum_to_size")
def merge(call: OpCall) -> Optional[NodeField]:
    """Element-wise ops and concatenation: every path reaches every output feature.

    Inputs pooled to 1×1 broadcast against the map (x * gate, image pooling): they bring global context.
    Prepending a class token to a token dim (``cat([cls, x], 1)``) keeps the positions, with one extra
    entry in front.
    """
    spatial = call.spatial
    if not spatial or call.out_shape is None:
        return None
    inputs: list[tuple[NodeField, L.Dims, tuple[int, ...]]] = []
    for s in spatial:
        assert s.field is not None  # call.spatial holds the inputs that carry a field
        d = L.fit(s.field.dims, s.shape)
        if d is None:
            raise HandlerError(f"layout {s.field.dims} does not match the shape {s.shape}")
        inputs.append((s.field, d, tuple(s.shape)))
    out_shape = tuple(int(s) for s in call.out_shape)
    fields = [f for f, _, _ in inputs]
    skip = -1
    extra: L.Dim = ()
    if call.kind == "aten.cat":
        rank = len(inputs[0][2])
        dim = int(call.arg(1, "dim", 0)) % max(rank, 1)
        skip = dim
        tokens = [d[dim] for _, d, _ in inputs if L.has_tokens(d[dim])]
        if tokens:
            tensors = [t for t in _leaves(call.arg(0, "tensors", [])) if isinstance(t, TensorArg)]
            data = [i for i, t in enumerate(tensors) if t.field is not None]
            if len(data) != 1 or len(tokens) != 1 or data[0] != len(tensors) - 1:
                raise HandlerError(f"concatenation along a dim that holds positions (dim {dim}) is not modelled")
            before = sum(int(t.shape[dim]) for t in tensors[:-1])
            extra = (("+", before, 0),) + tokens[0]
    elif call.kind == "aten.stack":
        dim = int(call.arg(1, "dim", 0)) % (len(out_shape))
        # the new dim is one plain Dim (a tuple of factors), not a bare factor
        inputs = [(f, d[:dim] + (L.plain(len(spatial)),) + d[dim:], out_shape) for f, d, _ in inputs]
        dims = _out_dims(inputs, out_shape)
        merged = _merge_axes([f.axes for f in fields])
        return NodeField(merged[0], merged[1], dims=L.normalize(dims))
    dims = _out_dims(inputs, out_shape, skip)
    if extra:
        dims = dims[:skip] + (L.normalize((extra,))[0],) + dims[skip + 1 :]
    axes = _merge_axes([f.axes for f in fields])
    if call.kind == "aten.cat" and len(fields) > 1:
        blocks = _phases(fields)
        axes = [b if b is not None else axes[a] for a, b in enumerate(blocks)]
    return NodeField(axes[0], axes[1], L.normalize(dims))


def _leaves(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _leaves(v)]
    return [value]


# --- sliding windows ------------------------------------------------------------------------------------


@handles(*sorted(aten.CONV | aten.CONV_TRANSPOSE))
def conv(call: OpCall) -> NodeField:
    """Convolution (stride, padding, dilation, groups, non-square kernels) and transposed convolution.

    Groups do not change the geometry: every output channel still reads the same window.
    """
    geo = aten.conv_args(call.kind, call.args, call.kwargs)
    if geo is None:
        raise HandlerError(f"expected a 4-d weight, got {getattr(call.args[1], 'shape', call.args[1])!r}")
    if geo.kernel == (1, 1) and geo.stride == (1, 1) and geo.padding == (0, 0) and not geo.transposed:
        # a pointwise conv mixes channels only: it runs on any layout (MobileViTV2's convs over patches)
        f, x_arg, dims = _data(call)
        if call.out_shape is not None and len(dims) >= 3:
            return NodeField(f.h, f.w, dims[:-3] + (L.plain(int(call.out_shape[-3])),) + dims[-2:], f.phase)
    x, _ = _spatial_4d(call)
    if geo.transposed:
        axes = [G.transposed_window(x.axes[a], geo.kernel[a], geo.stride[a], geo.padding[a], geo.dilation[a], call.out_size(a)) for a in (0, 1)]
    else:
        axes = [G.window(x.axes[a], geo.kernel[a], geo.stride[a], geo.padding[a], geo.dilation[a], call.out_size(a)) for a in (0, 1)]
    return _canonical_out(call, axes)


@handles(*sorted(aten.POOL))
def pool(call: OpCall) -> NodeField:
    """Max/avg pooling. A window that covers a whole axis and leaves one value is global pooling
    (``F.avg_pool2d(x, x.shape[2:])``, as in BiSeNet): global context, not a finite field."""
    x, _ = _spatial_4d(call)
    geo = aten.pool_args(call.kind, call.args, call.kwargs)
    assert geo is not None

    def one(f: AxisField, a: int) -> AxisField:
        span = geo.dilation[a] * (geo.kernel[a] - 1) + 1
        # (unpadded and over a real map: a 3×3 pool of a 1-pixel map at a tiny crop is still an ordinary layer)
        if call.out_size(a) == 1 and geo.padding[a] == 0 and f.size > 1 and span >= f.size:
            return G.global_pool(f)
        return G.window(f, geo.kernel[a], geo.stride[a], geo.padding[a], geo.dilation[a], call.out_size(a))

    return _canonical_out(call, [one(x.axes[a], a) for a in (0, 1)])


@handles(*sorted(aten.ADAPTIVE_POOL))
def adaptive_pool(call: OpCall) -> NodeField:
    """Adaptive pooling: to one bin it is global context (image pooling, PPM scale 1), else a bin window."""
    x, _ = _spatial_4d(call)
    return _canonical_out(call, [G.adaptive_pool(x.axes[a], call.out_size(a)) for a in (0, 1)])


@handles(*sorted(aten.REDUCE))
def reduce(call: OpCall) -> Optional[NodeField]:
    """Reductions: over positions those axes mix (global, or a window's block); over channels nothing
    changes. Removed dims keep their pooled axes as size-1 factors, so a later view can place them."""
    f, x, dims = _data(call)
    decoded = aten.reduce_dims(call.kind, call.args, call.kwargs, len(x.shape))
    if decoded is None:
        raise HandlerError(f"unexpected dim argument {call.arg(1, 'dim')!r}")
    reduced, keepdim = decoded
    gone = [dims[i] for i in sorted(reduced)]
    axes = _pooled(f, gone)
    units: L.Dim = tuple((tag, 1, 1) for tag in L.AXIS_TAGS if any(L.axis_factors(d, tag) for d in gone))
    if keepdim:
        new = [tuple((t, 1, 1) for t in L.AXIS_TAGS if L.axis_factors(d, t)) if i in reduced else d for i, d in enumerate(dims)]
    else:
        new = [d for i, d in enumerate(dims) if i not in reduced]
        if units:
            if new:
                new[-1] = new[-1] + units
            else:
                return NodeField(axes[0], axes[1], ())
    return NodeField(axes[0], axes[1], L.normalize(tuple(new)))


# --- interpolation, padding, slicing --------------------------------------------------------------------


@handles(*sorted(aten.UPSAMPLE_TAPS))
def upsample(call: OpCall) -> NodeField:
    """Interpolation to the measured output size: the jump shrinks by out/in, each output reads 1/2/4 taps."""
    x, _ = _spatial_4d(call)
    taps = aten.UPSAMPLE_TAPS[call.kind]
    align = aten.upsample_align(call.kind, call.args, call.kwargs)
    return _canonical_out(call, [G.resample(x.axes[a], call.out_size(a), taps, align) for a in (0, 1)])


@handles(*sorted(aten.PAD))
def pad(call: OpCall) -> NodeField:
    """Explicit padding of any dims (NCHW maps, Swin's NHWC windows): feature 0 now sits ``left`` features
    before the old one (a 1-tap window). Padding a dim that mixes positions with other factors is not
    followed."""
    f, x, dims = _data(call)
    amounts = aten.pad_amounts(call.args, call.kwargs)
    rank = len(x.shape)
    axes = list(f.axes)
    new = list(dims)
    for k in range(len(amounts) // 2):
        left, right = amounts[2 * k], amounts[2 * k + 1]
        i = rank - 1 - k
        if left == 0 and right == 0:
            continue
        d = dims[i]
        if not L.has_tokens(d):
            new[i] = L.plain(L.dim_size(d) + left + right)
            continue
        if len(d) != 1 or d[0][0] not in L.AXIS_TAGS or d[0][2] != 1:
            raise HandlerError(f"padding dim {i}, which holds {d}")
        a = L.AXIS_TAGS.index(d[0][0])
        size = d[0][1] + left + right
        axes[a] = G.window(axes[a], 1, 1, left, 1, size)
        new[i] = ((d[0][0], size, 1),)
    return NodeField(axes[0], axes[1], tuple(new))


@handles(*sorted(aten.SLICE))
def slice_(call: OpCall) -> NodeField:
    """Slicing channels keeps the geometry; slicing an axis shifts feature 0 and can stride it; slicing off
    the extra tokens in front of the positions (``x[:, 1:]`` after a class token) leaves the positions."""
    f, x, dims = _data(call)
    rank = len(x.shape)
    dim = int(call.arg(1, "dim", 0)) % rank
    d = dims[dim]
    size_in = int(x.shape[dim])
    start = call.arg(2, "start", 0) or 0
    end = call.arg(3, "end", None)
    step = int(call.arg(4, "step", 1) or 1)
    start = max(0, min(int(start) + (size_in if int(start) < 0 else 0), size_in))
    out = int(call.out_shape[dim]) if call.out_shape else 0
    if not L.has_tokens(d):
        return NodeField(f.h, f.w, dims[:dim] + (L.plain(out),) + dims[dim + 1 :], f.phase)
    if d and d[0][0] == "+":
        extra = d[0][1]
        if start == extra and step == 1 and out == size_in - extra:
            return NodeField(f.h, f.w, dims[:dim] + (d[1:],) + dims[dim + 1 :])
        if out == size_in and step == 1:
            return NodeField(f.h, f.w, dims, f.phase)
        raise HandlerError(f"slice [{start}:{end}:{step}] of a token dim with {extra} extra tokens")
    if len(d) != 1 or d[0][0] not in L.AXIS_TAGS or d[0][2] != 1:
        if out == size_in and step == 1:
            return NodeField(f.h, f.w, dims, f.phase)
        raise HandlerError(f"slice of dim {dim}, which holds {d}")
    tag = d[0][0]
    a = L.AXIS_TAGS.index(tag)
    axes = list(f.axes)
    phase = list(f.phase)
    if step > 1:
        phase[a] = (axes[a].start, axes[a].jump, step, start)
    elif out != size_in:
        phase[a] = None
    axes[a] = G.window(axes[a], 1, step, -start, 1, out)
    return NodeField(axes[0], axes[1], dims[:dim] + (((tag, out, 1),),) + dims[dim + 1 :], (phase[0], phase[1]))


# --- reshaping ------------------------------------------------------------------------------------------


@handles(*sorted(aten.RESHAPE))
def reshape(call: OpCall) -> Optional[NodeField]:
    """Reshapes regroup the factors of each dim (``flatten(2)`` into tokens, ``view(B, H, W, C)`` back,
    Swin's window partition and reverse); a reshape whose boundaries split a position factor unevenly loses
    the layout, and the node is unknown."""
    f, x, dims = _data(call)
    if call.out_shape is None:
        raise HandlerError("no output shape")
    return _with(f, L.reshape(dims, call.out_shape), f"reshape {tuple(x.shape)} → {tuple(call.out_shape)} splits a row or column factor unevenly")


@handles(*sorted(aten.EXPAND))
def expand(call: OpCall) -> NodeField:
    """Broadcasting copies along size-1 dims: positions stay where they were; new entries are plain."""
    f, x, dims = _data(call)
    out = tuple(int(s) for s in call.out_shape or ())
    if call.kind == "aten.repeat":
        reps = [int(r) for r in call.arg(1, "repeats", [])]
        lead = len(reps) - len(dims)
        new = [L.plain(r) for r in reps[:lead]]
        for d, r in zip(dims, reps[lead:]):
            if r != 1 and L.has_tokens(d):
                raise HandlerError("repeat along a dim that holds positions")
            new.append(d if r == 1 else L.plain(L.dim_size(d) * r))
        return NodeField(f.h, f.w, tuple(new))
    lead = len(out) - len(dims)
    new = [L.plain(s) for s in out[:lead]]
    for d, s in zip(dims, out[lead:]):
        new.append(d if L.dim_size(d) == s else L.plain(s))  # copies of one (pooled) value: no positions
    return NodeField(f.h, f.w, L.normalize(tuple(new)))


@handles(*sorted(aten.PERMUTE))
def permute(call: OpCall) -> NodeField:
    """Axis permutations move H and W (NCHW → NHWC for a channels-last LayerNorm, tokens ↔ channels)."""
    f, x, dims = _data(call)
    rank = len(x.shape)
    if call.kind == "aten.permute":
        order = [int(d) % rank for d in call.arg(1, "dims")]
    elif call.kind == "aten.movedim":
        src, dst = call.arg(1, "source"), call.arg(2, "destination")
        src = [src] if isinstance(src, int) else list(src)
        dst = [dst] if isinstance(dst, int) else list(dst)
        order = [-1] * rank
        for s, t in zip(src, dst):
            order[int(t) % rank] = int(s) % rank
        rest = iter(i for i in range(rank) if i not in {int(s) % rank for s in src})
        order = [o if o >= 0 else next(rest) for o in order]
    else:
        if call.kind == "aten.t" or rank < 2:
            d0, d1 = 0, min(1, rank - 1)
        else:
            d0, d1 = int(call.arg(1, "dim0")) % rank, int(call.arg(2, "dim1")) % rank
        order = list(range(rank))
        order[d0], order[d1] = order[d1], order[d0]
    return NodeField(f.h, f.w, L.permute(dims, order), f.phase)


@handles(*sorted(aten.SPLIT | aten.SELECT))
def split(call: OpCall) -> NodeField:
    """Splitting channels (q, k, v from one projection) keeps the geometry; ``unbind``/``select`` drop the
    dim they pick along. Picking one extra token (``x[:, 0]``, the class token) keeps the node's field:
    that token attended to every position."""
    f, x, dims = _data(call)
    rank = len(x.shape)
    default_dim = 0
    dim = int(call.arg(1 if call.kind in ("aten.unbind", "aten.select") else 2, "dim", default_dim)) % rank
    d = dims[dim]
    if call.kind in ("aten.unbind", "aten.select"):
        if L.has_positions(d) and not (d and d[0][0] == "+"):
            raise HandlerError(f"picking one position of dim {dim}, which holds {d}")
        return NodeField(f.h, f.w, dims[:dim] + dims[dim + 1 :])
    if L.has_tokens(d):
        raise HandlerError(f"splitting dim {dim}, which holds {d}")
    return NodeField(f.h, f.w, dims, f.phase)  # each piece: getitem fits the plain dim to its size


# --- patches: unfold / fold (MobileViTV2) ---------------------------------------------------------------


@handles(*sorted(aten.IM2COL))
def im2col(call: OpCall) -> NodeField:
    """``F.unfold``: (N, C, H, W) → (N, C·kh·kw, L). Non-overlapping patches (stride = kernel, no padding)
    are a regrouping: the kernel offsets are the inner row/column factors, L the outer ones. Otherwise each
    column reads a window of the map."""
    x, arg0 = _spatial_4d(call)
    kernel = aten.pair(call.arg(1, "kernel_size"))
    dilation = aten.pair(call.arg(2, "dilation", 1))
    padding = aten.pair(call.arg(3, "padding", 0), (0, 0))
    stride = aten.pair(call.arg(4, "stride", 1))
    c = int(arg0.shape[-3])
    size = (int(arg0.shape[-2]), int(arg0.shape[-1]))
    lead = tuple(L.plain(int(s)) for s in arg0.shape[:-3])
    exact = kernel == stride and padding == (0, 0) and dilation == (1, 1) and all(s % k == 0 for s, k in zip(size, kernel))
    if exact:
        inner = L.plain(c) + (("h", kernel[0], 1), ("w", kernel[1], 1))
        outer = (("h", size[0] // kernel[0], kernel[0]), ("w", size[1] // kernel[1], kernel[1]))
        return NodeField(x.h, x.w, L.normalize(lead + (inner, outer)))
    axes = []
    for a in (0, 1):
        n = (size[a] + 2 * padding[a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
        axes.append(G.window(x.axes[a], kernel[a], stride[a], padding[a], dilation[a], n))
    dims = lead + (L.plain(c * kernel[0] * kernel[1]), (("h", axes[0].size, 1), ("w", axes[1].size, 1)))
    return NodeField(axes[0], axes[1], L.normalize(dims))


@handles(*sorted(aten.COL2IM))
def col2im(call: OpCall) -> NodeField:
    """``F.fold``: the inverse regrouping of non-overlapping patches back to (N, C, H, W)."""
    f, x, dims = _data(call)
    out_size = aten.pair(call.arg(1, "output_size"))
    kernel = aten.pair(call.arg(2, "kernel_size"))
    dilation = aten.pair(call.arg(3, "dilation", 1))
    padding = aten.pair(call.arg(4, "padding", 0), (0, 0))
    stride = aten.pair(call.arg(5, "stride", 1))
    if not (kernel == stride and padding == (0, 0) and dilation == (1, 1)) or call.out_shape is None:
        raise HandlerError("fold with overlapping patches")
    want_inner = (("h", kernel[0], 1), ("w", kernel[1], 1))
    want_outer = (("h", out_size[0] // kernel[0], kernel[0]), ("w", out_size[1] // kernel[1], kernel[1]))
    if len(dims) < 2 or dims[-1] != L.normalize((want_outer,))[0] or dims[-2][-2:] != want_inner:
        raise HandlerError(f"fold of columns whose layout {dims[-2:]} is not a patch grid")
    return NodeField(f.h, f.w, L.canonical(call.out_shape))


# --- matrix products and attention ----------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _matmul_spec(call: OpCall) -> tuple[list[Optional[TensorArg]], list[str], str]:
    """(operands, their subscripts, output subscripts) of a matmul-like call, as an einsum."""
    k = call.kind
    if k == "aten.einsum":
        eq = str(call.arg(0, "equation")).replace(" ", "")
        ops = list(call.arg(1, "tensors", []))
        lhs, _, rhs = eq.partition("->")
        subs = lhs.split(",")
        if "." in eq or len(subs) != len(ops):
            raise HandlerError(f"einsum {eq!r} with ellipsis is not modelled")
        if not rhs:
            rhs = "".join(sorted(c for c in set(lhs) - {","} if lhs.count(c) == 1))
        return ops, subs, rhs
    if k == "aten.linear":
        x, w = call.arg(0, "input"), call.arg(1, "weight")
        r = len(x.shape)
        b = _LETTERS[: r - 1]
        return [x, w], [b + "y", "zy"], b + "z"
    if k in ("aten.addmm", "aten.baddbmm"):
        a, b = call.args[1], call.args[2]
    else:
        a, b = call.args[0], call.args[1]
    ra, rb = len(a.shape), len(b.shape)
    if ra < 2 or rb < 2:
        raise HandlerError("matmul of a vector is not modelled")
    batch = max(ra, rb) - 2
    letters = _LETTERS[:batch]
    sa = letters[batch - (ra - 2) :] + "xy"
    sb = letters[batch - (rb - 2) :] + "yz"
    return [a, b], [sa, sb], letters + "xz"


@handles(*sorted(aten.MATMUL))
def matmul(call: OpCall) -> Optional[NodeField]:
    """Matrix products as einsums over the factor layout.

    * Data times a weight (``nn.Linear``): channels mixed, positions untouched; a product over a dim that
      holds positions (token-mixing) pools the field over them.
    * ``q @ k.T``: the output keeps the queries' positions and gains the keys' as key factors; the keys'
      field enters pooled over them (the softmax and the product with ``v`` mix over exactly those).
    * ``attn @ v``: the key factors are contracted; ``v``'s field enters pooled over its positions.

    Pooling over positions that span an axis is global context; over a window's positions it is the window.
    """
    spatial = call.spatial
    if not spatial:
        return None
    ops, subs, out = _matmul_spec(call)
    data = []
    args: list[TensorArg] = []
    for t, s in zip(ops, subs):
        if not isinstance(t, TensorArg) or t.field is None:
            continue
        d = L.fit(t.field.dims, t.shape)
        if d is None or len(d) != len(s):
            raise HandlerError(f"layout {t.field.dims} does not match the shape {t.shape}")
        data.append((t.field, d, s, tuple(t.shape)))
        args.append(t)
    # the primary operand: the first whose kept dims hold positions; its positions are the output's
    primary = next((i for i, (_, d, s, _) in enumerate(data) if any(L.has_positions(dd) and c in out for dd, c in zip(d, s))), None)
    parts: list[list[AxisField]] = []
    whole: set[int] = set()  # operands (in ``data`` order) mixed over all their positions
    letter_dims: dict[str, L.Dim] = {}
    for i, (f, d, s, shape) in enumerate(data):
        gone = [dd for dd, c in zip(d, s) if c not in out]
        kept_as_keys = []
        for dd, c in zip(d, s):
            if c not in out:
                continue
            if i == primary or not L.has_positions(dd):
                if c not in letter_dims or not L.has_tokens(letter_dims[c]):
                    letter_dims[c] = dd
                continue
            prim_dims = dict(zip(data[primary][2], data[primary][1])) if primary is not None else {}
            if c in prim_dims and L.normalize((prim_dims[c],)) == L.normalize((dd,)):
                continue  # the same positions paired (windows in the batch dim), not a cross product
            kept_as_keys.append(dd)
            letter_dims[c] = tuple((L.KEY_TAGS.get(t, t) if t is not None else None, n, st) for t, n, st in dd)
        pooled = _pooled(f, gone + kept_as_keys) if i != primary else _pooled(f, gone)
        if i != primary and all(not p.finite for p in pooled) and any(a.finite for a in f.axes):
            whole.add(i)
        parts.append(pooled)
    out_dims: list[L.Dim] = []
    for c in out:
        known = letter_dims.get(c)
        if known is None:
            size = next((int(sh[s.index(c)]) for _, _, s, sh in data if c in s), None)
            if size is None:
                size = next(int(t.shape[sb.index(c)]) for t, sb in zip(ops, subs) if isinstance(t, TensorArg) and c in sb)
            known = L.plain(size)
        out_dims.append(known)
    dims = out_dims
    axes = _merge_axes(parts)
    if call.out_shape is not None and len(call.out_shape) != len(dims):
        raise HandlerError(f"einsum output rank {len(dims)} does not match {call.out_shape}")
    new = L.fit(tuple(dims), call.out_shape) if call.out_shape is not None else tuple(dims)
    index = {id(t): k for k, t in enumerate(spatial)}
    result = _with(NodeField(axes[0], axes[1]), new)
    return replace(result, global_args=frozenset(index[id(args[i])] for i in whole if id(args[i]) in index))


@handles(*sorted(aten.SDPA))
def attention(call: OpCall) -> NodeField:
    """Fused attention ``softmax(q k.T) v`` on (…, L, E) tensors: the queries' positions stay; the field of
    keys and values enters pooled over the keys' positions (global, or the window's)."""
    q, k, v = (call.arg(i, n) for i, n in ((0, "query"), (1, "key"), (2, "value")))
    parts = []
    whole: set[int] = set()
    qdims: Optional[L.Dims] = None
    for t in (q, k, v):
        if not isinstance(t, TensorArg) or t.field is None:
            continue
        d = L.fit(t.field.dims, t.shape)
        if d is None:
            raise HandlerError(f"layout {t.field.dims} does not match the shape {t.shape}")
        if t is q:
            qdims = d
            parts.append(list(t.field.axes))
        else:
            pooled = _pooled(t.field, [d[-2]])
            if all(not p.finite for p in pooled) and any(a.finite for a in t.field.axes):
                whole.add(next(k for k, s in enumerate(call.spatial) if s is t))
            parts.append(pooled)
    mask = call.arg(3, "attn_mask")
    if isinstance(mask, TensorArg) and mask.field is not None:
        raise HandlerError("an attention mask computed from the image is not modelled")
    if qdims is None:
        raise HandlerError("the queries carry no field")
    axes = _merge_axes(parts)
    out = call.out_shape
    dims = qdims[:-1] + (L.plain(int(out[-1])) if out else qdims[-1],)
    return NodeField(axes[0], axes[1], L.normalize(dims), global_args=frozenset(whole))


@handles(*sorted(aten.SOFTMAX))
def softmax(call: OpCall) -> NodeField:
    """Softmax over channels (class scores) or over key positions keeps the field; over the tensor's own
    positions every output also reads all of them (pooled: global, or the window)."""
    f, x, dims = _data(call)
    dim = int(call.arg(1, "dim", -1)) % len(x.shape)
    pooled = _pooled(f, [dims[dim]])
    axes = _merge_axes([list(f.axes), pooled]) if L.has_positions(dims[dim]) else list(f.axes)
    return NodeField(axes[0], axes[1], dims)

