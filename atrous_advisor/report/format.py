"""How a value is written in human output, once for every command.

Conventions: per-axis pairs are H×W with the multiplication sign, a square pair is one number (``512``,
``512×1024``); a rate set is ``(12, 24, 36)`` or ``(10×21, 20×42, 30×63)``; shares are whole percentages;
``None`` on an axis (a global field) is ``global``, a missing value is ``—``. Pure functions, no imports
from the rest of the package, so every layer may use them.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

Number = Union[int, float]
MISSING = "—"


def number(value: Optional[Number], digits: Optional[int] = None) -> str:
    """``12``, ``10.5``; rounded to ``digits`` decimals when given (trailing zeros dropped)."""
    if value is None:
        return MISSING
    if digits is not None:
        value = round(float(value), digits)
    return f"{value:g}" if isinstance(value, float) else str(value)


def pair(value: Sequence[Optional[Number]], unit: str = "", digits: Optional[int] = None, none: str = "global") -> str:
    """``64`` for a square pair, ``64×128`` otherwise; ``digits`` rounds first (``10.67×21.67``)."""
    h, w = value
    if h is None and w is None:
        return none
    text = [none if v is None else number(v, digits) for v in (h, w)]
    return (text[0] if text[0] == text[1] else f"{text[0]}×{text[1]}") + unit


def crop(value: Sequence[int]) -> str:
    """A crop or a feature map, H×W: ``512`` or ``512×1024``."""
    return pair(value)


def rates(values: Sequence[Union[int, Sequence[int]]]) -> str:
    """A rate set: ``(12, 24, 36)``, or per axis ``(10×21, 20×42, 30×63)``."""
    return "(" + ", ".join(str(r) if isinstance(r, int) else pair(r) for r in values) + ")"


def ints(values: Sequence[int]) -> str:
    """An int tuple as the user writes it: ``(1, 2, 3, 6)``."""
    return "(" + ", ".join(str(v) for v in values) + ")"


def percent(ratio: float) -> str:
    """``0.613`` → ``61%``."""
    return f"{ratio:.0%}"


def percent_pair(ratios: Sequence[float]) -> str:
    """Per-axis shares: ``61%`` or ``94×188%``."""
    return pair(tuple(round(100 * r) for r in ratios), "%")


def px(value: Optional[Sequence[Optional[Number]]], digits: Optional[int] = 0, none: str = "global") -> str:
    """A per-axis length in pixels, rounded to whole px by default: ``64 px``, ``40×80 px``."""
    if value is None:
        return MISSING
    return pair(value, " px", digits, none)


def si(n: Number) -> str:
    """Counts such as parameters and MACs: ``23.5 M``."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return str(n)


def size(n: Number) -> str:
    """Bytes in binary units, as nvidia-smi and PyTorch's allocator report them: ``6.1 GiB``, ``812 MiB``."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}" if abs(n) < 100 * scale else f"{n / scale:.0f} {unit}"
    return f"{int(n)} B"
