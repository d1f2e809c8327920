"""Where the model-facing commands (validate, erf) run: one device resolver and one CPU thread policy.

torch is imported inside the functions: importing this module costs nothing for ``rate`` or ``lint``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from atrous_advisor.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

THREADS_HELP = (
    "CPU threads for torch. Default on CPU: the cores not already busy (cores − 1-minute load average, at least "
    "1), because torch's own default, one thread per core, waits on other jobs at every op: on a shared 2-core "
    "CPU erf ran 17 images/s with 2 threads and 184 with 1 (docs/erf.md)."
)


def resolve_device(requested: str = "auto", local_rank: Optional[int] = None) -> "torch.device":
    """``auto``: CUDA when available, else CPU; an explicit CUDA device must exist. Under torchrun
    (``local_rank`` given) each process takes GPU ``LOCAL_RANK``."""
    import torch

    name = (requested or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {requested!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {requested}: CUDA is not available on this machine (torch {torch.__version__}); use --device cpu")
        index = local_rank if local_rank is not None else (device.index or 0)
        if index >= torch.cuda.device_count():
            raise InputError(f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device("cuda", index)
    if device.type != "cpu":
        raise InputError(f"--device {requested!r}: expected auto, cpu, cuda or cuda:N")
    return device


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers and taskset restrict)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_cpu_threads(processes: int = 1) -> int:
    """The cores not already busy, shared among ``processes`` (torchrun on CPU), at least 1.

    torch starts one thread per core whatever else runs; on a shared machine its threads then wait on each
    other at every operation (see ``THREADS_HELP``), so the load average is subtracted first.
    """
    cores = available_cores()
    try:
        busy = os.getloadavg()[0]
    except (OSError, AttributeError):  # not available on this platform
        busy = 0.0
    free = min(cores, int(cores - busy + 0.5))
    return max(1, free // max(1, processes))


def set_cpu_threads(requested: Optional[int], device_type: str, processes: int = 1) -> int:
    """Apply ``--threads`` (or, on CPU, the default policy); return the thread count torch now uses."""
    import torch

    if requested is not None:
        if requested < 1:
            raise InputError(f"--threads {requested}: must be at least 1")
        torch.set_num_threads(requested)
    elif device_type == "cpu":
        torch.set_num_threads(default_cpu_threads(processes))
    return torch.get_num_threads()
