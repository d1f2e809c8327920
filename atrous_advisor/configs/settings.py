"""``[tool.atrous-advisor]`` in the user's ``pyproject.toml``: rule selection and the numbers rules use."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from atrous_advisor.errors import ConfigError, InputError
from atrous_advisor.geometry import DEFAULT_MARGIN, DEFAULT_MIN_CELL, parse_crop

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_TOLERANCE = 0.15  # AA101: |r − r*| > max(1, tolerance·r*)
PADDING_THRESHOLD = 0.75  # AA103: a branch whose taps read more padding than this


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] = ()  # code prefixes; empty selects every rule
    ignore: tuple[str, ...] = ()
    tolerance: float = DEFAULT_TOLERANCE
    min_cell: int = DEFAULT_MIN_CELL
    margin: int = DEFAULT_MARGIN
    crop: Optional[tuple[int, int]] = None  # for configs that carry no crop (smp, Detectron2 without CROP)
    source: Optional[Path] = field(default=None, compare=False)

    def enabled(self, code: str) -> bool:
        selected = not self.select or any(code.startswith(p) for p in self.select)
        return selected and not any(code.startswith(p) for p in self.ignore)

    def override(self, **changes: Any) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _codes(value: Any, key: str, where: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise ConfigError(f"{where}: [tool.atrous-advisor] {key} must be a list of rule codes like [\"AA101\"]")
    return tuple(c.strip().upper() for c in value)


def parse_settings(table: dict, where: Path) -> Settings:
    known = {"select", "ignore", "tolerance", "min-cell", "min_cell", "margin", "crop"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) in [tool.atrous-advisor]: {', '.join(unknown)}")
    out: dict[str, Any] = {"source": where}
    if "select" in table:
        out["select"] = _codes(table["select"], "select", where)
    if "ignore" in table:
        out["ignore"] = _codes(table["ignore"], "ignore", where)
    if "tolerance" in table:
        tol = table["tolerance"]
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
            raise ConfigError(f"{where}: [tool.atrous-advisor] tolerance {tol!r}: must be a fraction such as 0.15")
        out["tolerance"] = float(tol)
    for key in ("min-cell", "min_cell", "margin"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if "cell" in key else 0):
                raise ConfigError(f"{where}: [tool.atrous-advisor] {key} {value!r}: must be a positive integer")
            out[key.replace("-", "_")] = value
    if "crop" in table:
        raw = table["crop"]
        try:
            out["crop"] = parse_crop(tuple(raw) if isinstance(raw, list) else raw)
        except (InputError, TypeError, IndexError):
            raise ConfigError(f"{where}: [tool.atrous-advisor] crop {raw!r}: expected 512, \"512x1024\" or [512, 1024]") from None
    return Settings(**out)


def find_settings(start: Path) -> Settings:
    """The nearest ``pyproject.toml`` at or above ``start`` that has ``[tool.atrous-advisor]``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"{candidate}: cannot read: {exc}") from None
            table = data.get("tool", {}).get("atrous-advisor")
            if table is not None:
                return parse_settings(table, candidate)
    return Settings()


def check_codes(codes: tuple[str, ...], where: str) -> None:
    """A typo in --select must not select nothing and pass every config."""
    from atrous_advisor.configs.rules import RULES

    for code in codes:
        if not any(known.startswith(code) for known in RULES):
            raise InputError(f"{where} {code!r}: no rule code starts with it (rules: {', '.join(RULES)})")
