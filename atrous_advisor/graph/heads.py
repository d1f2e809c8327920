"""Find ASPP, PPM and dilated-FCN heads in a captured graph by their topology.

* ASPP: one input feeding two or more branches whose first spatial conv is dilated, merged again by one
  cat/add (an adaptive-pool-to-1 branch is the image-pooling branch);
* PPM: one input feeding two or more branches that start with adaptive pooling to different sizes;
* dilated FCN head: a dilated conv outside any ASPP with no residual addition between it and the output
  (which tells it apart from the dilated blocks of a DeepLab backbone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from atrous_advisor.graph import aten
from atrous_advisor.graph.capture import CapturedGraph, OpNode

CONV_KINDS = aten.CONV
ADAPTIVE_KINDS = aten.ADAPTIVE_POOL
MERGE_KINDS = frozenset({"aten.cat", "aten.add", "aten.add_", "aten.stack", "aten.sum"})
RESIDUAL_KINDS = aten.RESIDUAL


@dataclass
class HeadSite:
    kind: str  # "aspp" | "ppm" | "fcn"
    name: str  # qualified module name of the head (common ancestor of the branches)
    branch_modules: list[str]  # dilated convs (ASPP/FCN) or adaptive pools (PPM), in order
    rates: list[tuple[int, int]]  # ASPP/FCN dilations (h, w) per branch; [] for ppm
    scales: list[int]  # PPM output sizes; [] for aspp
    image_pool: bool
    feature_map: tuple[int, int]  # measured input feature map of the head at this crop
    stride: Optional[tuple[int, int]]  # measured jump (input px per feature) at the head's input; None: unknown
    input_node: int = field(default=-1, repr=False)
    merge_node: Optional[int] = field(default=None, repr=False)
    # why no advice can be built on this head's geometry (its input's layout or stride is unknown, or the
    # feature map × stride does not match the crop); None when the geometry is known and consistent
    unknown: Optional[str] = None


def conv_geometry(node: OpNode) -> Optional[tuple[tuple[int, int], tuple[int, int], bool]]:
    """(kernel, dilation, transposed) of a conv node, or None when the node is not a 2-d conv."""
    if node.kind not in CONV_KINDS:
        return None
    geo = aten.conv_args(node.kind, node.args, node.kwargs)
    return None if geo is None else (geo.kernel, geo.dilation, geo.transposed)


def _is_dilated_conv(node: OpNode) -> Optional[tuple[int, int]]:
    geo = conv_geometry(node)
    if geo is None:
        return None
    kernel, dil, transposed = geo
    if transposed or max(dil) <= 1 or max(kernel) <= 1:
        return None
    return dil


def _is_global_pool(node: OpNode) -> bool:
    if node.kind in ADAPTIVE_KINDS:
        return node.out_shape is not None and tuple(node.out_shape[-2:]) == (1, 1)
    if node.kind in ("aten.avg_pool2d", "aten.max_pool2d", "aten.max_pool2d_with_indices"):
        # F.avg_pool2d(x, x.shape[2:]): the older way to write image pooling
        return node.out_shape is not None and tuple(node.out_shape[-2:]) == (1, 1)
    if node.kind == "aten.mean":
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        return isinstance(dims, (list, tuple)) and {int(d) % 4 for d in dims} >= {2, 3}
    return False


def common_ancestor(names: list[str]) -> str:
    parts = [n.split(".") if n else [] for n in names]
    if not parts:
        return ""
    prefix = parts[0]
    for p in parts[1:]:
        i = 0
        while i < len(prefix) and i < len(p) and prefix[i] == p[i]:
            i += 1
        prefix = prefix[:i]
    return ".".join(prefix)


def _spatial_inputs(node: OpNode, has_field: set[int]) -> list[int]:
    return [i for i in node.inputs if i in has_field]


@dataclass
class _Branch:
    nodes: list[int]
    merge: Optional[int]


def _walk(start: int, source: int, graph: CapturedGraph, consumers: dict[int, list[int]], spatial: set[int]) -> _Branch:
    """Follow a chain of single-consumer ops from ``start`` until a node that merges several data paths."""
    nodes: list[int] = []
    current = start
    for _ in range(64):  # a branch of a head is short; a backbone is not a branch
        node = graph.nodes[current]
        if len(_spatial_inputs(node, spatial)) >= 2 or (node.kind in MERGE_KINDS and current != start and nodes):
            return _Branch(nodes, current)
        nodes.append(current)
        nexts = consumers[current]
        if len(nexts) != 1:
            return _Branch(nodes, None)
        current = nexts[0]
    return _Branch(nodes, None)


Geometry = Callable[[int], tuple[tuple[int, int], Optional[tuple[int, int]], Optional[str]]]


def detect_heads(graph: CapturedGraph, site_geometry: Geometry, spatial: set[int]) -> list[HeadSite]:
    """All heads in the graph. ``site_geometry(node id)`` gives (feature map, stride or None, why unknown)
    of a head's input; ``spatial`` holds the ids of the nodes that carry data from the image."""
    consumers = graph.consumers()
    heads: list[HeadSite] = []
    in_aspp: set[int] = set()

    for node in graph.nodes:
        if node.id not in spatial or len(consumers[node.id]) < 2:
            continue
        groups: dict[int, list[_Branch]] = {}
        for c in consumers[node.id]:
            branch = _walk(c, node.id, graph, consumers, spatial)
            if branch.merge is not None:
                groups.setdefault(branch.merge, []).append(branch)
        for merge_id, branches in groups.items():
            dilated: list[tuple[tuple[int, int], int]] = []
            pools: list[tuple[int, int]] = []
            image_pool = False
            for b in branches:
                first_spatial = next(
                    (graph.nodes[i] for i in b.nodes if graph.nodes[i].kind in CONV_KINDS | ADAPTIVE_KINDS or _is_global_pool(graph.nodes[i])),
                    None,
                )
                if first_spatial is None:
                    continue
                if _is_global_pool(first_spatial):
                    image_pool = True
                    pools.append((1, first_spatial.id))
                    continue
                if first_spatial.kind in ADAPTIVE_KINDS:
                    pools.append((int(first_spatial.out_shape[-2]), first_spatial.id))  # type: ignore[index]
                    continue
                # the first conv with a spatial kernel decides the branch's rate (depthwise-separable ASPP);
                # rate 1 counts too: (1, 2, 3) is a real ASPP, and what `rate` suggests for small crops
                for i in b.nodes:
                    geo = conv_geometry(graph.nodes[i])
                    if geo and max(geo[0]) > 1:
                        if not geo[2]:  # transposed convs upsample; they are not atrous branches
                            dilated.append((geo[1], i))
                        break
            fmap, stride, unknown = site_geometry(node.id)
            merge_module = graph.nodes[merge_id].module
            # parallel undilated 3×3s (inception-style blocks) are not an atrous pyramid
            if len(dilated) >= 2 and any(max(r) > 1 for r, _ in dilated):
                dilated.sort(key=lambda d: (max(d[0]), d[0]))
                names = [graph.nodes[i].module for _, i in dilated]
                heads.append(
                    HeadSite(
                        kind="aspp",
                        name=common_ancestor(names + [merge_module]),
                        branch_modules=names,
                        rates=[r for r, _ in dilated],
                        scales=[],
                        image_pool=image_pool,
                        feature_map=fmap,
                        stride=stride,
                        input_node=node.id,
                        merge_node=merge_id,
                        unknown=unknown,
                    )
                )
                in_aspp.update(i for _, i in dilated)
            elif len({s for s, _ in pools}) >= 2:
                pools.sort()
                names = [graph.nodes[i].module for _, i in pools]
                heads.append(
                    HeadSite(
                        kind="ppm",
                        name=common_ancestor(names + [merge_module]),
                        branch_modules=names,
                        rates=[],
                        scales=[s for s, _ in pools],
                        image_pool=1 in {s for s, _ in pools},
                        feature_map=fmap,
                        stride=stride,
                        input_node=node.id,
                        merge_node=merge_id,
                        unknown=unknown,
                    )
                )
    heads.extend(_fcn_heads(graph, consumers, spatial, in_aspp, site_geometry))
    return heads


