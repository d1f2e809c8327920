"""Per-axis pairs and parsing of the user's crop and integer lists."""

from __future__ import annotations

from typing import TypeVar, Union

from atrous_advisor.errors import InputError
from atrous_advisor.numbers import CROP, POSITIVE, parse_pair
from atrous_advisor.numbers import parse_int_list as _parse_int_list

T = TypeVar("T")
Pair = tuple  # (h, w); kept as a plain tuple so results serialise as [h, w]


def pair(value: Union[T, tuple[T, T], list[T]]) -> tuple[T, T]:
    """Broadcast a scalar to ``(v, v)``; pass an (h, w) pair through."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InputError(f"expected an (h, w) pair, got {value!r}")
        return (value[0], value[1])
    return (value, value)


def parse_crop(text: Union[str, int, tuple[int, int]]) -> tuple[int, int]:
    """Parse ``512``, ``512x1024`` (H×W) or ``512,1024`` into ``(h, w)``, each side within the crop cap."""
    return parse_pair(text, "crop", CROP)


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """Parse ``12,24,36`` (spaces allowed) into positive ints, naming the bad value on error."""
    return _parse_int_list(text, what, POSITIVE)
