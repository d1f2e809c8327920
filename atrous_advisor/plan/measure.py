"""The real peak of a training step on the CPU, to check the fake-tensor estimate against.

PyTorch's own CPU memory profiling (``torch.profiler`` with ``profile_memory=True``) records every
allocation and free of PyTorch's CPU allocator, kernel-internal buffers included (oneDNN reorders, im2col
columns), and ``_memory_profile().timeline`` pairs them into tensor lifetimes, with the tensors alive
before the step (parameters, optimizer state, the batch) marked pre-existing. The running sum of that
timeline is the CPU analogue of ``torch.cuda.max_memory_allocated``: what the estimate claims to be.

It is independent of the estimate's mechanism (allocator events versus dispatcher outputs on fake
tensors) and free of the noise of the process's RSS (the Python heap, glibc's arenas, library code), which
``benchmarks/bench_plan.py`` reports beside it.
"""

from __future__ import annotations

import torch

from atrous_advisor.plan.step import training_step


def profiled_peak(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                  target: torch.Tensor, precision: str = "fp32") -> int:
    """Peak live bytes of PyTorch's CPU allocator during one real ``training_step``."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        training_step(model, optimizer, images, target, precision)
    live = peak = 0
    for _time, action, _key, size in prof._memory_profile().timeline:
        if action in (Action.PREEXISTING, Action.CREATE):
            live += size
        elif action == Action.DESTROY:
            live -= size
        peak = max(peak, live)
    return peak
