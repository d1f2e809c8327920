"""The analytic field of the centre output as an image: per input pixel, the number of paths reaching it.

The captured graph is re-run with one channel in float64 on the CPU, with every weight equal: each
convolution becomes a 1×1-channel convolution with an all-ones kernel of the same size, stride, padding and
dilation; pooling sums its window; concatenation and element-wise ops add their paths; interpolation keeps
its own weights. The gradient of the centre output with respect to the input is then, per input pixel, the
number of paths from that pixel to the centre output — the paper's star for an ASPP head. Paths through
global pooling reach every pixel alike; they are reported as global context and left out of the picture.

The graph is captured on a canvas large enough to hold the whole field, so taps that would land in the
padding of the real crop are visible; the crop is drawn as a rectangle centred on the output pixel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from atrous_advisor.files import atomic_path
from atrous_advisor.errors import InputError
from atrous_advisor.graph.capture import CapturedGraph, Const, Ref
from atrous_advisor.graph.engine import Propagation
from atrous_advisor.graph.handlers import NEUTRAL_OPS
from atrous_advisor.graph.heads import CONV_KINDS, conv_geometry

_PASS = set(NEUTRAL_OPS) | {
    "_operator.getitem", "aten.view", "aten.reshape", "aten._unsafe_view", "aten.contiguous", "aten.expand",
    "aten.split", "aten.split_with_sizes", "aten.chunk", "aten.slice", "aten.softmax", "aten._softmax",
    "aten.log_softmax", "aten._log_softmax", "aten.linear",
}
_MERGE = {
    "aten.add", "aten.add_", "aten.sub", "aten.sub_", "aten.rsub", "aten.mul", "aten.mul_", "aten.div", "aten.div_",
    "aten.maximum", "aten.minimum", "aten.where", "aten.cat", "aten.stack", "aten.addcmul", "aten.addcdiv",
}
_MODES = {
    "aten.upsample_nearest2d": ("nearest", None),
    "aten._upsample_nearest_exact2d": ("nearest-exact", None),
    "aten.upsample_bilinear2d": ("bilinear", 2),
    "aten._upsample_bilinear2d_aa": ("bilinear", 2),
    "aten.upsample_bicubic2d": ("bicubic", 2),
}


class FieldMapUnsupported(Exception):
    pass


def _pair(value: Any, default) -> tuple[int, int]:
    if value is None or (isinstance(value, (list, tuple)) and not value):
        value = default
    if isinstance(value, int):
        return (value, value)
    v = [int(x) for x in value]
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def _fit(t, shape):
    """Pad or crop the last two dims to the captured output shape (ceil_mode pools end one feature later)."""
    import torch.nn.functional as F

    h, w = int(shape[-2]), int(shape[-1])
    t = t[..., :h, :w]
    return F.pad(t, (0, w - t.shape[-1], 0, h - t.shape[-2]))


def _run(graph: CapturedGraph, spatial: set[int], image):
    """Evaluate the graph with one channel and equal weights; returns node id → tensor (1, 1, h, w)."""
    import torch
    import torch.nn.functional as F

    values: dict[int, Any] = {0: image}

    def ins(node) -> list:
        return [values[i] for i in node.inputs if i in spatial and i in values]

    for node in graph.nodes[1:]:
        if node.id not in spatial:
            continue
        xs = ins(node)
        if not xs:
            continue
        x, kind = xs[0], node.kind
        shape: tuple[int, ...] = node.out_shape or ()  # spatial nodes have a shape
        if kind in CONV_KINDS or kind == "aten.conv_transpose2d":
            geo = conv_geometry(node)
            w = node.args[1]
            if not isinstance(w, Const) or len(w.shape) != 4:
                raise FieldMapUnsupported(f"{kind} in {node.module or '<root>'}")
            kernel = torch.ones(1, 1, int(w.shape[2]), int(w.shape[3]), dtype=image.dtype)
            a = node.args
            stride = _pair(a[3] if len(a) > 3 else 1, (1, 1))
            padding = a[4] if len(a) > 4 else 0
            if kind == "aten.conv_transpose2d" or (geo and geo[2]):
                dil = _pair((a[7] if kind == "aten.conv_transpose2d" else a[5]) if len(a) > 5 else 1, (1, 1))
                y = F.conv_transpose2d(x, kernel, None, stride, _pair(padding, (0, 0)), 0, 1, dil)
            else:
                dil = _pair(a[5] if len(a) > 5 else 1, (1, 1))
                y = F.conv2d(x, kernel, None, stride, padding if isinstance(padding, str) else _pair(padding, (0, 0)), dil)
        elif kind in ("aten.max_pool2d", "aten.max_pool2d_with_indices", "aten.avg_pool2d"):
            a = node.args
            k = _pair(a[1], (1, 1))
            stride = _pair(a[2] if len(a) > 2 else [], k)
            padding = _pair(a[3] if len(a) > 3 else 0, (0, 0))
            dil = _pair(a[4] if kind != "aten.avg_pool2d" and len(a) > 4 else 1, (1, 1))
            kernel = torch.ones(1, 1, *k, dtype=image.dtype)
            y = F.conv2d(x, kernel, None, stride, padding, dil)  # a pool with equal weights sums its window
            whole = [int(shape[a]) == 1 and padding[a] == 0 and x.shape[a] > 1 for a in (-2, -1)]
            if any(whole):  # a pool over the whole map (F.avg_pool2d(x, x.shape[2:])) is global: not drawn
                y = y * 0.0
        elif kind in ("aten.adaptive_avg_pool2d", "aten._adaptive_avg_pool2d", "aten.adaptive_max_pool2d"):
            oh, ow = int(shape[-2]), int(shape[-1])
            # global paths reach every pixel equally and would drown the finite field: they are flagged
            # as global context in the report instead of drawn
            scale = 0.0 if oh == 1 or ow == 1 else x.shape[-2] * x.shape[-1] / (oh * ow)
            y = F.adaptive_avg_pool2d(x, (oh, ow)) * scale
        elif kind in ("aten.mean", "aten.sum", "aten.amax"):
            dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            rank = len(graph.nodes[node.inputs[0]].out_shape or ())
            over_space = dims is None or (isinstance(dims, (list, tuple)) and (not dims or {int(d) % rank for d in dims} & {rank - 2, rank - 1}))
            if not over_space:
                y = x  # a reduction over channels keeps every path
            else:
                y = x.sum(dim=(-2, -1), keepdim=True) * 0.0  # global path: flagged, not drawn (see above)
                if shape and len(shape) >= 2:
                    y = y.expand(1, 1, int(shape[-2]), int(shape[-1])) if shape[-2:] != (1, 1) else y
        elif kind in _MODES:
            mode, _ = _MODES[kind]
            align = bool(node.args[2]) if mode in ("bilinear", "bicubic") and len(node.args) > 2 else None
            y = F.interpolate(x, size=(int(shape[-2]), int(shape[-1])), mode=mode, align_corners=align)
        elif kind in _MERGE:
            h, w = int(shape[-2]), int(shape[-1])
            y = sum(t.expand(1, 1, h, w) if t.shape[-2:] != (h, w) else t for t in xs)
        elif kind in _PASS:
            y = x
        else:
            raise FieldMapUnsupported(f"{kind} in {node.module or '<root>'}")
        if shape is None or len(shape) < 2:
            raise FieldMapUnsupported(f"{kind} in {node.module or '<root>'} leaves the spatial layout")
        values[node.id] = _fit(y, shape) if tuple(y.shape[-2:]) != tuple(shape[-2:]) else y
    return values


def canvas_for(crop: tuple[int, int], field: tuple[Optional[float], Optional[float]], multiple: int = 32) -> tuple[int, int]:
    """Large enough for the whole field around the centre (and the crop), rounded up to ``multiple``."""
    out = []
    for c, rf in zip(crop, field):
        need = max(c, int(rf or 0) + 2 * multiple)
        out.append(-(-need // multiple) * multiple)
    return (out[0], out[1])


def path_counts(model, canvas: tuple[int, int], prop_at_crop: Optional[Propagation] = None):
    """Per input pixel of a ``canvas`` image, the number of equal-weight paths to the centre output."""
    import torch

    from atrous_advisor.graph.analysis import capture_and_propagate

    _, prop = capture_and_propagate(model, canvas, prefer="dispatch", device="meta")
    spatial = {nid for nid, f in prop.fields.items() if f is not None and f.layout is not None}
    image = torch.ones(1, 1, canvas[0], canvas[1], dtype=torch.float64, requires_grad=True)
    values = _run(prop.graph, spatial, image)
    refs = [r for r in prop.graph.output_refs() if isinstance(r, Ref)]
    out_node = refs[0].node if refs else None
    if out_node not in values:
        raise FieldMapUnsupported("the model output is not spatial")
    out = values[out_node]
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    return image.grad[0, 0].detach().numpy(), (h // 2, w // 2), prop


def render(counts, crop: tuple[int, int], path: Path, title: str) -> None:
    """Save the path counts (log scale) with the crop drawn as a rectangle centred on the image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import PowerNorm
    from matplotlib.patches import Rectangle

    H, W = counts.shape
    peak = float(counts.max()) if counts.size else 0.0
    data = np.where(counts > 0, counts / peak if peak > 0 else counts, np.nan)
    fig, ax = plt.subplots(figsize=(7, 7 * H / W + 0.6), dpi=110)
    if peak > 0:
        # a square-root scale keeps the outer taps of the star visible next to the centre's peak
        im = ax.imshow(data, cmap="magma", norm=PowerNorm(0.5, vmin=0, vmax=1), interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="paths to the centre output (share of the peak)")
    ax.set_facecolor("black")
    top, left = (H - crop[0]) / 2 - 0.5, (W - crop[1]) / 2 - 0.5
    ax.add_patch(Rectangle((left, top), crop[1], crop[0], fill=False, edgecolor="cyan", linewidth=1.5, linestyle="--"))
    ax.text(left + 4, top + 14, f"crop {crop[0]}×{crop[1]}", color="cyan", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("input x (px)")
    ax.set_ylabel("input y (px)")
    fig.tight_layout()
    try:
        # without a suffix matplotlib would write ``path.png``, not the file the report names
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=None if path.suffix else "png")
    except OSError as exc:
        raise InputError(f"--field-map {path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