def _fcn_heads(graph, consumers, spatial, in_aspp, site_geometry) -> list[HeadSite]:
    """Dilated convs with no residual addition downstream: the head of an FCN-Dx model, not its backbone."""
    residual_below: dict[int, bool] = {}
    for node in reversed(graph.nodes):
        residual_below[node.id] = any(
            graph.nodes[c].kind in RESIDUAL_KINDS and len(_spatial_inputs(graph.nodes[c], spatial)) >= 2
            or residual_below.get(c, False)
            for c in consumers[node.id]
        )
    # a head's dilated conv is the last spatial conv on its way out; a dilated block of a backbone (the last
    # MobileNetV2/EfficientNet block at output stride 8) still has the head's convs below it
    conv_below: dict[int, bool] = {}
    for node in reversed(graph.nodes):
        conv_below[node.id] = any(
            (graph.nodes[c].kind in CONV_KINDS and max((conv_geometry(graph.nodes[c]) or ((1, 1),))[0]) > 1)
            or conv_below.get(c, False)
            for c in consumers[node.id]
        )
    out_nodes = {r.node for r in graph.output_refs()}
    reaches_out: dict[int, bool] = {}
    for node in reversed(graph.nodes):
        reaches_out[node.id] = node.id in out_nodes or any(reaches_out.get(c, False) for c in consumers[node.id])
    heads = []
    for node in graph.nodes:
        rate = _is_dilated_conv(node)
        if not rate or node.id in in_aspp or residual_below[node.id] or not reaches_out[node.id] or conv_below[node.id]:
            continue
        inputs = _spatial_inputs(node, spatial)
        if not inputs:
            continue
        fmap, stride, unknown = site_geometry(inputs[0])
        heads.append(
            HeadSite(
                kind="fcn",
                name=node.module,
                branch_modules=[node.module],
                rates=[rate],
                scales=[],
                image_pool=False,
                feature_map=fmap,
                stride=stride,
                input_node=inputs[0],
                unknown=unknown,
            )
        )
    return heads


