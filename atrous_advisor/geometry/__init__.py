"""Pure arithmetic about atrous rates, padding and pooling cells. No torch, no I/O.

Every quantity is per axis: a pair ``(h, w)``. Scalars given by the user are broadcast to both axes.
"""

from atrous_advisor.geometry.assessment import (
    PADDING_PROBLEM,
    TOLERANCE,
    TOLERANCE_FLOOR,
    AsppAssessment,
    BranchAssessment,
    assess_aspp,
    assess_branch,
    effective_base_rate,
    tolerance_of,
)
from atrous_advisor.geometry.axes import Pair, pair, parse_crop, parse_int_list
from atrous_advisor.geometry.ppm import DEFAULT_MIN_CELL, DEFAULT_SCALES, CellInfo, PPMAnalysis, analyse_ppm, suggest_scales
from atrous_advisor.geometry.rates import (
    DEFAULT_BRANCHES,
    DEFAULT_MARGIN,
    DEFAULT_RATE_PRODUCT,
    BranchInfo,
    RateSetAnalysis,
    analyse_rates,
    branch_info,
    default_base_rate,
    feature_map,
    fov,
    optimal_base_rate,
    padding_fraction,
    round_half_up,
    single_int_rate,
    suggested_base_rate,
    suggested_rates,
)

__all__ = [
    "PADDING_PROBLEM",
    "TOLERANCE",
    "TOLERANCE_FLOOR",
    "AsppAssessment",
    "BranchAssessment",
    "assess_aspp",
    "assess_branch",
    "effective_base_rate",
    "tolerance_of",
    "DEFAULT_BRANCHES",
    "DEFAULT_MARGIN",
    "DEFAULT_MIN_CELL",
    "DEFAULT_SCALES",
    "DEFAULT_RATE_PRODUCT",
    "BranchInfo",
    "CellInfo",
    "PPMAnalysis",
    "Pair",
    "RateSetAnalysis",
    "analyse_ppm",
    "analyse_rates",
    "branch_info",
    "default_base_rate",
    "feature_map",
    "fov",
    "optimal_base_rate",
    "padding_fraction",
    "pair",
    "parse_crop",
    "parse_int_list",
    "round_half_up",
    "single_int_rate",
    "suggested_base_rate",
    "suggested_rates",
    "suggest_scales",
]
