"""Where the image's rows and columns sit inside a tensor, through reshapes, permutes and token forms.

A tensor's layout is one tuple of *factors* per dim, outermost first, whose sizes multiply to the dim's size.
A factor is ``(tag, size, step)``:

* ``("h", n, s)`` / ``("w", n, s)``: ``n`` positions of the feature map's rows / columns, ``s`` features
  apart. The plain NCHW map is ``(), (C), (("h", H, 1),), (("w", W, 1),)``; the token form
  ``x.flatten(2).transpose(1, 2)`` is ``(N), (("h", H, 1), ("w", W, 1)), (C)``; Swin's window partition
  splits rows into ``("h", H/ws, ws)`` (which window, in the batch dim) and ``("h", ws, 1)`` (where in it).
* ``("kh", n, s)`` / ``("kw", n, s)``: key positions of an attention matrix (``q @ k.T``): the positions its
  softmax and its product with ``v`` mix over. They are not the tensor's own positions.
* ``(None, n, 0)``: anything else (batch, channels, heads).
* ``("+", n, 0)``: ``n`` extra entries prepended to a token dim (a class token): not positions.

Reshapes regroup the row-major sequence of factors, splitting a factor where a new dim boundary falls inside
it (``H = H/ws × ws``); when a boundary cannot fall on a factor, the layout is lost and the caller says
"unknown". Pure Python, no torch.
"""

from __future__ import annotations

from math import prod
from typing import Optional, Sequence

Factor = tuple[Optional[str], int, int]
Dim = tuple[Factor, ...]
Dims = tuple[Dim, ...]

AXIS_TAGS = ("h", "w")
KEY_TAGS = {"h": "kh", "w": "kw"}


def dim_size(dim: Dim) -> int:
    extra = sum(f[1] for f in dim if f[0] == "+")
    return extra + prod(f[1] for f in dim if f[0] != "+")


def plain(size: int) -> Dim:
    return () if size == 1 else ((None, int(size), 0),)


def canonical(shape: Sequence[int], h_dim: int = -2, w_dim: int = -1) -> Dims:
    """The layout of a map whose rows and columns are the dims ``h_dim`` and ``w_dim`` of ``shape``."""
    rank = len(shape)
    h, w = h_dim % rank, w_dim % rank
    out: list[Dim] = []
    for i, s in enumerate(shape):
        if i == h:
            out.append((("h", int(s), 1),))
        elif i == w:
            out.append((("w", int(s), 1),))
        else:
            out.append(plain(int(s)))
    return tuple(out)


def has_positions(dim: Dim) -> bool:
    return any(f[0] in ("h", "w") for f in dim)


def has_tokens(dim: Dim) -> bool:
    """Positions of the tensor or of its keys, or extra tokens: anything but plain channels/batch."""
    return any(f[0] is not None for f in dim)


def axis_factors(dim: Dim, tag: str) -> list[Factor]:
    return [f for f in dim if f[0] == tag]


def spatial_dims(dims: Optional[Dims]) -> Optional[tuple[int, int]]:
    """(dim of rows, dim of columns) as negative indices when each is one whole dim, else None."""
    if dims is None:
        return None
    rank = len(dims)
    found: dict[str, int] = {}
    for i, d in enumerate(dims):
        for f in d:
            if f[0] in ("h", "w", "kh", "kw", "+"):
                if f[0] in ("kh", "kw", "+") or len(d) != 1 or f[2] != 1 or f[0] in found:
                    return None
                found[f[0]] = i - rank
    if set(found) != {"h", "w"}:
        return None
    return (found["h"], found["w"])


def fit(dims: Dims, shape: Sequence[int]) -> Optional[Dims]:
    """``dims`` checked against the real ``shape`` (a split output, a padded map): plain dims take the real
    size; a dim with positions whose sizes disagree cannot be trusted (None)."""
    if len(dims) != len(shape):
        return None
    out = []
    for d, s in zip(dims, shape):
        if dim_size(d) == int(s):
            out.append(d)
        elif not has_tokens(d):
            out.append(plain(int(s)))
        else:
            return None
    return tuple(out)


