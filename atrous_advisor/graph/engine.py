"""Propagate fields through a captured graph, node by node, with the op handler registry."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Optional

from atrous_advisor.geometry import fields as G
from atrous_advisor.graph.capture import CapturedGraph, Const, OpNode, Ref
from atrous_advisor.graph.handlers import OP_HANDLERS, HandlerError, NodeField, OpCall, TensorArg


@dataclass
class Propagation:
    graph: CapturedGraph
    fields: dict[int, Optional[NodeField]]
    # op kind -> {module name -> count} for ops with a field on their input but no (working) handler
    unsupported: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def output_field(self) -> Optional[NodeField]:
        """The field of the model's primary output (``out`` of a dict, else the first tensor)."""
        out = self.graph.output
        if isinstance(out, dict):
            out = out.get("out", next(iter(out.values()), None)) if out else None
        refs = [r for r in _leaves(out) if isinstance(r, Ref)]
        return self.fields.get(refs[0].node) if refs else None


def _leaves(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _leaves(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    return [value]


def _resolve(value: Any, fields: dict[int, Optional[NodeField]], shapes: dict[int, list]) -> Any:
    if isinstance(value, Ref):
        node_shapes = shapes[value.node]
        idx = value.index or 0
        shape = node_shapes[idx] if idx < len(node_shapes) else None
        return TensorArg(fields.get(value.node), tuple(shape or ()))
    if isinstance(value, Const):
        return TensorArg(None, value.shape)
    if isinstance(value, list):
        return [_resolve(v, fields, shapes) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, fields, shapes) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, fields, shapes) for k, v in value.items()}
    return value


def _input_field(node: OpNode) -> NodeField:
    shape = node.out_shape or (1, 1)
    return NodeField(G.input_axis(int(shape[-2])), G.input_axis(int(shape[-1])))


def _best_effort(call: OpCall) -> Optional[NodeField]:
    """After an unsupported op, keep going with the merged fields of its inputs, resized to its output.

    It is reported, so the user knows every field downstream of it is an estimate.
    """
    spatial = [s.field for s in call.spatial if s.field is not None]
    if not spatial or call.out_shape is None:
        return None
    layout = spatial[0].layout
    if layout is None or len(call.out_shape) < 2:
        return spatial[0]
    sizes = (int(call.out_shape[layout[0]]), int(call.out_shape[layout[1]]))
    axes = [G.merge([G.broadcast(f.axes[a], sizes[a]) for f in spatial], sizes[a]) for a in (0, 1)]
    return NodeField(axes[0], axes[1], layout)


def propagate(graph: CapturedGraph) -> Propagation:
    fields: dict[int, Optional[NodeField]] = {}
    shapes: dict[int, list] = {}
    unsupported: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reasons: dict[str, str] = {}  # op kind -> why its handler refused it (first time), for the note
    for node in graph.nodes:
        shapes[node.id] = node.out_shapes or [node.out_shape]
        if node.kind == "input":
            fields[node.id] = _input_field(node)
            continue
        call = OpCall(node.kind, _resolve(node.args, fields, shapes), _resolve(node.kwargs, fields, shapes), node.out_shape)
        if not call.spatial or node.out_shape is None:
            fields[node.id] = None  # constants, shape arithmetic, factory ops: no data flow from the image
            continue
        handler = OP_HANDLERS.get(node.kind)
        try:
            if handler is None:
                raise HandlerError(f"no handler for {node.kind}")
            fields[node.id] = handler(call)
        except HandlerError as exc:
            unsupported[node.kind][node.module or "<root>"] += 1
            reasons.setdefault(node.kind, str(exc))
            fields[node.id] = _best_effort(call)
    result = Propagation(graph, fields, {k: dict(v) for k, v in unsupported.items()})
    for kind, where in result.unsupported.items():
        modules = ", ".join(sorted(where)[:3]) + (" …" if len(where) > 3 else "")
        # a registered handler can refuse a call it does not model (a conv on channels-last tokens): say why
        why = "" if reasons[kind] == f"no handler for {kind}" else f" — {reasons[kind]}"
        result.notes.append(
            f"unsupported op {kind} ({sum(where.values())}× in {modules}{why}): fields after it are estimates "
            "(register a handler with atrous_advisor.graph.register_op_handler)"
        )
    return result
