"""A lint run as the ``lint --format json`` result: paths shown relative to the working directory."""

from __future__ import annotations

import os
from pathlib import Path

from atrous_advisor.configs.values import canonical
from atrous_advisor.report.lint_models import LintDiagnostic, LintedConfig, LintFileError, LintReport


def display_path(path: Path) -> str:
    """Relative to the working directory when the file is under it (what editors and CI annotations want)."""
    try:
        return str(canonical(path).relative_to(canonical(Path.cwd())))
    except ValueError:
        return str(path)


def relative_message(message: str) -> str:
    """Error messages name files by absolute path; show them as the diagnostics do."""
    return message.replace(str(canonical(Path.cwd())) + os.sep, "")


def build_report(run) -> LintReport:
    """The ``LintReport`` of a ``LintRun`` (what ``lint --json`` prints)."""
    configs = []
    for result in run.results:
        facts = result.facts
        configs.append(
            LintedConfig(
                path=display_path(result.path),
                crop=facts.crop if facts else None,
                output_stride=facts.output_stride if facts else None,
                aspp_rates=list(facts.aspp.rates) if facts and facts.aspp else None,
                pool_scales=list(facts.ppm.scales) if facts and facts.ppm else None,
                diagnostics=[
                    LintDiagnostic(code=d.code, path=display_path(d.loc.path), line=d.loc.line, col=d.loc.col + 1,
                                   message=d.message)
                    for d in result.diagnostics
                ],
            )
        )
    errors = [LintFileError(path=display_path(e.path), message=relative_message(e.message)) for e in run.errors]
    return LintReport(configs=configs, errors=errors)
