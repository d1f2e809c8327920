"""A live ``nn.Module`` as something ``inspect`` can read: a copy on the meta device, the original untouched.

The copy shares no storage with the model and allocates none: every registered parameter and buffer is
replaced by a meta tensor of the same shape, dtype and ``requires_grad`` *before* ``copy.deepcopy`` reaches
it (through deepcopy's memo), so a model on a GPU costs no GPU memory and its values are never read. The
model's device, parameters, gradients and training mode are not changed.

The inspection pipeline loads models by spec (``package.module:callable``); :func:`current` is the callable
that hands it the copy being inspected, so the live model goes through exactly the path ``inspect`` takes.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from atrous_advisor.errors import ModelLoadError
from atrous_advisor.report.inspect_models import InspectReport

SPEC = "atrous_advisor.live:current"
_state = threading.local()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The user's model inside DataParallel / DistributedDataParallel (and mmengine's subclasses of them)."""
    wrappers = (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)
    while isinstance(model, wrappers):
        model = model.module
    return model


def meta_copy(model: torch.nn.Module, share: Iterable[Any] = ()) -> torch.nn.Module:
    """A deep copy of ``model`` whose parameters and buffers are meta tensors.

    ``share`` lists objects the copy should reference rather than copy (a Lightning module's trainer):
    they are not part of the network and copying them would copy a whole training run.
    """
    memo: dict[int, Any] = {}
    for obj in share:
        if obj is not None:
            memo[id(obj)] = obj
    for tensor in (*model.parameters(), *model.buffers()):
        if id(tensor) in memo:  # tied weights: one meta tensor for both names
            continue
        meta = tensor.detach().to("meta")
        if isinstance(tensor, torch.nn.Parameter):
            meta = torch.nn.Parameter(meta, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = meta
    try:
        copied = copy.deepcopy(model, memo)
    except Exception as exc:
        raise ModelLoadError(
            f"{type(model).__name__}: cannot be copied for inspection: {type(exc).__name__}: "
            + " ".join(str(exc).split())[:200]
        ) from exc
    stray = [name for name, t in (*copied.named_parameters(), *copied.named_buffers()) if t.device.type != "meta"]
    if stray:  # pragma: no cover - every registered tensor is in the memo
        raise ModelLoadError(f"{type(model).__name__}: {stray[0]} was not moved to the meta device")
    return copied


def inspect_copy(copy: torch.nn.Module, crop: tuple[int, int], label: str, **options: Any) -> InspectReport:
    """``inspect``'s report on ``copy`` (from :func:`meta_copy`), named ``label``; options as for the CLI."""
    from atrous_advisor.graph.inspection import inspect_model

    with _serving(copy):
        report = inspect_model(SPEC, crop, **options)
    return report.model_copy(update={"model": label})


@contextlib.contextmanager
def _serving(model: torch.nn.Module) -> Iterator[None]:
    """While active, the spec :data:`SPEC` loads ``model``."""
    previous = getattr(_state, "model", None)
    _state.model = model
    try:
        yield
    finally:
        _state.model = previous


def current() -> torch.nn.Module:
    """The model being inspected by :func:`inspect_copy` (the loader calls this)."""
    model = getattr(_state, "model", None)
    if model is None:
        raise ModelLoadError(f"{SPEC}: only used by atrous_advisor.inspect_model on a live model")
    return model
