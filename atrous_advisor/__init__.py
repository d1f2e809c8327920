"""atrous-advisor: resolution-aware atrous rates and pooling scales for segmentation heads.

The analytic API below is pure Python (no torch):

>>> from atrous_advisor import optimal_base_rate, suggested_rates
>>> optimal_base_rate(512, 8)
(10.0, 10.0)
>>> suggested_rates(769, 8)
[(15, 15), (30, 30), (45, 45)]

``inspect_model`` and ``lint_paths`` (and their result types) are loaded on first use, so that
``import atrous_advisor`` stays light and torch-free; ``inspect_model`` imports torch when called.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from atrous_advisor.api import inspect_model, lint_paths
    from atrous_advisor.report.inspect_models import InspectReport
    from atrous_advisor.report.lint_models import LintReport

_LAZY = {
    "inspect_model": "atrous_advisor.api",
    "lint_paths": "atrous_advisor.api",
    "InspectReport": "atrous_advisor.report.inspect_models",
    "LintReport": "atrous_advisor.report.lint_models",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'atrous_advisor' has no attribute {name!r}")

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
    "InspectReport",
    "LintReport",
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
    "inspect_model",
    "lint_paths",
    "optimal_base_rate",
    "padding_fraction",
    "parse_crop",
    "single_int_rate",
    "suggest_scales",
    "suggested_base_rate",
    "suggested_rates",
]
