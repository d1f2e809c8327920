"""Model weights for ``validate`` and ``erf`` (``--weights``), next to model loading: one reader, one fit check.

torch is imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from atrous_advisor.errors import ModelLoadError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def read_weights(path: Path) -> "dict[str, torch.Tensor]":
    """A state dict from ``path``: a bare state dict, or a checkpoint holding one under ``state_dict``/``model``.

    Loaded with ``weights_only=True`` (no arbitrary code runs); a DDP ``module.`` prefix is removed.
    """
    import torch

    if not path.is_file():
        raise ModelLoadError(f"--weights {path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        raise ModelLoadError(
            f"--weights {path}: cannot be read as tensors only ({type(exc).__name__}: {(str(exc).splitlines() or ['empty'])[0][:160]}); "
            "save it with torch.save(model.state_dict(), path)"
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(f"--weights {path}: expected a state dict or a checkpoint with a 'state_dict' or 'model' key")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def check_fit(model: "torch.nn.Module", state: "dict[str, torch.Tensor]", path: Path) -> None:
    """Every key present with its shape, none extra (works on a meta-device model: only shapes are read)."""
    own = model.state_dict()
    wrong_shape = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("with another shape", wrong_shape)):
        if keys:
            problems.append(f"{len(keys)} {label} (e.g. {keys[0]})")
    if problems:
        raise ModelLoadError(f"--weights {path} does not fit the model: " + "; ".join(problems))


def load_weights(model: "torch.nn.Module", state: "dict[str, torch.Tensor]", path: Path) -> None:
    """Load ``state`` into ``model`` after :func:`check_fit`: a partial fit is refused, never half-loaded."""
    check_fit(model, state, path)
    model.load_state_dict(state)
