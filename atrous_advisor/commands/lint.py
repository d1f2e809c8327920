"""``atrous-advisor lint``: static checks of MMSegmentation / Detectron2 / smp configs. Never imports torch."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Optional

import typer

from atrous_advisor.configs.settings import check_codes
from atrous_advisor.errors import InputError
from atrous_advisor.numbers import STRIDE, optional_option
from atrous_advisor.configs.result import display_path

FORMATS = ("text", "json", "github")


def _codes(text: Optional[str]) -> Optional[tuple[str, ...]]:
    if text is None:
        return None
    return tuple(c.strip().upper() for c in text.split(",") if c.strip())


def exit_code(report) -> int:
    if report.errors:
        return 2
    return 1 if report.summary.findings else 0


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


def _write_fixes(run, settings, unsafe: bool, fix_inherited: bool):
    """``--fix``: write the fixed leaf configs (see configs/writing.py); one line per file on stderr."""
    from atrous_advisor.configs.engine import compute_fixes
    from atrous_advisor.configs.writing import write_fixes

    fixes = compute_fixes(run, settings, unsafe=unsafe)
    written = write_fixes(fixes, settings, fix_inherited=fix_inherited)
    for w in written:
        sys.stderr.write(f"{display_path(w.path)}: {w.message}\n")
    _report_skipped(fixes, run)
    return written


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
        stride: Optional[int] = typer.Option(None, "--stride", parser=optional_option("--stride", STRIDE), help="Output stride for heads whose stride the config does not determine (no backbone, unknown backbone)."),
        select: Optional[str] = typer.Option(None, "--select", help="Only these rules (comma-separated codes or prefixes)."),
        ignore: Optional[str] = typer.Option(None, "--ignore", help="Skip these rules (comma-separated codes or prefixes)."),
        root: list[Path] = typer.Option([], "--root", help="Also search this folder for configs inheriting from the given files."),
        fix_inherited: bool = typer.Option(False, "--fix-inherited", help="With --fix: also write files other configs inherit (a _base_ file, a config others extend); every config inheriting it changes too."),
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
            check_codes(getattr(found, key), f"{found.source}: [tool.atrous-advisor] {key}")
        selected, ignored = _codes(select), _codes(ignore)
        check_codes(selected or (), "--select")
        check_codes(ignored or (), "--ignore")
        if stride is not None:
            from atrous_advisor.configs.supplied import STRIDES

            if stride not in STRIDES:
                raise InputError(f"--stride {stride}: expected one of {', '.join(map(str, STRIDES))}")
        settings = found.override(
            crop=parse_pair(crop, "--crop") if crop is not None else None, select=selected, ignore=ignored,
            crop_from="--crop" if crop is not None else None, stride=stride,
            stride_from="--stride" if stride is not None else None,
        )
        if engine not in ("static", "mmengine"):
            raise InputError(f"--engine {engine!r}: expected static or mmengine")
        run = lint_paths(paths, settings, roots=root)
        if engine == "mmengine":
            from atrous_advisor.configs.crosscheck import crosscheck

            run.errors.extend(crosscheck(run.results))

        if diff:
            return _print_diff(run, settings, unsafe_fixes)
        written = _write_fixes(run, settings, unsafe_fixes, fix_inherited) if fix else []
        if any(w.status == "fixed" for w in written):
            run = lint_paths(paths, settings, roots=root)  # re-lint after writing: report what is left

        from atrous_advisor.configs.result import build_report
        from atrous_advisor.configs.writing import fixable
        from atrous_advisor.report.lint import render_github, render_text

        report = build_report(run, fixable(run, settings, fix_inherited))
        if fmt == "json":
            from atrous_advisor.commands._common import emit_json

            emit_json(report)
        elif fmt == "github":
            render_github(report)
        else:
            render_text(report)
        if written:
            from atrous_advisor.configs.writing import exit_code_after

            return exit_code_after(written, exit_code(report))
        return exit_code(report)
