"""One training step, written once: the planner runs it on fake tensors, the accuracy benchmark on real ones.

The step is what segmentation trainers do (mmseg, torchvision's reference script, smp's examples):
forward in train mode → per-pixel cross-entropy on every logits map the model returns (the main output and
any auxiliary head), each upsampled to the label size first as mmseg does → backward → optimizer step →
``zero_grad(set_to_none=True)``. Mixed precision is ``torch.autocast`` around forward and loss, the weights
staying in fp32, as AMP training does.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
OPTIMIZERS = ("sgd", "adamw", "adam")
IGNORE_INDEX = 255


def make_optimizer(name: str, params) -> torch.optim.Optimizer:
    """SGD is mmseg's schedule for DeepLab/PSPNet (lr 0.01, momentum 0.9, weight decay 5e-4)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=6e-5, weight_decay=0.01)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-4)
    raise ValueError(f"optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")


def logits_maps(output: Any) -> list[torch.Tensor]:
    """Every 4-d floating tensor in the model's output, main output first (dict order, then tuple order).

    An explicit stack, not a recursive closure: a closure that calls itself is a reference cycle, and a cycle
    holding the result list would keep the logits alive until the garbage collector runs — into the backward,
    where they are the size of the peak's largest temporaries.
    """
    found: list[torch.Tensor] = []
    stack = [output]
    while stack:
        value = stack.pop()
        if isinstance(value, torch.Tensor):
            if value.dim() == 4 and value.is_floating_point():
                found.append(value)
        elif isinstance(value, dict):
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, (list, tuple)):
            stack.extend(reversed(value))
        else:  # HF-style ModelOutput or a dataclass: its logits
            stack.extend(getattr(value, k) for k in ("aux", "out", "logits") if hasattr(value, k))
    return found


def seg_loss(output: Any, target: torch.Tensor) -> torch.Tensor:
    maps = logits_maps(output)
    if not maps:
        raise ValueError(f"the model's output ({type(output).__name__}) holds no N×C×H×W logits to train on")

    def term(logits: torch.Tensor) -> torch.Tensor:
        if tuple(logits.shape[-2:]) != tuple(target.shape[-2:]):
            logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        return F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)  # autocast runs it in fp32

    loss = term(maps[0])
    for extra in maps[1:]:
        loss = loss + term(extra)
    return loss


def prime_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Create the optimizer's state (SGD's momentum, Adam's moments) as a first step would, without a forward.

    From the second step on the state lives through forward and backward, so that is the step to measure.
    """
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                  target: torch.Tensor, precision: str = "fp32") -> None:
    dtype = PRECISIONS[precision]
    device = images.device.type
    if dtype is None:
        loss = seg_loss(model(images), target)
    else:
        with torch.autocast(device_type=device, dtype=dtype):
            loss = seg_loss(model(images), target)
    loss.backward()
    del loss
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
