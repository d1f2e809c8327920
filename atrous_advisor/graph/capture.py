"""Capture a model's ATen graph at one input size, on meta tensors, without TorchScript.

Two paths, both yielding the same :class:`CapturedGraph` (ATen ops, real shapes, owning module names):

1. ``torch.export`` (non-strict): functional ops (``F.conv2d``, ``F.interpolate``, ``torch.cat``, ``+``)
   and shapes as they are at this crop; module names from the ``nn_module_stack`` metadata.
2. ``dispatch``: when export fails, run the model once under a ``TorchDispatchMode`` that records every
   ATen call, with topology from tensor identity (never from call order) and module names from forward
   hooks. It works for anything that runs on meta tensors.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.utils._pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode


@dataclass(frozen=True)
class Ref:
    """A tensor argument produced by another node (``index`` picks an element of a tuple output)."""

    node: int
    index: Optional[int] = None


@dataclass(frozen=True)
class Const:
    """A tensor argument that is not data-flow: a parameter, buffer or constant (only its shape matters)."""

    shape: tuple[int, ...]


@dataclass
class OpNode:
    id: int
    kind: str  # "input", or the op's name: "aten.conv2d", "_operator.getitem", ...
    module: str  # qualified name in model.named_modules() of the innermost module that ran it ('' = root)
    module_type: str
    args: tuple
    kwargs: dict
    out_shape: Optional[tuple[int, ...]]  # the (first) tensor output's shape; None for non-tensor outputs
    out_shapes: list[Optional[tuple[int, ...]]] = field(default_factory=list)  # every output of tuple ops

    @property
    def inputs(self) -> list[int]:
        """Producers of the tensor arguments, in argument order, each once."""
        seen: list[int] = []
        for leaf in pytree.tree_leaves((self.args, self.kwargs)):
            if isinstance(leaf, Ref) and leaf.node not in seen:
                seen.append(leaf.node)
        return seen


@dataclass
class CapturedGraph:
    nodes: list[OpNode]  # topological order; nodes[0] is the input image
    output: Any  # the model's output structure with Refs for tensors
    capture: str  # "torch.export" or "dispatch"
    notes: list[str] = field(default_factory=list)

    def consumers(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                out[i].append(n.id)
        return out

    def output_refs(self) -> list[Ref]:
        return [leaf for leaf in pytree.tree_leaves(self.output) if isinstance(leaf, Ref)]


def op_kind(target: Any) -> str:
    """``aten.conv2d`` for an OpOverload (overload dropped), ``module.name`` for a Python callable."""
    if isinstance(target, torch._ops.OpOverload):
        return str(target.overloadpacket)
    if isinstance(target, torch._ops.OpOverloadPacket):
        return str(target)
    module = getattr(target, "__module__", None) or type(target).__module__
    name = getattr(target, "__name__", None) or type(target).__name__
    return f"{module}.{name}"


def _shape(value: Any) -> Optional[tuple[int, ...]]:
    if isinstance(value, torch.Tensor):
        return tuple(int(s) for s in value.shape)
    return None


_CALL_SUFFIX = re.compile(r"@\d+$")


def _module_from_stack(meta: dict) -> tuple[str, str]:
    stack = meta.get("nn_module_stack") or {}
    if not stack:
        return "", ""
    path, kind = list(stack.values())[-1]
    name = _CALL_SUFFIX.sub("", str(path))
    if name.startswith("L['self']"):
        name = name[len("L['self']") :].lstrip(".")
    return name, kind if isinstance(kind, str) else getattr(kind, "__qualname__", str(kind))


def _export(model: torch.nn.Module, example: torch.Tensor) -> CapturedGraph:
    program = torch.export.export(model, (example,), strict=False)
    graph = program.graph_module.graph
    user_inputs = set(program.graph_signature.user_inputs)
    ids: dict[Any, int] = {}
    nodes: list[OpNode] = []
    output: Any = None

    def convert(arg: Any) -> Any:
        if isinstance(arg, torch.fx.Node):
            if arg in ids:
                return Ref(ids[arg])
            return Const(_shape(arg.meta.get("val")) or ())
        return arg

    for node in graph.nodes:
        if node.op == "placeholder":
            if node.name in user_inputs:
                ids[node] = len(nodes)
                nodes.append(OpNode(len(nodes), "input", "", "", (), {}, _shape(node.meta.get("val")), []))
            continue
        if node.op == "output":
            output = pytree.tree_map(convert, node.args[0])
            try:  # the model's own output structure (a dict, an HF ModelOutput): its names say which is which
                output = pytree.tree_unflatten(list(output), program.call_spec.out_spec)
                if not isinstance(output, dict) and hasattr(output, "keys"):
                    output = dict(output)
            except Exception:  # an output spec this torch cannot rebuild: the flat outputs, unnamed
                pass
            continue
        if node.op != "call_function":
            continue
        value = node.meta.get("val")
        module, module_type = _module_from_stack(node.meta)
        args = pytree.tree_map(convert, node.args)
        kwargs = pytree.tree_map(convert, dict(node.kwargs))
        # getitem picks one element of a tuple output: keep that as a Ref index, not a separate op
        if node.target is operator.getitem and isinstance(args[0], Ref) and isinstance(args[1], int):
            ids[node] = len(nodes)
            nodes.append(
                OpNode(len(nodes), "_operator.getitem", module, module_type, args, {}, _shape(value), [_shape(value)])
            )
            continue
        shapes = [_shape(v) for v in value] if isinstance(value, (tuple, list)) else [_shape(value)]
        first = next((s for s in shapes if s is not None), None)
        ids[node] = len(nodes)
        nodes.append(OpNode(len(nodes), op_kind(node.target), module, module_type, args, kwargs, first, shapes))
    return CapturedGraph(nodes, output, "torch.export")


class _Recorder(TorchDispatchMode):
    """Records every ATen call; a tensor's producer is looked up by identity (in-place ops re-bind it)."""

    def __init__(self, nodes: list[OpNode], producers: dict[int, Ref], keep: list, stack: list[tuple[str, str]]):
        super().__init__()
        self.nodes, self.producers, self.keep, self.stack = nodes, producers, keep, stack

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)

        def convert(arg: Any) -> Any:
            if isinstance(arg, torch.Tensor):
                return self.producers.get(id(arg)) or Const(_shape(arg) or ())
            return arg

        node_id = len(self.nodes)
        module, module_type = self.stack[-1] if self.stack else ("", "")
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        shapes = [_shape(o) for o in outs]
        self.nodes.append(
            OpNode(
                node_id,
                op_kind(func),
                module,
                module_type,
                pytree.tree_map(convert, tuple(args)),
                pytree.tree_map(convert, dict(kwargs)),
                next((s for s in shapes if s is not None), None),
                shapes,
            )
        )
        for i, o in enumerate(outs):
            if isinstance(o, torch.Tensor):
                self.producers[id(o)] = Ref(node_id, i if isinstance(out, (tuple, list)) else None)
                self.keep.append(o)  # keep it alive so its id() is not reused by a later tensor
        return out


