"""Shared by the ASPP rules: the one assessment of the head (geometry.assess_aspp) at the config's crop and stride."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from atrous_advisor.configs.facts import AsppFacts, ConfigFacts
from atrous_advisor.configs.rules.base import FixIntent, fix_for_target
from atrous_advisor.configs.settings import Settings
from atrous_advisor.geometry import AsppAssessment, assess_aspp
from atrous_advisor.report import format as fmt


@dataclass(frozen=True)
class AsppContext:
    aspp: AsppFacts
    assessment: AsppAssessment
    suggested: list[Union[int, tuple[int, int]]]  # ints for a square crop, (h, w) pairs otherwise
    fix: Optional[FixIntent]

    @property
    def crop(self) -> tuple[int, int]:
        return self.assessment.crop

    @property
    def fmap(self) -> tuple[int, int]:
        return self.assessment.feature_map

    @property
    def rates(self) -> list[tuple[int, int]]:
        return self.assessment.rates

    @property
    def optimal(self) -> tuple[float, float]:
        assert self.assessment.optimal_base_rate is not None  # aspp_context returns None otherwise
        return self.assessment.optimal_base_rate

    @property
    def where(self) -> str:
        return f"at crop {fmt.crop(self.crop)}, stride {self.aspp.stride}"

    @property
    def use(self) -> str:
        """The suggestion as the messages give it: per axis, and one int per branch for a non-square crop."""
        text = f"use {fmt.rates(self.suggested)}"
        single = self.assessment.single_int_rates
        return text + (f" (one int per branch: {fmt.rates(single)})" if single is not None else "")


def aspp_context(facts: ConfigFacts, settings: Settings) -> Optional[AsppContext]:
    aspp = facts.aspp
    if aspp is None or facts.crop is None or aspp.stride is None:
        return None
    assessment = assess_aspp(aspp.rates, facts.crop, aspp.stride, margin=settings.margin, tolerance=settings.tolerance)
    if assessment.suggested_rates is None:
        return None  # crop not larger than the margin: r* is unknown and the rate rules do not apply
    pairs = assessment.suggested_rates
    square = all(h == w for h, w in pairs)
    suggested: list[Union[int, tuple[int, int]]] = [h for h, _ in pairs] if square else list(pairs)
    fix = fix_for_target(
        f"Set the ASPP rates to {fmt.rates(suggested)}",
        aspp.target,
        aspp.to_written(suggested),
        # A non-square crop gets per-axis (h, w) dilations: PyTorch's Conv2d takes them, but a config
        # reader that expects one int per branch may not, so the fix is only applied with --unsafe-fixes.
        "safe" if square else "unsafe",
    )
    return AsppContext(aspp, assessment, suggested, fix)
