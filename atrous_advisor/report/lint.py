"""``lint`` results: built once into :class:`LintReport`, rendered as text, GitHub annotations or JSON."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, TextIO

from atrous_advisor.configs.values import canonical
from atrous_advisor.report.lint_models import (
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
    return out


def build_report(run, fixable: Callable[[object, object], bool]) -> LintReport:
    """The one result model; ``fixable(result, diagnostic)`` says whether ``--fix`` would write a finding."""
    configs, seen, why = [], set(), Counter()
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


def _unique(report: LintReport) -> Iterator[tuple[str, LintDiagnostic]]:
    """(message, diagnostic); a finding in a base shared by several configs is printed once.

    A diagnostic that points into a base says which linted config it is about: the same base line can be
    right for one crop and wrong for another.
    """
    seen = set()
    for config in report.configs:
        for d in config.diagnostics:
            message = d.message if d.path == config.path else f"{d.message} (in {config.path})"
            key = (d.code, d.path, d.line, d.col, message)
            if key not in seen:
                seen.add(key)
                yield message, d


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(s: LintSummary) -> str:
    noun = "config" if s.configs == 1 else "configs"
    if s.findings:
        line = f"Found {_plural(s.findings, 'problem')} in {s.with_findings} of {s.configs} {noun}"
        if s.fixable:
            line += f" ({s.fixable} fixable with --fix)"
    elif s.passed:
        line = f"All checks passed ({s.configs} {noun})"
    else:  # not "all checks passed": something was not checked, or not checked fully
        line = f"No problems in {s.configs} {noun}"
    if s.partly_checked:
        why = ", ".join(f"{gap}: {n}" for gap, n in sorted(s.partly_why.items()))
        line += f"; {s.partly_checked} partly checked ({why})"
    if s.skipped:
        line += f"; {_plural(s.skipped, 'file')} skipped as not configs"
    if s.not_recognised:
        line += f"; {_plural(s.not_recognised, 'file')} in no known layout"
    if s.not_linted:
        line += f"; {_plural(s.not_linted, 'file')} could not be linted"
    return line + "."


def render_text(report: LintReport, out: TextIO = None, err: TextIO = None) -> None:
    out, err = out or sys.stdout, err or sys.stderr
    for message, d in _unique(report):
        out.write(f"{d.path}:{d.line}:{d.col}: {d.code}{' [*]' if d.fixable else ''} {message}\n")
    for s in report.skipped:
        if s.named or s.special:
            err.write(f"{s.path}: {'note: ' if s.special else ''}skipped: {s.what}\n")
    for e in report.errors:
        err.write(f"error: {e.message}\n" if e.message.startswith(e.path) else f"{e.path}: error: {e.message}\n")
    out.write(summary_line(report.summary) + "\n")


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def render_github(report: LintReport, out: TextIO = None) -> None:
    out = out or sys.stdout
    for message, d in _unique(report):
        out.write(
            f"::error file={_gh_escape(d.path, True)},line={d.line},col={d.col},"
            f"title={d.code}::{_gh_escape(f'{d.code} {message}')}\n"
        )
    for s in report.skipped:
        if s.named or s.special:
            out.write(f"::notice file={_gh_escape(s.path, True)},title=not linted::{_gh_escape(s.what)}\n")
    for e in report.errors:
        out.write(f"::error file={_gh_escape(e.path, True)},title=lint error::{_gh_escape(e.message)}\n")
    out.write(f"::notice title=atrous-advisor lint::{_gh_escape(summary_line(report.summary))}\n")