def _dispatch(model: torch.nn.Module, example: torch.Tensor) -> CapturedGraph:
    nodes = [OpNode(0, "input", "", "", (), {}, _shape(example), [_shape(example)])]
    producers: dict[int, Ref] = {id(example): Ref(0)}
    keep: list = [example]
    stack: list[tuple[str, str]] = []
    handles = []
    for name, mod in model.named_modules():
        def pre(_m, _a, name=name, mod=mod):
            stack.append((name, f"{type(mod).__module__}.{type(mod).__qualname__}"))

        def post(_m, _a, _o):
            stack.pop()

        handles.append(mod.register_forward_pre_hook(pre))
        handles.append(mod.register_forward_hook(post))
    try:
        with torch.no_grad(), _Recorder(nodes, producers, keep, stack):
            out = model(example)
    finally:
        for h in handles:
            h.remove()
    if isinstance(out, dict) and type(out) is not dict:  # an HF ModelOutput (an OrderedDict): its fields
        out = {k: v for k, v in out.items()}
    if not any(isinstance(leaf, torch.Tensor) for leaf in pytree.tree_leaves(out)) and hasattr(out, "__dict__"):
        # an output object pytree does not know (a dataclass of tensors): its tensor attributes, by name
        out = {k: v for k, v in vars(out).items() if isinstance(v, torch.Tensor)}
    output = pytree.tree_map(lambda t: producers.get(id(t)) if isinstance(t, torch.Tensor) else t, out)
    return CapturedGraph(nodes, output, "dispatch")


@contextlib.contextmanager
def _quiet_torch_logs():
    """A failed export logs tracebacks through torch's loggers; the note in the report says it instead."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def capture(model: torch.nn.Module, example: torch.Tensor, prefer: str = "export") -> CapturedGraph:
    """The model's ATen graph at ``example``'s shape: torch.export, else dispatch tracing (with a note)."""
    if prefer == "export":
        try:
            with _quiet_torch_logs():
                return _export(model, example)
        except Exception as exc:  # export has many failure modes; the dispatch path handles the rest
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            graph = _dispatch(model, example)
            graph.notes.append(f"torch.export failed ({type(exc).__name__}: {reason}); captured by dispatch tracing")
            return graph
    return _dispatch(model, example)
