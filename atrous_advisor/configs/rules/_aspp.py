"""Shared by the ASPP rules: the rates a head should have at the config's crop and stride."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from atrous_advisor.configs.facts import AsppFacts, ConfigFacts
from atrous_advisor.configs.rules.base import FixIntent, fix_for_target, fmt_rates
from atrous_advisor.configs.settings import Settings
from atrous_advisor.geometry import feature_map, optimal_base_rate, pair, suggested_rates
from atrous_advisor.errors import InputError


@dataclass(frozen=True)
class AsppContext:
    aspp: AsppFacts
    crop: tuple[int, int]
    fmap: tuple[int, int]
    rates: list[tuple[int, int]]  # per-axis rates of the dilated branches
    optimal: tuple[float, float]
    suggested: list  # ints for a square crop, (h, w) pairs otherwise
    fix: Optional[FixIntent]

    @property
    def where(self) -> str:
        h, w = self.crop
        crop = f"{h}" if h == w else f"{h}x{w}"
        return f"at crop {crop}, stride {self.aspp.stride}"


def aspp_context(facts: ConfigFacts, settings: Settings) -> Optional[AsppContext]:
    aspp = facts.aspp
    if aspp is None or facts.crop is None or aspp.stride is None:
        return None
    n = len(aspp.rates)
    try:
        optimal = optimal_base_rate(facts.crop, aspp.stride, n, settings.margin)
        suggested_pairs = suggested_rates(facts.crop, aspp.stride, n, settings.margin)
    except InputError:
        return None  # crop smaller than the margin: the rate rules do not apply
    square = all(h == w for h, w in suggested_pairs)
    suggested = [h for h, _ in suggested_pairs] if square else suggested_pairs
    fix = fix_for_target(
        f"Set the ASPP rates to {fmt_rates(suggested)}",
        aspp.target,
        aspp.to_written(suggested),
        # A non-square crop gets per-axis (h, w) dilations: PyTorch's Conv2d takes them, but a config
        # reader that expects one int per branch may not, so the fix is only applied with --unsafe-fixes.
        "safe" if square else "unsafe",
    )
    return AsppContext(aspp, facts.crop, feature_map(facts.crop, aspp.stride), [pair(r) for r in aspp.rates],
                       optimal, suggested, fix)
