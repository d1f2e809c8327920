"""``atrous-advisor lint``: static checks of MMSegmentation / Detectron2 / smp configs. Never imports torch."""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from atrous_advisor.configs.values import canonical
from atrous_advisor.errors import InputError

FORMATS = ("text", "json", "github")


def display_path(path: Path) -> str:
    """Relative to the working directory when the file is under it (what editors and CI annotations want)."""
    try:
        return str(canonical(path).relative_to(canonical(Path.cwd())))
    except ValueError:
        return str(path)


def relative_message(message: str) -> str:
    """Error messages name files by absolute path; show them as the diagnostics do."""
    return message.replace(str(canonical(Path.cwd())) + os.sep, "")


def _codes(text: Optional[str]) -> Optional[tuple[str, ...]]:
    if text is None:
        return None
    return tuple(c.strip().upper() for c in text.split(",") if c.strip())


def _check_codes(codes: tuple[str, ...], where: str) -> None:
    """A typo in --select must not select nothing and pass every config."""
    from atrous_advisor.configs.rules import RULES

    for code in codes:
        if not any(known.startswith(code) for known in RULES):
            raise InputError(f"{where} {code!r}: no rule code starts with it (rules: {', '.join(RULES)})")


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def build_report(run):
    from atrous_advisor.report.lint_models import LintDiagnostic, LintedConfig, LintFileError, LintReport

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


def _unique_diagnostics(run):
    """(message, diagnostic, result) triples; a finding in a base shared by several configs is printed once.

    A diagnostic that points into a base says which linted config it is about: the same base line can be
    right for one crop and wrong for another.
    """
    seen = set()
    for result in run.results:
        for d in result.diagnostics:
            message = d.message
            if canonical(d.loc.path) != canonical(result.path):
                message += f" (in {display_path(result.path)})"
            key = (d.code, str(canonical(d.loc.path)), d.loc.line, d.loc.col, message)
            if key not in seen:
                seen.add(key)
                yield message, d, result


def _fixable(result, d, texts: dict) -> bool:
    """Whether ``--fix`` would write this finding: a safe fix, in a config it rewrites, that it can edit."""
    if not result.writable or d.fix is None or d.fix.applicability != "safe":
        return False
    from atrous_advisor.configs.fixes import Unfixable, edits_for

    if result.path not in texts:
        try:
            with open(result.path, encoding="utf-8", newline="") as handle:
                texts[result.path] = handle.read()
        except (OSError, UnicodeDecodeError):
            texts[result.path] = None
    if texts[result.path] is None:
        return False
    try:
        edits_for(result.framework, d.fix.target, d.fix.value, result.path, texts[result.path])
    except Unfixable:  # e.g. the head is set through a name: --fix says "not fixed", so no [*]
        return False
    return True


def render_text(run, out=None, err=None) -> None:
    out, err = out or sys.stdout, err or sys.stderr
    fixable = 0
    texts: dict = {}
    for message, d, result in _unique_diagnostics(run):
        # Only what `--fix` would write: configs linted because they inherit a named file are not rewritten.
        mark = " [*]" if _fixable(result, d, texts) else ""
        fixable += bool(mark)
        out.write(f"{display_path(d.loc.path)}:{d.loc.line}:{d.loc.col + 1}: {d.code}{mark} {message}\n")
    for result in run.results:
        facts = result.facts
        if facts is not None and facts.crop is None and (facts.aspp or facts.ppm or facts.dilated_convs):
            why = "; ".join(facts.notes) or "the training crop is unknown"
            err.write(
                f"{display_path(result.path)}: note: {why}: the rate and scale checks were skipped; "
                "give the crop with --crop or `crop` in [tool.atrous-advisor]\n"
            )
    for e in run.errors:
        message, name = relative_message(e.message), display_path(e.path)
        err.write(f"error: {message}\n" if message.startswith(name) else f"{name}: error: {message}\n")
    shown = sum(1 for _ in _unique_diagnostics(run))
    configs = len(run.results)
    noun = "config" if configs == 1 else "configs"
    if shown:
        with_findings = sum(1 for r in run.results if r.diagnostics)
        summary = f"Found {shown} problem{'s' if shown != 1 else ''} in {with_findings} of {configs} {noun}"
        if fixable:
            summary += f" ({fixable} fixable with --fix)"
    elif run.errors:  # not "all checks passed": some files were not checked at all
        summary = f"No problems in {configs} {noun}"
    else:
        summary = f"All checks passed ({configs} {noun})"
    if run.errors:
        failed = len({canonical(e.path) for e in run.errors})  # one file may have several errors
        summary += f"; {failed} file{'s' if failed != 1 else ''} could not be linted"
    out.write(summary + ".\n")


def render_github(run, out=None) -> None:
    out = out or sys.stdout
    for message, d, _ in _unique_diagnostics(run):
        out.write(
            f"::error file={_gh_escape(display_path(d.loc.path), True)},line={d.loc.line},col={d.loc.col + 1},"
            f"title={d.code}::{_gh_escape(f'{d.code} {message}')}\n"
        )
    for e in run.errors:
        out.write(f"::error file={_gh_escape(display_path(e.path), True)},title=lint error::{_gh_escape(relative_message(e.message))}\n")


