"""Propagate fields through a captured graph, node by node, with the op handler registry.

A node whose op has no handler, or whose handler cannot follow the call, is *unknown* — and so is every
node computed from it. Nothing downstream of an unknown node borrows another node's numbers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from atrous_advisor.geometry import fields as G
from atrous_advisor.graph import layout as L
from atrous_advisor.graph.capture import CapturedGraph, Const, OpNode, Ref
from atrous_advisor.graph.handlers import OP_HANDLERS, HandlerError, NodeField, OpCall, TensorArg, Unknown

Field = Union[NodeField, Unknown, None]

# output names that are the prediction, in order: torchvision, HF dense heads, HF query-based heads
# (MaskFormer/Mask2Former/OneFormer: the per-query masks are the spatial output, the class logits are not)
PRIMARY_KEYS = ("out", "logits", "masks_queries_logits", "pred_masks", "predicted_depth")


@dataclass
class Propagation:
    graph: CapturedGraph
    # node id → its field; None for nodes that carry no data from the image (constants, shape arithmetic)
    fields: dict[int, Field]
    # op kind -> {module name -> count} for ops with a field on their input but no (working) handler
    unsupported: dict[str, dict[str, int]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # op kind -> why (the first time)
    notes: list[str] = field(default_factory=list)
    global_inputs: dict[int, set[int]] = field(default_factory=dict)  # node → inputs it mixed over all positions

    def _outputs(self) -> list[tuple[Optional[str], Ref]]:
        """(name, ref) of every tensor output; names are dict/ModelOutput keys where there are some."""
        out = self.graph.output
        if isinstance(out, dict):
            return [(str(k), r) for k, v in out.items() for r in _leaves(v) if isinstance(r, Ref)]
        return [(None, r) for r in _leaves(out) if isinstance(r, Ref)]

    def output_ref(self) -> Optional[Ref]:
        """The model's primary output: a dict's ``out``, an HF output's ``logits``, a query-based model's
        mask logits (not its class logits), else the first output that is a map, else the first tensor."""
        outputs = self._outputs()
        for key in PRIMARY_KEYS:
            for name, ref in outputs:
                if name == key:
                    return ref
        for _, ref in outputs:
            f = self.fields.get(ref.node)
            if isinstance(f, NodeField) and f.layout is not None:
                return ref
        return outputs[0][1] if outputs else None

    def output_name(self) -> Optional[str]:
        ref = self.output_ref()
        return next((name for name, r in self._outputs() if r is ref), None)

    def output_field(self) -> Field:
        ref = self.output_ref()
        return self.fields.get(ref.node) if ref else None

    def known(self, node_id: int) -> Optional[NodeField]:
        f = self.fields.get(node_id)
        return f if isinstance(f, NodeField) else None

    def reaching_output(self, refs: Optional[list[Ref]] = None, through_global: bool = True) -> set[int]:
        """Ids of the nodes the given outputs (default: the primary one) are computed from. With
        ``through_global=False``, not through inputs an op mixed over all their positions (the keys and
        values of global attention): what is left reaches the output as a grid of features."""
        if refs is None:
            primary = self.output_ref()
            refs = [primary] if primary is not None else []
        seen: set[int] = set()
        stack = [r.node for r in refs]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            skip = set() if through_global else self.global_inputs.get(n, set())
            stack.extend(i for i in self.graph.nodes[n].inputs if i not in skip)
        return seen


def _leaves(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _leaves(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    return [value]


def _resolve(value: Any, fields: dict[int, Field], shapes: dict[int, list]) -> Any:
    if isinstance(value, Ref):
        node_shapes = shapes[value.node]
        idx = value.index or 0
        shape = node_shapes[idx] if idx < len(node_shapes) else None
        return TensorArg(fields.get(value.node), tuple(shape or ()))  # type: ignore[arg-type]
    if isinstance(value, Const):
        return TensorArg(None, value.shape)
    if isinstance(value, list):
        return [_resolve(v, fields, shapes) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, fields, shapes) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, fields, shapes) for k, v in value.items()}
    return value


def _spatial_refs(value: Any, fields: dict[int, Field]) -> list[Ref]:
    """The Refs with a known field, in the order ``OpCall.spatial`` lists their arguments."""
    out: list[Ref] = []

    def walk(v: Any) -> None:
        if isinstance(v, Ref):
            if isinstance(fields.get(v.node), NodeField):
                out.append(v)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(value)
    return out


def _input_field(node: OpNode) -> NodeField:
    shape = node.out_shape or (1, 1)
    return NodeField(G.input_axis(int(shape[-2])), G.input_axis(int(shape[-1])), L.canonical(shape))


def _unknown_input(call: OpCall) -> Optional[Unknown]:
    for leaf in _leaves((call.args, call.kwargs)):
        if isinstance(leaf, TensorArg) and isinstance(leaf.field, Unknown):
            return leaf.field
    return None


def propagate(graph: CapturedGraph) -> Propagation:
    fields: dict[int, Field] = {}
    shapes: dict[int, list] = {}
    unsupported: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reasons: dict[str, str] = {}
    global_inputs: dict[int, set[int]] = {}
    for node in graph.nodes:
        shapes[node.id] = node.out_shapes or [node.out_shape]
        if node.kind == "input":
            fields[node.id] = _input_field(node)
            continue
        call = OpCall(node.kind, _resolve(node.args, fields, shapes), _resolve(node.kwargs, fields, shapes), node.out_shape)
        upstream = _unknown_input(call)
        if upstream is not None:
            fields[node.id] = upstream
            continue
        if not call.spatial or node.out_shape is None:
            fields[node.id] = None  # constants, shape arithmetic, factory ops: no data flow from the image
            continue
        handler = OP_HANDLERS.get(node.kind)
        try:
            if handler is None:
                raise HandlerError("no handler")
            fields[node.id] = got = handler(call)
            if isinstance(got, NodeField) and got.global_args:
                refs = _spatial_refs((node.args, node.kwargs), fields)
                global_inputs[node.id] = {refs[k].node for k in got.global_args if k < len(refs)}
        except HandlerError as exc:
            unsupported[node.kind][node.module or "<root>"] += 1
            reasons.setdefault(node.kind, str(exc))
            fields[node.id] = Unknown(node.kind, node.module, str(exc))
    prop = Propagation(graph, fields, {k: dict(v) for k, v in unsupported.items()}, reasons, global_inputs=global_inputs)
    for kind, where in prop.unsupported.items():
        modules = ", ".join(sorted(where)[:3]) + (" …" if len(where) > 3 else "")
        why = "" if reasons[kind] == "no handler" else f" — {reasons[kind]}"
        prop.notes.append(f"{kind} ×{sum(where.values())} in {modules}{why}")
    return prop
