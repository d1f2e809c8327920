"""The ``lint --format json`` contract. Field names and shapes are part of the CLI's interface."""

from __future__ import annotations

from typing import Optional, Union

from atrous_advisor.report.base import ResultModel


class LintDiagnostic(ResultModel):
    code: str
    path: str  # the file that set the value (a _base_ file when that is where it was set)
    line: int
    col: int  # 1-based
    message: str


class LintedConfig(ResultModel):
    path: str
    crop: Optional[tuple[int, int]]  # [h, w] of the training crop, null when unknown
    output_stride: Optional[int]
    aspp_rates: Optional[list[Union[int, tuple[int, int]]]]  # the dilated branches' rates, without the 1×1
    pool_scales: Optional[list[int]]
    diagnostics: list[LintDiagnostic]


class LintFileError(ResultModel):
    path: str
    message: str


class LintReport(ResultModel):
    configs: list[LintedConfig]
    errors: list[LintFileError]
