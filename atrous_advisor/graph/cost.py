"""Parameters and multiply-accumulates of a model at one crop, total and per top-level module.

Two counters:

* ``fast`` (default): ``torch.utils.flop_counter.FlopCounterMode`` on meta tensors. It counts matmul and
  convolution FLOPs as 2 per MAC, so MACs = FLOPs / 2. Nothing is allocated, so it is quick at any crop.
* ``fvcore``: ``fvcore.nn.FlopCountAnalysis`` on a real CPU model. It traces with TorchScript and runs
  the model; its "flops" are MACs, and it also counts batch norm, interpolation and pooling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atrous_advisor.errors import MissingExtraError


@dataclass
class Cost:
    counter: str  # "fast" or "fvcore"
    params: int
    macs: int
    per_module: dict[str, tuple[int, int]] = field(default_factory=dict)  # top-level child → (params, macs)
    notes: list[str] = field(default_factory=list)


def _params(model) -> tuple[int, dict[str, int]]:
    total = sum(p.numel() for p in model.parameters())
    per = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    return total, per


def fast_cost(model, example) -> tuple[Cost, Any]:
    """Count with FlopCounterMode while running ``example`` (meta): returns the cost and the output."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, depth=None) as counter:
        output = model(example)
    return from_counter(model, counter), output


def from_counter(model, counter) -> Cost:
    """The cost a FlopCounterMode counted while ``model`` ran (total and per top-level child)."""
    flops = counter.get_flop_counts()
    root = type(model).__name__
    total_params, per_params = _params(model)
    per = {}
    for name in per_params:
        per[name] = (per_params[name], int(sum(flops.get(f"{root}.{name}", {}).values()) // 2))
    return Cost("fast", total_params, int(counter.get_total_flops() // 2), per)


def fvcore_cost(model, example) -> Cost:
    """fvcore's count on a CPU model (its "flops" are MACs); unsupported ops are listed in the notes."""
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError as exc:  # pragma: no cover
        raise MissingExtraError("--counter fvcore needs fvcore: pip install 'atrous-advisor[torch]'") from exc
    import logging

    analysis = FlopCountAnalysis(model, example)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    by_module = analysis.by_module()
    total_params, per_params = _params(model)
    per = {name: (per_params[name], int(by_module.get(name, 0))) for name in per_params}
    cost = Cost("fvcore", total_params, int(analysis.total()), per)
    skipped = analysis.unsupported_ops()
    if skipped:
        cost.notes.append("fvcore skipped ops: " + ", ".join(f"{k}×{v}" for k, v in sorted(skipped.items())))
    return cost
