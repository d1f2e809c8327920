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
from atrous_advisor.files import atomic_path
from atrous_advisor.graph import aten
from atrous_advisor.graph.capture import CapturedGraph, Ref
from atrous_advisor.graph.engine import Propagation

# ops whose single path passes through unchanged in the picture (one channel, every weight equal)
_PASS = aten.NEUTRAL | aten.RESHAPE | aten.SPLIT | aten.SOFTMAX | {
    "_operator.getitem", "aten.expand", "aten.slice", "aten.linear",
}


class FieldMapUnsupported(Exception):
    pass


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
        if kind in aten.CONV or kind in aten.CONV_TRANSPOSE:
            geo = aten.conv_args(kind, node.args, node.kwargs)
            if geo is None:
                raise FieldMapUnsupported(f"{kind} in {node.module or '<root>'}")
            kernel = torch.ones(1, 1, *geo.kernel, dtype=image.dtype)
            if geo.transposed:
                y = F.conv_transpose2d(x, kernel, None, geo.stride, geo.padding, geo.output_padding, 1, geo.dilation)
            else:
                raw = aten.arg(node.args, node.kwargs, 4, "padding", 0)
                # 'same' is asymmetric for even kernels: let PyTorch place it as the model did
                y = F.conv2d(x, kernel, None, geo.stride, raw if isinstance(raw, str) else geo.padding, geo.dilation)
        elif kind in aten.POOL:
            pool = aten.pool_args(kind, node.args, node.kwargs)
            if pool is None:
                raise FieldMapUnsupported(f"{kind} in {node.module or '<root>'}")
            kernel = torch.ones(1, 1, *pool.kernel, dtype=image.dtype)
            y = F.conv2d(x, kernel, None, pool.stride, pool.padding, pool.dilation)  # a pool with equal weights sums its window
            whole = [int(shape[a]) == 1 and pool.padding[a] == 0 and x.shape[a] > 1 for a in (-2, -1)]
            if any(whole):  # a pool over the whole map (F.avg_pool2d(x, x.shape[2:])) is global: not drawn
                y = y * 0.0
        elif kind in aten.ADAPTIVE_POOL:
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
        elif kind in aten.UPSAMPLE_MODE:
            mode = aten.UPSAMPLE_MODE[kind]
            align = aten.upsample_align(kind, node.args, node.kwargs) if mode in ("bilinear", "bicubic") else None
            y = F.interpolate(x, size=(int(shape[-2]), int(shape[-1])), mode=mode, align_corners=align)
        elif kind in aten.MERGE:
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
    # only plain maps are drawn: a model whose paths go through token forms or attention is refused
    spatial = {nid for nid in prop.fields if prop.known(nid) is not None and prop.known(nid).layout == (-2, -1)}
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
        with atomic_path(path) as tmp:  # a failed or killed write leaves the old picture, not half a new one
            fig.savefig(tmp, format=None if path.suffix else "png")
    except OSError as exc:
        raise InputError(f"--field-map {path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
