"""Raw text (or a value read from a config file) to a bounded number: the one place that does it.

Every command-line option and every config reader turns user-given numbers into ints and floats here, so
that every bad value gets the same kind of one-line message naming the option or key, and no value can make
the tool hang or fail inside: the bounds below are the documented caps (docs/reliability.md).

- Digits are ASCII only. Python's ``int()`` also reads Unicode digits such as ``٣`` and ``３`` (and
  ``'²'.isdigit()`` is true); a config linter or a crop must not silently accept a look-alike.
- A number is rejected by its length before it is converted: Python refuses to convert strings of more than
  4,300 digits (``ValueError``), and far shorter ones are already outside every cap.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from atrous_advisor.errors import InputError


@dataclass(frozen=True)
class Cap:
    """The allowed range of one kind of number, with what it is in words (for the message)."""

    low: int
    high: int
    what: str = "an integer"

    def describe(self) -> str:
        return f"{self.what} from {self.low} to {self.high}"


# The caps. Each is far beyond any real use and small enough that the arithmetic, the tables and (for the
# model commands) an attempt to allocate stay fast; a larger value is refused with a message saying the cap.
CROP = Cap(1, 65_536, "a side in px")  # a 65536² RGB float image is already 48 GiB
STRIDE = Cap(1, 4_096, "an output stride")
RATE = Cap(1, 65_536, "a rate")
BRANCHES = Cap(1, 64, "a number of branches")
SCALE = Cap(1, 4_096, "a pool scale")
MARGIN = Cap(0, 65_536, "a margin in px")
MIN_CELL = Cap(1, 65_536, "a cell size in px")
MAX_LIST = 64  # values in one comma list (--rates, --scales, --sweep): an ASPP or PPM has a handful
SEED = Cap(0, 2**32 - 1, "a seed")  # numpy's seeds are 32-bit
COUNT = Cap(1, 10_000_000, "a count")  # images, steps
BATCH = Cap(1, 65_536, "a batch size")
REPEATS = Cap(1, 1_000, "a number of seeds")
WORKERS = Cap(0, 64, "a number of processes")  # each one imports torch: hundreds exhaust memory
CLASSES = Cap(1, 65_536, "a number of classes")  # masks are 8- or 16-bit PNGs
LABEL = Cap(0, 65_535, "a mask value")
CHECKPOINT_EVERY = Cap(0, 10_000_000, "a number of steps")
SIDE = Cap(1, 65_536, "a size in px")
POSITIVE = Cap(1, 65_536, "a positive integer")
OBJECTS = Cap(1, 12, "a number of objects")

_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_SEPARATORS = re.compile(r"[,\s]+")
_PAIR = re.compile(r"\s*[x×X,]\s*")


def shown(text: Any, limit: int = 24) -> str:
    """A value as quoted in a message: long input is cut, so one bad value stays one readable line."""
    try:
        text = repr(text)
    except ValueError:  # an int past Python's 4,300-digit limit cannot even be printed
        return "<an integer of more than 4300 digits>"
    return text if len(text) <= limit else text[: limit - 2] + "…" + text[-1]


def int_problem(value: Any, cap: Cap) -> Optional[str]:
    """Why an already-parsed value (from JSON, YAML, TOML, a config) is not an int within ``cap``; None if it is."""
    if isinstance(value, bool):
        return f"expected {cap.describe()}"
    try:
        value = operator.index(value)  # ints and numpy's integer scalars; not floats or strings
    except TypeError:
        return f"expected {cap.describe()}"
    if not cap.low <= value <= cap.high:
        return f"out of range: expected {cap.describe()}"
    return None


def check_int(value: Any, name: str, cap: Cap) -> int:
    """An int read from structured input (JSON ``--kwargs`` values, TOML settings) within ``cap``."""
    problem = int_problem(value, cap)
    if problem:
        raise InputError(f"{name} {shown(value)}: {problem}")
    return operator.index(value)


def parse_int(text: Union[str, int], name: str, cap: Cap) -> int:
    """``"512"`` → 512 within ``cap``; anything else is an :class:`InputError` naming ``name``."""
    if isinstance(text, int) and not isinstance(text, bool):
        return check_int(text, name, cap)
    raw = str(text).strip()
    if not _INT.fullmatch(raw):
        raise InputError(f"{name} {shown(text)}: expected {cap.describe()}")
    digits = raw.lstrip("+-").lstrip("0") or "0"
    if len(digits) > len(str(max(abs(cap.low), abs(cap.high)))):  # refused before int() sees 5,000 digits
        raise InputError(f"{name} {shown(text)}: out of range: expected {cap.describe()}")
    value = -int(digits) if raw.startswith("-") else int(digits)  # leading zeros dropped: "000…08" is 8
    problem = int_problem(value, cap)
    if problem:
        raise InputError(f"{name} {shown(text)}: {problem}")
    return value


def parse_int_list(text: str, name: str, cap: Cap, max_items: int = MAX_LIST) -> tuple[int, ...]:
    """``"12,24,36"`` (commas or spaces) → ints within ``cap``; at most ``max_items`` of them."""
    raw = str(text).strip()
    parts = [p for p in _SEPARATORS.split(raw) if p]
    if not parts:
        raise InputError(f"{name} {shown(text)}: expected a comma-separated list, each {cap.describe()}")
    if len(parts) > max_items:
        raise InputError(f"{name}: {len(parts)} values; at most {max_items} are accepted")
    return tuple(parse_int(p, name, cap) for p in parts)


def parse_pair(text: Union[str, int, tuple], name: str, cap: Cap = CROP) -> tuple[int, int]:
    """``512`` → (512, 512); ``512x1024``, ``512×1024`` or ``512,1024`` → (h, w)."""
    if isinstance(text, tuple) and len(text) == 2:
        return (parse_int(text[0], name, cap), parse_int(text[1], name, cap))
    raw = str(text).strip()
    parts = _PAIR.split(raw)
    if len(parts) > 2 or not all(parts):
        raise InputError(f"{name} {shown(text)}: expected 512, 512x1024 (H×W) or 512,1024")
    values = [parse_int(p, name, cap) for p in parts]
    return (values[0], values[-1])


def parse_float(text: Union[str, float, int], name: str, low: float, high: float, *, open_low: bool = False) -> float:
    """A finite float in [low, high] (or (low, high] with ``open_low``); ``inf``, ``nan`` and ``1e999`` refused."""
    raw = str(text).strip()
    if not _FLOAT.fullmatch(raw):
        raise InputError(f"{name} {shown(text)}: expected a number")
    value = float(raw)
    above = value > low if open_low else value >= low
    if not math.isfinite(value) or not above or value > high:
        bracket = "(" if open_low else "["
        raise InputError(f"{name} {shown(text)}: expected a number in {bracket}{low:g}, {high:g}]")
    return value


def parse_float_list(text: str, name: str, count: int, low: float, high: float, *, open_low: bool = False) -> tuple[float, ...]:
    parts = [p for p in str(text).split(",")]
    if len(parts) != count:
        raise InputError(f"{name} {shown(text)}: expected {count} comma-separated numbers")
    return tuple(parse_float(p, name, low, high, open_low=open_low) for p in parts)


def option(name: str, cap: Cap) -> Callable[[Any], int]:
    """A typer ``parser=`` for an integer option: the text goes through :func:`parse_int`, never ``int()``."""

    def parse(value: Any) -> int:
        return parse_int(value, name, cap)

    parse.__name__ = cap.what.replace(" ", "_")  # click names the type after the function in --help
    return parse


def float_option(name: str, low: float, high: float) -> Callable[[Any], float]:
    """A typer ``parser=`` for a float option: ASCII digits only (``float('٣')`` is 3.0), finite, in [low, high]."""

    def parse(value: Any) -> float:
        return parse_float(value, name, low, high)

    parse.__name__ = "number"
    return parse


def optional_option(name: str, cap: Cap) -> Callable[[Any], Optional[int]]:
    def parse(value: Any) -> Optional[int]:
        return None if value is None else parse_int(value, name, cap)

    parse.__name__ = cap.what.replace(" ", "_")
    return parse


MAX_JSON_DIGITS = 1_000  # an integer in JSON input (--kwargs, smp config.json); Python refuses past 4,300


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise ValueError(f"an integer of more than {MAX_JSON_DIGITS} digits")
    return int(text)


def load_json(text: str) -> Any:
    """``json.loads`` with bounded integers and nesting: every failure is a ``ValueError`` with a short message.

    (``json.JSONDecodeError`` is a ``ValueError`` too; it keeps its ``msg``, ``lineno`` and ``colno``.)
    """
    import json

    try:
        return json.loads(text, parse_int=_json_int)
    except RecursionError:
        raise ValueError("nested too deeply") from None
