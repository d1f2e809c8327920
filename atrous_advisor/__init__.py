"""atrous-advisor: resolution-aware atrous rates and pooling scales for segmentation heads.

The analytic API below is pure Python (no torch):

>>> from atrous_advisor import optimal_base_rate, suggested_rates
>>> optimal_base_rate(512, 8)
(10.0, 10.0)
>>> suggested_rates(769, 8)
[(15, 15), (30, 30), (45, 45)]
"""

from atrous_advisor.advice import advise_ppm, advise_rates
from atrous_advisor.errors import AdvisorError, ConfigError, DataError, InputError, ModelLoadError
from atrous_advisor.geometry import (
    DEFAULT_BRANCHES,
    DEFAULT_MARGIN,
    DEFAULT_MIN_CELL,
    DEFAULT_SCALES,
    BranchInfo,
    CellInfo,
    PPMAnalysis,
    RateSetAnalysis,
    analyse_ppm,
    analyse_rates,
    branch_info,
    default_base_rate,
    feature_map,
    fov,
    optimal_base_rate,
    padding_fraction,
    parse_crop,
    single_int_rate,
    suggest_scales,
    suggested_base_rate,
    suggested_rates,
)
from atrous_advisor.report.models import PPMReport, RateReport

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BRANCHES",
    "DEFAULT_MARGIN",
    "DEFAULT_MIN_CELL",
    "DEFAULT_SCALES",
    "AdvisorError",
    "BranchInfo",
    "CellInfo",
    "ConfigError",
    "DataError",
    "InputError",
    "ModelLoadError",
    "PPMAnalysis",
    "PPMReport",
    "RateReport",
    "RateSetAnalysis",
    "advise_ppm",
    "advise_rates",
    "analyse_ppm",
    "analyse_rates",
    "branch_info",
    "default_base_rate",
    "feature_map",
    "fov",
    "optimal_base_rate",
    "padding_fraction",
    "parse_crop",
    "single_int_rate",
    "suggest_scales",
    "suggested_base_rate",
    "suggested_rates",
]
