"""From a lint run to its result model (:class:`LintReport`): the library side of ``lint``'s one result.

Renderers (``report/lint.py``) read only the model; paths in it are relative to the working directory.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Callable

from atrous_advisor.configs.values import canonical
from atrous_advisor.report.lint_models import (
    LintAsppHead,
    LintDiagnostic,
    LintedConfig,
    LintFileError,
    LintReport,
    LintSkipped,
    LintSummary,
)


def display_path(path: Path) -> str:
    """Relative to the working directory when the file is under it (what editors and CI annotations want)."""
    try:
        return str(canonical(path).relative_to(canonical(Path.cwd())))
    except ValueError:
        return str(path)


def relative_message(message: str) -> str:
    """Error messages name files by absolute path; show them as the diagnostics do."""
    return message.replace(str(canonical(Path.cwd())) + os.sep, "")


def gaps(result) -> list[str]:
    """Why a config is only partly checked; empty when every check it has a head for could run."""
    facts = result.facts
    out = [f"unresolved {u.what}" for u in facts.unresolved]
    heads = [h for h in (facts.aspp, facts.ppm, *facts.extra_aspp) if h is not None]
    if heads and facts.crop is None:
        out.append("crop unknown")
    if any(h.stride is None for h in heads):
        out.append("stride unknown")
    if facts.unknown_heads:
        out.append("head type unknown")
    return out


def build_report(run, fixable: Callable[[object, object], bool]) -> LintReport:
    """The one result model; ``fixable(result, diagnostic)`` says whether ``--fix`` would write a finding."""
    configs: list[LintedConfig] = []
    seen: set = set()
    why: Counter[str] = Counter()
    findings = fixable_count = 0
    for result in run.results:
        facts = result.facts
        diagnostics = []
        for d in result.diagnostics:
            can_fix = fixable(result, d)
            diagnostics.append(LintDiagnostic(code=d.code, path=display_path(d.loc.path), line=d.loc.line,
                                              col=d.loc.col + 1, message=d.message, fixable=can_fix))
            key = (d.code, str(canonical(d.loc.path)), d.loc.line, d.loc.col, d.message,
                   None if canonical(d.loc.path) == canonical(result.path) else str(result.path))
            if key not in seen:
                seen.add(key)
                findings += 1
                fixable_count += can_fix
        missing = gaps(result)
        for gap in missing:
            why[gap.split(" ")[0] + " values" if gap.startswith("unresolved") else gap] += 1
        configs.append(LintedConfig(
            path=display_path(result.path),
            framework=result.framework,
            crop=facts.crop,
            output_stride=facts.output_stride,
            aspp_rates=list(facts.aspp.rates) if facts.aspp else None,
            pool_scales=list(facts.ppm.scales) if facts.ppm else None,
            aspp_heads=[LintAsppHead(head=h.head, rates=list(h.rates), output_stride=h.stride)
                        for h in (facts.aspp, *facts.extra_aspp) if h is not None],
            checked="partial" if missing else "full",
            gaps=missing,
            supplied=dict(facts.supplied),
            diagnostics=diagnostics,
        ))
    errors = [LintFileError(path=display_path(e.path), message=relative_message(e.message)) for e in run.errors]
    skipped = [LintSkipped(path=display_path(s.path), what=s.what, named=s.named, special=s.special,
                           recognised=s.recognised) for s in run.skipped]
    partly = sum(c.checked == "partial" for c in configs)
    not_linted = len({canonical(e.path) for e in run.errors})  # one file may have several errors
    summary = LintSummary(
        configs=len(configs), fully_checked=len(configs) - partly, partly_checked=partly, partly_why=dict(why),
        with_findings=sum(bool(c.diagnostics) for c in configs), findings=findings, fixable=fixable_count,
        skipped=sum(s.recognised for s in skipped), not_recognised=sum(not s.recognised for s in skipped),
        not_linted=not_linted,
        passed=not findings and not partly and not not_linted and not any(s.named for s in skipped),
    )
    return LintReport(configs=configs, errors=errors, skipped=skipped, summary=summary)
