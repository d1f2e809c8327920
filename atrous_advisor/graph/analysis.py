"""Capture + propagate at a crop, with the user-facing error for a model that fails at that crop."""

from __future__ import annotations

import re

from atrous_advisor.errors import ModelLoadError


def example_input(crop: tuple[int, int], device: str = "meta"):
    import torch

    return torch.empty(1, 3, int(crop[0]), int(crop[1]), device=device)


def forward_error(exc: BaseException, crop: tuple[int, int]) -> ModelLoadError:
    """One line for a forward failure at this crop, with the divisibility the model asks for if it says so."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    found = re.search(r"divisible by (\d+)", message)
    hint = ""
    if found:
        n = int(found.group(1))
        up = tuple(-(-c // n) * n for c in crop)
        hint = f"; the model needs the input divisible by {n}: try --crop {up[0]}x{up[1]}"
    elif any(c % 32 for c in crop):
        up = tuple(-(-c // 32) * 32 for c in crop)
        hint = f"; many backbones need the input divisible by 32 (e.g. --crop {up[0]}x{up[1]})"
    if len(message) > 240:
        message = message[:240] + "…"
    return ModelLoadError(f"model forward failed at crop {crop[0]}x{crop[1]}: {type(exc).__name__}: {message}{hint}")


def capture_and_propagate(model, crop: tuple[int, int], prefer: str = "export", device: str | None = None):
    """(CapturedGraph, Propagation) of ``model`` at ``crop``; forward failures become ModelLoadError."""
    from atrous_advisor.graph.capture import capture
    from atrous_advisor.graph.engine import propagate

    if device is None:
        params = next(iter(model.parameters()), None)
        device = params.device.type if params is not None else "meta"
    x = example_input(crop, device)
    try:
        graph = capture(model, x, prefer)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise forward_error(exc, crop) from exc
    return graph, propagate(graph)
