"""The result of ``lint``: one model that the text, GitHub and JSON renderers all read (report/lint.py).

``--format json`` prints it as it is; field names and shapes are part of the CLI's interface.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from atrous_advisor.report.base import ResultModel


class LintDiagnostic(ResultModel):
    code: str
    path: str  # the file that set the value (a _base_ file when that is where it was set)
    line: int
    col: int  # 1-based
    message: str
    fixable: bool  # `--fix` would write it: a safe fix, in a config it rewrites, that it can edit


class LintAsppHead(ResultModel):
    head: str
    rates: list[Union[int, tuple[int, int]]]  # the dilated branches' rates, without the 1×1
    output_stride: Optional[int]


class LintedConfig(ResultModel):
    path: str
    framework: str  # "mmseg", "detectron2", "paddleseg", "smp", ...
    crop: Optional[tuple[int, int]]  # [h, w] of the training crop, null when unknown
    output_stride: Optional[int]
    aspp_rates: Optional[list[Union[int, tuple[int, int]]]]  # the dilated branches' rates, without the 1×1
    pool_scales: Optional[list[int]]
    aspp_heads: list[LintAsppHead]  # every ASPP head (Panoptic-DeepLab has two); aspp_rates is the first's
    checked: Literal["full", "partial"]
    gaps: list[str]  # why it is only partly checked: "crop unknown", "stride unknown", "unresolved: X"
    supplied: dict[str, str]  # "crop"/"stride" -> where the value was given (comment, flag, pyproject)
    diagnostics: list[LintDiagnostic]


class LintFileError(ResultModel):
    path: str
    message: str


class LintSkipped(ResultModel):
    path: str
    what: str  # "an ordinary Python module", "a Detectron2 LazyConfig (Python); …"
    named: bool  # given on the command line rather than met in a folder
    special: bool  # a FIFO, socket or device met in a folder: never opened
    recognised: bool  # False: a file in a walked folder that is in no layout atrous-advisor reads


class LintSummary(ResultModel):
    configs: int
    fully_checked: int
    partly_checked: int
    partly_why: dict[str, int]  # gap -> configs
    with_findings: int
    findings: int  # unique findings (one in a base shared by several configs counts once)
    fixable: int
    skipped: int  # recognised as no config (modules, LazyConfigs, metafiles) or special files
    not_recognised: int  # walked files in no layout atrous-advisor reads
    not_linted: int  # files that could not be linted (errors), counted once each
    passed: bool  # "All checks passed": no findings, every config fully checked, no named file skipped, no errors


class LintReport(ResultModel):
    configs: list[LintedConfig]
    errors: list[LintFileError]
    skipped: list[LintSkipped]
    summary: LintSummary
