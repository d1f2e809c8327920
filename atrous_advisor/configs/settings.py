"""``[tool.atrous-advisor]`` in the user's ``pyproject.toml``: rule selection and the numbers rules use."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from atrous_advisor.errors import ConfigError, InputError
from atrous_advisor.geometry import DEFAULT_MARGIN, DEFAULT_MIN_CELL, TOLERANCE
from atrous_advisor.numbers import CROP, MARGIN, MIN_CELL, check_int, int_problem, parse_pair, shown

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The defaults are the assessment's (geometry/assessment.py); `tolerance` here overrides it for AA101.
DEFAULT_TOLERANCE = TOLERANCE


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] = ()  # code prefixes; empty selects every rule
    ignore: tuple[str, ...] = ()
    tolerance: float = DEFAULT_TOLERANCE
    min_cell: int = DEFAULT_MIN_CELL
    margin: int = DEFAULT_MARGIN
    crop: Optional[tuple[int, int]] = None  # for configs that carry no crop (smp, Detectron2 without CROP)
    stride: Optional[int] = None  # for heads whose output stride the config does not determine
    # yacs-style configs: which dotted key holds the crop, stride, rates and scales ([tool.atrous-advisor.keys])
    keys: tuple[tuple[str, str], ...] = ()
    crop_from: str = field(default="", compare=False)  # "--crop" or "`crop` in pyproject.toml": said in messages
    stride_from: str = field(default="", compare=False)
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


KEY_ROLES = ("crop", "stride", "rates", "scales")


def parse_keys(table: Any, where: Path) -> tuple[tuple[str, str], ...]:
    """``[tool.atrous-advisor.keys]``: role -> dotted key of a yacs-style YAML config (``MODEL.ASPP.RATES``)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [tool.atrous-advisor] keys must be a table such as {{rates = \"MODEL.ATROUS_RATES\"}}")
    unknown = sorted(set(table) - set(KEY_ROLES))
    if unknown:
        raise ConfigError(f"{where}: [tool.atrous-advisor.keys] {', '.join(unknown)}: expected {', '.join(KEY_ROLES)}")
    for role, key in table.items():
        if not isinstance(key, str) or not all(part.strip() for part in key.split(".")):
            raise ConfigError(f"{where}: [tool.atrous-advisor.keys] {role} {key!r}: expected a dotted key such as \"MODEL.RATES\"")
    if not {"rates", "scales"} & set(table):
        raise ConfigError(f"{where}: [tool.atrous-advisor.keys] names no `rates` or `scales` key: nothing to check")
    return tuple(sorted(table.items()))


def parse_settings(table: dict, where: Path) -> Settings:
    known = {"select", "ignore", "tolerance", "min-cell", "min_cell", "margin", "crop", "stride", "keys"}
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
            problem = int_problem(value, MIN_CELL if "cell" in key else MARGIN)
            if problem:
                raise ConfigError(f"{where}: [tool.atrous-advisor] {key} {shown(value)}: {problem}")
            out[key.replace("-", "_")] = value
    if "crop" in table:
        raw = table["crop"]
        try:
            if isinstance(raw, list) and len(raw) == 2:
                out["crop"] = (check_int(raw[0], "crop", CROP), check_int(raw[1], "crop", CROP))
            elif isinstance(raw, (int, str)) and not isinstance(raw, bool):
                out["crop"] = parse_pair(raw, "crop", CROP)
            else:
                raise InputError("")
        except InputError:
            raise ConfigError(
                f"{where}: [tool.atrous-advisor] crop {shown(raw)}: expected 512, \"512x1024\" or [512, 1024], "
                f"each {CROP.describe()}"
            ) from None
    if "stride" in table:
        from atrous_advisor.configs.supplied import parse_stride

        out["stride"] = parse_stride(str(table["stride"]), f"{where}: [tool.atrous-advisor]")
        out["stride_from"] = f"`stride` in {where.name} [tool.atrous-advisor]"
    if "keys" in table:
        out["keys"] = parse_keys(table["keys"], where)
    if "crop" in out:
        out["crop_from"] = f"`crop` in {where.name} [tool.atrous-advisor]"
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
            except ValueError:  # tomllib converts every integer, even one of 5,000 digits
                raise ConfigError(f"{candidate}: cannot read: an integer too long to convert") from None
            tool = data.get("tool", {})
            if not isinstance(tool, dict):
                raise ConfigError(f"{candidate}: `tool` must be a table ([tool.atrous-advisor])")
            table = tool.get("atrous-advisor")
            if isinstance(table, dict):
                return parse_settings(table, candidate)
            if table is not None:
                raise ConfigError(f"{candidate}: `tool.atrous-advisor` must be a table ([tool.atrous-advisor])")
    return Settings()


def check_codes(codes: tuple[str, ...], where: str) -> None:
    """A typo in --select must not select nothing and pass every config."""
    from atrous_advisor.configs.rules import RULES

    for code in codes:
        if not any(known.startswith(code) for known in RULES):
            raise InputError(f"{where} {code!r}: no rule code starts with it (rules: {', '.join(RULES)})")
