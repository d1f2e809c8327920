"""Change a detected head's atrous rates or pooling scales in place; every weight keeps its shape.

A 3×3 convolution's weight does not depend on its dilation, and an adaptive pool has no weights, so a
checkpoint trained under one configuration loads under any other. ``find_heads`` (``atrous_advisor.graph``)
names the modules; this module only edits them:

* ASPP branch ``nn.Conv2d``: ``dilation = (rh, rw)`` and ``padding = (rh·(kh−1)/2, rw·(kw−1)/2)``, which keeps
  the output the size of the input, as the original 'same' padding did.
* PPM ``nn.AdaptiveAvgPool2d``/``nn.AdaptiveMaxPool2d``: ``output_size = (k, k)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence, Union

from torch import nn

from atrous_advisor.errors import InputError

if TYPE_CHECKING:  # the head description comes from the graph package
    from atrous_advisor.graph.heads import HeadSite

IntPair = tuple[int, int]


@dataclass(frozen=True)
class Edit:
    """One module changed by surgery, with what it was and what it became."""

    module: str
    attribute: str
    before: tuple
    after: tuple


def _submodule(model: nn.Module, name: str, expected: tuple[type, ...], head: "HeadSite") -> nn.Module:
    try:
        module = model.get_submodule(name)
    except AttributeError as exc:
        raise InputError(f"head {head.name!r}: model has no module {name!r}") from exc
    if not isinstance(module, expected):
        kinds = " or ".join(t.__name__ for t in expected)
        raise InputError(f"head {head.name!r}: module {name!r} is {type(module).__name__}, expected {kinds}")
    return module


def _as_pair(value: Union[int, Sequence[int]]) -> IntPair:
    if isinstance(value, int):
        return (value, value)
    h, w = value
    return (int(h), int(w))


def apply_rates(model: nn.Module, head: "HeadSite", rates: Sequence[Union[int, IntPair]]) -> list[Edit]:
    """Set the dilation (and matching padding) of every dilated branch of an ASPP ``head``, in order."""
    if head.kind != "aspp":
        raise InputError(f"head {head.name!r} is {head.kind}, not ASPP: it has no atrous rates to change")
    pairs = [_as_pair(r) for r in rates]
    if len(pairs) != len(head.branch_modules):
        raise InputError(
            f"head {head.name!r} has {len(head.branch_modules)} dilated branch(es) but {len(pairs)} rates were given"
        )
    edits = []
    for name, (rh, rw) in zip(head.branch_modules, pairs):
        if rh < 1 or rw < 1:
            raise InputError(f"rate ({rh}, {rw}) for {name!r}: rates must be at least 1")
        conv = _submodule(model, name, (nn.Conv2d,), head)
        kh, kw = conv.kernel_size
        before = (tuple(conv.dilation), conv.padding)  # padding may have been the string 'same'
        conv.dilation = (rh, rw)
        conv.padding = (rh * (kh - 1) // 2, rw * (kw - 1) // 2)
        # nn.Conv2d precomputes the padding it passes to F.pad for non-zero padding modes.
        conv._reversed_padding_repeated_twice = [p for p in reversed(conv.padding) for _ in range(2)]
        edits.append(Edit(name, "dilation/padding", before, (conv.dilation, conv.padding)))
    return edits


def apply_scales(model: nn.Module, head: "HeadSite", scales: Sequence[int]) -> list[Edit]:
    """Set the output size of every adaptive pool of a PPM ``head``, in order (one scale per pool)."""
    if head.kind != "ppm":
        raise InputError(f"head {head.name!r} is {head.kind}, not PPM: it has no pooling scales to change")
    if len(scales) != len(head.branch_modules):
        raise InputError(
            f"head {head.name!r} has {len(head.branch_modules)} pooling branches but {len(scales)} scales were given "
            "(the number of branches is fixed by the weights)"
        )
    edits = []
    for name, scale in zip(head.branch_modules, scales):
        if int(scale) < 1:
            raise InputError(f"scale {scale} for {name!r}: scales must be at least 1")
        pool = _submodule(model, name, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), head)
        before = _as_pair(pool.output_size)
        pool.output_size = (int(scale), int(scale))
        edits.append(Edit(name, "output_size", before, pool.output_size))
    return edits
