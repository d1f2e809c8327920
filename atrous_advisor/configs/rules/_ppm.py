"""Shared by the PPM rules."""

from __future__ import annotations

from typing import Optional

from atrous_advisor.configs.facts import ConfigFacts
from atrous_advisor.configs.rules.base import FixIntent, fix_for_target
from atrous_advisor.configs.settings import Settings
from atrous_advisor.geometry import PPMAnalysis, analyse_ppm
from atrous_advisor.report import format as fmt


def ppm_analysis(facts: ConfigFacts, settings: Settings) -> Optional[tuple[PPMAnalysis, Optional[FixIntent]]]:
    if facts.ppm is None or facts.crop is None or facts.ppm.stride is None:
        return None
    analysis = analyse_ppm(facts.crop, facts.ppm.stride, facts.ppm.scales, settings.min_cell)
    suggested = tuple(analysis.suggested_scales)
    fix = fix_for_target(f"Set {facts.ppm.key} to {suggested}", facts.ppm.target, suggested, "safe")
    return analysis, fix


def where(analysis: PPMAnalysis) -> str:
    return f"at crop {fmt.crop(analysis.crop)}, stride {analysis.stride[0]}"
