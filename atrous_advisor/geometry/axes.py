"""Per-axis pairs and parsing of the user's crop and integer lists."""

from __future__ import annotations

import re
from typing import Sequence, TypeVar, Union

from atrous_advisor.errors import InputError

T = TypeVar("T")
Pair = tuple  # (h, w); kept as a plain tuple so results serialise as [h, w]

_CROP_SPLIT = re.compile(r"\s*[x×X,]\s*")


def pair(value: Union[T, tuple[T, T], list[T]]) -> tuple[T, T]:
    """Broadcast a scalar to ``(v, v)``; pass an (h, w) pair through."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InputError(f"expected an (h, w) pair, got {value!r}")
        return (value[0], value[1])
    return (value, value)


def _positive_int(text: str, what: str, original: str) -> int:
    text = text.strip()
    if not re.fullmatch(r"[+]?\d+", text):
        raise InputError(f"{what} {original!r}: {text!r} is not a positive integer")
    value = int(text)
    if value <= 0:
        raise InputError(f"{what} {original!r}: must be positive, got {value}")
    return value


def parse_crop(text: Union[str, int, Sequence[int]]) -> tuple[int, int]:
    """Parse ``512``, ``512x1024`` (H×W) or ``512,1024`` into ``(h, w)``."""
    if isinstance(text, int):
        text = str(text)
    if isinstance(text, (tuple, list)):
        if len(text) != 2:
            raise InputError(f"crop {tuple(text)!r}: expected (h, w)")
        text = f"{text[0]}x{text[1]}"
    raw = str(text).strip()
    parts = _CROP_SPLIT.split(raw)
    if len(parts) > 2 or not all(parts):
        raise InputError(f"crop {raw!r}: expected 512, 512x1024 (H×W) or 512,1024")
    if len(parts) == 1:
        side = _positive_int(parts[0], "crop", raw)
        return (side, side)
    return (_positive_int(parts[0], "crop", raw), _positive_int(parts[1], "crop", raw))


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """Parse ``12,24,36`` (spaces allowed) into positive ints, naming the bad value on error."""
    raw = str(text).strip()
    parts = [p for p in re.split(r"[,\s]+", raw) if p]
    if not parts:
        raise InputError(f"{what} {raw!r}: expected a comma-separated list of positive integers")
    return tuple(_positive_int(p, what, raw) for p in parts)
