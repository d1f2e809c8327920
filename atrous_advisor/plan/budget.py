"""Memory budgets: parsing ``24GiB``/``24G``/``24000MB``/``0.5TiB``, and the share of a GPU a training step may use.

No torch here: the budget is checked before anything is built.

The safety margin
-----------------
What the tracker estimates is what ``torch.cuda.max_memory_allocated`` reports: the bytes of live tensors at
the worst moment of the step. A card of ``budget`` bytes cannot give all of them to tensors:

* the CUDA context, cuBLAS/cuDNN handles and their kernels' images live outside PyTorch's allocator:
  ``CONTEXT_RESERVE`` = 1 GiB (a CUDA 12 context with lazy module loading takes roughly 0.3–0.6 GiB; the
  rest covers the libraries' handles);
* the caching allocator rounds blocks and fragments its segments, and cuDNN asks it for workspaces that no
  fake-tensor tracker can see (their size depends on the algorithm cuDNN picks at run time):
  ``ALLOCATOR_MARGIN`` = 10 % of what is left.

So a step fits when ``peak ≤ (budget − CONTEXT_RESERVE) × (1 − ALLOCATOR_MARGIN)``.
"""

from __future__ import annotations

import re

from atrous_advisor.numbers import shown
from atrous_advisor.errors import InputError
from atrous_advisor.report import format as fmt

CONTEXT_RESERVE = 1 << 30
ALLOCATOR_MARGIN = 0.10

_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kib": 1 << 10, "kb": 10**3,
    "m": 1 << 20, "mib": 1 << 20, "mb": 10**6,
    "g": 1 << 30, "gib": 1 << 30, "gb": 10**9,
    "t": 1 << 40, "tib": 1 << 40, "tb": 10**12,
}
_BUDGET = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*")


MAX_MEMORY = 2**60  # bytes: a budget past an exbibyte is a typo


def parse_memory(text: str) -> int:
    """Bytes in ``24GiB``, ``24G`` (binary, as GPU vendors' "24 GB" cards are), ``24000MB`` (decimal), ``0.5TiB``.

    A bare number is bytes. Nonsense, zero and negative values raise ``InputError`` naming the value.
    """
    raw = str(text)
    found = _BUDGET.fullmatch(raw)
    if not found or found.group(2).lower() not in _UNITS:
        raise InputError(f"--memory {raw!r}: expected a size such as 24GiB, 24G, 24000MB or 0.5TiB")
    value = float(found.group(1)) * _UNITS[found.group(2).lower()]
    if value < 1:
        raise InputError(f"--memory {shown(raw)}: the budget must be more than zero bytes")
    if not value <= MAX_MEMORY:  # also inf, from a number of 5,000 digits
        raise InputError(f"--memory {shown(raw)}: at most {MAX_MEMORY // 2**50} PiB")
    return int(value)


def usable_bytes(budget: int) -> int:
    """The bytes a training step's tensors may take on a card of ``budget`` bytes (see the module doc)."""
    return max(0, int((budget - CONTEXT_RESERVE) * (1 - ALLOCATOR_MARGIN)))