def _normalize_dim(dim: Dim, drop_unit: set[str]) -> Dim:
    out: list[Factor] = []
    for f in dim:
        tag, n, s = f
        if n == 1 and (tag is None or tag in drop_unit):
            continue
        if out:
            ptag, pn, ps = out[-1]
            if tag is None and ptag is None:
                out[-1] = (None, pn * n, 0)
                continue
            if tag is not None and tag == ptag and tag != "+" and ps == n * s:
                out[-1] = (tag, pn * n, s)  # an outer and an inner part of the same axis, back together
                continue
        out.append(f)
    return tuple(out)


def normalize(dims: Dims) -> Dims:
    """Merge adjacent parts of one axis (window reverse), drop size-1 plain factors, and drop size-1
    position factors of an axis that still has real positions elsewhere."""
    real = {f[0] for d in dims for f in d if f[0] is not None and f[1] > 1}
    return tuple(_normalize_dim(d, real) for d in dims)


def permute(dims: Dims, order: Sequence[int]) -> Dims:
    return tuple(dims[int(o) % len(dims)] for o in order)


def reshape(dims: Dims, out_shape: Sequence[int]) -> Optional[Dims]:
    """Regroup the factors into ``out_shape`` (row-major), or None when a boundary cannot fall on them."""
    seq: list[tuple] = []  # factors, or ("dim", dim) for a dim with extra tokens, which must stay whole
    for d in dims:
        if any(f[0] == "+" for f in d):
            seq.append(("dim", d))
        else:
            seq.extend(f for f in d if not (f[0] is None and f[1] == 1))

    def size(item) -> int:
        return dim_size(item[1]) if item[0] == "dim" else item[1]

    out: list[Dim] = []
    i = 0
    rank = len(out_shape)
    for k, s in enumerate(out_shape):
        s = int(s)
        if s <= 0:
            return None
        cur: list = []
        produced = 1
        while produced < s:
            if i >= len(seq):
                return None
            item = seq[i]
            n = size(item)
            if n == 1:
                cur.append(item)
                i += 1
                continue
            if s % (produced * n) == 0:
                cur.append(item)
                produced *= n
                i += 1
                continue
            need = s // produced
            if s % produced or n % need or item[0] == "dim" or item[0] == "+":
                return None
            tag, _, step = item
            cur.append((tag, need, step * (n // need) if tag is not None else 0))  # the outer part stays here
            seq[i] = (tag, n // need, step)
            produced *= need
        if s == 1 and i < len(seq) and size(seq[i]) == 1:
            cur.append(seq[i])
            i += 1
        # size-1 position factors (an axis pooled to one value) follow their neighbour unless a size-1
        # dim comes next to hold them
        while i < len(seq) and size(seq[i]) == 1 and not (k + 1 < rank and int(out_shape[k + 1]) == 1):
            cur.append(seq[i])
            i += 1
        dim: list[Factor] = []
        for item in cur:
            if item[0] == "dim":
                if len(cur) != 1 and any(size(c) != 1 for c in cur if c is not item):
                    return None  # extra tokens merged with other dims: their positions are gone
                dim.extend(item[1])
            else:
                dim.append(item)
        out.append(tuple(dim))
    while i < len(seq):
        if size(seq[i]) != 1 or not out:
            return None
        item = seq[i]
        out[-1] = out[-1] + (tuple(item[1]) if item[0] == "dim" else (item,))
        i += 1
    return normalize(tuple(out))


def extent(factors: Sequence[Factor]) -> tuple[int, int]:
    """(span in features, smallest step) of the positions the ``factors`` of one axis enumerate."""
    span = sum((n - 1) * s for _, n, s in factors) + 1
    return span, min(s for _, n, s in factors if s > 0) if factors else 1
