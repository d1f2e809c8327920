"""``lint`` results rendered from :class:`LintReport` (built by ``configs/result.py``): text, GitHub annotations;
JSON is the model itself."""

from __future__ import annotations

import sys
from typing import Iterator, Optional, TextIO

from atrous_advisor.report.lint_models import LintDiagnostic, LintReport, LintSummary


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
        line += f"; {_plural(s.skipped, 'file')} skipped"
    if s.not_recognised:
        line += f"; {_plural(s.not_recognised, 'file')} in no known layout"
    if s.not_linted:
        line += f"; {_plural(s.not_linted, 'file')} could not be linted"
    return line + "."


def render_text(report: LintReport, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> None:
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


def render_github(report: LintReport, out: Optional[TextIO] = None) -> None:
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