def exit_code(run) -> int:
    if run.errors:
        return 2
    return 1 if run.diagnostic_count else 0


def _report_skipped(fixes, run) -> None:
    for f in fixes:
        for reason in f.skipped:
            sys.stderr.write(f"{display_path(f.path)}: not fixed: {reason}\n")
    for result in run.results:
        if not result.writable and any(d.fix for d in result.diagnostics):
            sys.stderr.write(
                f"{display_path(result.path)}: not fixed: linted because it inherits a given file; name it to fix it\n"
            )


def _print_diff(run, settings, unsafe: bool) -> int:
    """``--diff``: the fixes as a unified diff; nothing is written. Exit 1 when something would change."""
    from atrous_advisor.configs.engine import compute_fixes

    fixes = compute_fixes(run, settings, unsafe=unsafe)
    changed = [f for f in fixes if f.fixed != f.original]
    for f in changed:
        name = display_path(f.path)
        sys.stdout.writelines(
            difflib.unified_diff(f.original.splitlines(keepends=True), f.fixed.splitlines(keepends=True),
                                 f"a/{name}", f"b/{name}")
        )
    _report_skipped(fixes, run)
    return 2 if run.errors else (1 if changed else 0)


def _write_fixes(run, settings, unsafe: bool) -> bool:
    """``--fix``: write the fixed leaf configs (line ends kept); True when a file changed."""
    from atrous_advisor.configs.engine import compute_fixes

    fixes = compute_fixes(run, settings, unsafe=unsafe)
    changed = [f for f in fixes if f.fixed != f.original]
    for f in changed:
        with open(f.path, "w", encoding="utf-8", newline="") as handle:
            handle.write(f.fixed)
        sys.stderr.write(f"{display_path(f.path)}: fixed: {'; '.join(f.applied)}\n")
    _report_skipped(fixes, run)
    return bool(changed)


def register(app: typer.Typer) -> None:
    @app.command("lint")
    def lint_command(
        paths: list[Path] = typer.Argument(..., help="Config files or folders (folders are walked; _base_/ is linted through its children)."),
        output_format: str = typer.Option("text", "--format", help="text, json or github (Actions annotations)."),
        as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
        fix: bool = typer.Option(False, "--fix", help="Write corrected rates/scales into the linted (leaf) configs."),
        unsafe_fixes: bool = typer.Option(False, "--unsafe-fixes", help="Also apply unsafe fixes (per-axis dilations)."),
        diff: bool = typer.Option(False, "--diff", help="Print the fixes as a unified diff; write nothing."),
        crop: Optional[str] = typer.Option(None, "--crop", help="Crop for configs that carry none (smp, Detectron2 without CROP): 512 or 512x1024."),
        select: Optional[str] = typer.Option(None, "--select", help="Only these rules (comma-separated codes or prefixes)."),
        ignore: Optional[str] = typer.Option(None, "--ignore", help="Skip these rules (comma-separated codes or prefixes)."),
        root: list[Path] = typer.Option([], "--root", help="Also search this folder for configs inheriting from the given files."),
        engine: str = typer.Option("static", "--engine", help="static (default), or mmengine: also load each MMSegmentation config with mmengine — which RUNS its code — and report where the two disagree."),
    ) -> int:
        """Check configs statically: rates and pool scales vs the real crop and stride. Exit 0 clean, 1 findings, 2 errors."""
        from atrous_advisor.configs.engine import lint_paths
        from atrous_advisor.configs.settings import find_settings
        from atrous_advisor.numbers import parse_pair

        fmt = "json" if as_json else output_format
        if fmt not in FORMATS:
            raise InputError(f"--format {output_format!r}: expected one of {', '.join(FORMATS)}")
        found = find_settings(Path.cwd())
        for key in ("select", "ignore"):
            _check_codes(getattr(found, key), f"{found.source}: [tool.atrous-advisor] {key}")
        selected, ignored = _codes(select), _codes(ignore)
        _check_codes(selected or (), "--select")
        _check_codes(ignored or (), "--ignore")
        settings = found.override(
            crop=parse_pair(crop, "--crop") if crop is not None else None, select=selected, ignore=ignored
        )
        if engine not in ("static", "mmengine"):
            raise InputError(f"--engine {engine!r}: expected static or mmengine")
        run = lint_paths(paths, settings, roots=root)
        if engine == "mmengine":
            from atrous_advisor.configs.crosscheck import crosscheck

            run.errors.extend(crosscheck(run.results))

        for skipped, kind in run.skipped:
            sys.stderr.write(f"{display_path(skipped)}: note: skipped: {kind}, not a config file\n")
        if diff:
            return _print_diff(run, settings, unsafe_fixes)
        if fix and _write_fixes(run, settings, unsafe_fixes):
            run = lint_paths(paths, settings, roots=root)  # re-lint after writing: report what is left

        if fmt == "json":
            from atrous_advisor.commands._common import emit_json

            emit_json(build_report(run))
        elif fmt == "github":
            render_github(run)
        else:
            render_text(run)
        return exit_code(run)