def find_heads(model, crop: tuple[int, int]) -> list[HeadSite]:
    """Capture ``model`` on a meta image of ``crop`` (h, w) and return its ASPP/PPM/FCN heads whose input
    geometry is known (the ones rates and scales can be computed for)."""
    from atrous_advisor.graph.analysis import capture_and_propagate

    _, prop = capture_and_propagate(model, crop)
    return [h for h in heads_of(prop, crop) if h.unknown is None]


def heads_of(prop, crop: Optional[tuple[int, int]] = None) -> list[HeadSite]:
    """Every head of a propagated graph; a head whose input layout or stride is unknown, or whose feature
    map × stride does not give back the crop, carries the reason in ``unknown`` (and no stride when it is
    not known)."""
    from atrous_advisor.graph.handlers import NodeField

    def geometry(node_id: int):
        f = prop.fields.get(node_id)
        shape = prop.graph.nodes[node_id].out_shape or (1, 1)
        if not isinstance(f, NodeField):
            why = f.line() if f is not None else "it carries no data from the image"
            return (int(shape[-2]), int(shape[-1])), None, f"its input is unknown ({why})"
        if f.layout != (-2, -1):
            return (int(shape[-2]), int(shape[-1])), None, "its input is not a plain (N, C, H, W) map"
        fmap = (int(shape[-2]), int(shape[-1]))
        if any(not a.finite or a.binned for a in f.axes):
            return fmap, None, "its input is pooled, not a feature map with a stride"
        stride = (max(1, round(float(f.h.jump))), max(1, round(float(f.w.jump))))
        if crop is not None:
            for a in (0, 1):
                # F = ceil(crop / stride) for padded strided convs; allow the last feature to be partial
                if abs(fmap[a] * stride[a] - crop[a]) >= stride[a] + max(1, crop[a] // 16):
                    return fmap, stride, (
                        f"its {fmap[0]}×{fmap[1]} map × stride {stride[0]}×{stride[1]} does not give back "
                        f"the {crop[0]}×{crop[1]} crop"
                    )
        return fmap, stride, None

    spatial = {nid for nid, f in prop.fields.items() if f is not None}
    return detect_heads(prop.graph, geometry, spatial)
