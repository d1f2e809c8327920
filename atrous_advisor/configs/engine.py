"""Lint a set of paths: find the configs, read them with their bases, resolve facts, run the rules.

Which files are linted:
- a directory is walked for ``*.py`` (MMSegmentation), Detectron2 ``*.yaml``/``*.yml`` and smp
  ``config.json``; files under ``_base_/`` and Detectron2 ``Base-*.yaml`` are not linted on their own (they
  are not training configs), but every diagnostic about a value set in them points into them;
- a file given by name is linted, unless it is such a base;
- for every file given by name, the configs that inherit from it (transitively) under the roots are linted
  too. The roots are the directories given, plus the folder above the topmost ``_base_`` of a base file (so
  ``configs/_base_/datasets/x.py`` searches ``configs/``), plus the folder (not its subfolders) of any
  other file given, plus ``--root``. Hidden folders, ``__pycache__``, ``node_modules``, ``site-packages``
  and virtualenvs are never walked.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Union

from atrous_advisor.configs.facts import ConfigFacts, drop_out_of_range
from atrous_advisor.configs.frameworks import Framework, Skipped, recognise, registry
from atrous_advisor.configs.rules import RULES, Diagnostic
from atrous_advisor.configs.settings import Settings
from atrous_advisor.configs.supplied import file_values, supply
from atrous_advisor.configs.values import canonical, split_lines
from atrous_advisor.errors import ConfigError

_NOQA = re.compile(r"#\s*atrous-advisor:\s*noqa(?::\s*(?P<codes>[A-Za-z]+\d+(?:\s*,\s*[A-Za-z]+\d+)*))?", re.I)
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages"}
registry()  # import every layout's reader now, not halfway through a run


@dataclass
class ConfigResult:
    path: Path
    framework: str  # a registry name: "mmseg", "detectron2", ...
    facts: Optional[ConfigFacts]
    diagnostics: list[Diagnostic]
    writable: bool  # named by the user (or inside a folder they named): --fix may write it
    suppressed: int = 0


@dataclass(frozen=True)
class LintError:
    path: Path
    message: str


@dataclass(frozen=True)
class SkippedFile:
    """A file recognised as something other than a training config (an ordinary module, a LazyConfig)."""

    path: Path
    what: str
    named: bool  # given on the command line (said on stderr), rather than met while walking a folder
    special: bool = False  # a FIFO, socket or device: never opened, and always said on stderr
    recognised: bool = True  # False: in no layout atrous-advisor reads (a walked YAML/JSON/Python file)


@dataclass
class LintRun:
    results: list[ConfigResult] = field(default_factory=list)
    errors: list[LintError] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def diagnostic_count(self) -> int:
        return sum(len(r.diagnostics) for r in self.results)


def framework_of(path: Path) -> Optional[str]:
    """The registry name of the layout ``path`` is written in, by its content; None when it is no config."""
    found = recognise(path)
    return found.name if isinstance(found, type) else None


def is_base_file(path: Path) -> bool:
    """Inherited building blocks rather than training configs: ``_base_/…`` and Detectron2's ``Base-*.yaml``."""
    # Absolute: `lint x.py` run inside `configs/_base_/models/` is still a base.
    return "_base_" in canonical(path).parts[:-1] or (path.suffix.lower() in (".yaml", ".yml") and path.name.startswith("Base-"))


def _skip_dir(folder: str, name: str) -> bool:
    if name.startswith(".") or name in _SKIP_DIRS:
        return True
    return os.path.exists(os.path.join(folder, name, "pyvenv.cfg"))  # a virtualenv inside the tree


def special_file(path: Path) -> Optional[str]:
    """What ``path`` is when it is not a regular file (a FIFO would block a read forever, /dev/zero never end)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device" if (
        stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) else "not a regular file"


def walk(root: Path, include_bases: bool = False, recursive: bool = True, skipped: Optional[list] = None) -> Iterable[Path]:
    """Config-like files under ``root``; special files are never opened, only listed in ``skipped``."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if recursive and not _skip_dir(folder, d) and (include_bases or d != "_base_"))
        for name in sorted(files):
            if name.endswith((".py", ".yaml", ".yml", ".json")):
                path = Path(folder) / name
                kind = special_file(path)
                if kind is not None:
                    if skipped is not None and (path, kind) not in skipped:
                        skipped.append((path, kind))
                    continue
                if include_bases or not is_base_file(path):
                    yield path


class Linter:
    """Holds the loaders, so each base is read and evaluated once for all the configs that share it."""

    def __init__(self, settings: Settings, overrides: Optional[dict[Path, str]] = None):
        self.settings = settings
        self.overrides = {canonical(p): t for p, t in (overrides or {}).items()}
        self.layouts: dict[str, Framework] = {cls.name: cls(dict(self.overrides), settings) for cls in registry()}
        self._lines: dict[Path, list[str]] = {}

    def recognise(self, path: Path) -> Union[type[Framework], Skipped, None]:
        return recognise(path, self.overrides.get(canonical(path)), self.settings)

    # --- one config ------------------------------------------------------------------------------------
    def facts(self, path: Path, framework: str) -> ConfigFacts:
        facts = self.layouts[framework].facts(path)
        drop_out_of_range(facts)
        supply(facts, file_values(canonical(path), self.lines(path)), self.settings)
        return facts

    def lint_config(self, path: Path, framework: str, writable: bool) -> ConfigResult:
        facts = self.facts(path, framework)
        # A second ASPP head is checked as the same config seen with that head: the rules read one head each.
        views = [facts] + [
            dataclasses.replace(facts, aspp=head, extra_aspp=[], ppm=None, dilated_convs=[], declared_stride=None,
                                divisibility=None, unresolved=[], believed=[])
            for head in facts.extra_aspp
        ]
        found, seen = [], set()
        for view in views:
            for code, rule in RULES.items():
                if self.settings.enabled(code):
                    for d in rule.check(view, self.settings):
                        if (d.code, d.loc, d.message) not in seen:
                            seen.add((d.code, d.loc, d.message))
                            found.append(d)
        kept = [d for d in found if not self.suppressed(d)]
        kept.sort(key=lambda d: (str(d.loc.path), d.loc.line, d.loc.col, d.code))
        return ConfigResult(path, framework, facts, kept, writable, len(found) - len(kept))

    def lines(self, path: Path) -> list[str]:
        key = canonical(path)
        if key not in self._lines:
            text = self.overrides.get(key)
            if text is None:
                try:
                    text = key.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    text = ""
            self._lines[key] = split_lines(text)
        return self._lines[key]

    def suppressed(self, diagnostic: Diagnostic) -> bool:
        lines = self.lines(diagnostic.loc.path)
        if not 0 < diagnostic.loc.line <= len(lines):
            return False
        match = _NOQA.search(lines[diagnostic.loc.line - 1])
        if match is None:
            return False
        codes = match.group("codes")
        return codes is None or diagnostic.code in {c.strip().upper() for c in codes.split(",")}

    # --- inheritance -----------------------------------------------------------------------------------
    def bases_of(self, path: Path, framework: str) -> list[Path]:
        return self.layouts[framework].bases(path)

    def ancestors(self, path: Path, framework: str) -> set[Path]:
        """Every file ``path`` inherits from, transitively (a list, not recursion: chains may be deep)."""
        seen: set[Path] = set()
        todo = [path]
        while todo:
            for base in self.bases_of(todo.pop(), framework):
                if base not in seen:
                    seen.add(base)
                    if base.is_file():
                        todo.append(base)
        return seen

    def inherits(self, path: Path, framework: str, changed: set[Path], memo: dict[Path, bool]) -> bool:
        """Whether ``path`` inherits (transitively) from one of ``changed``.

        A list, not recursion, since chains may be thousands of files deep; ``memo`` remembers the answer for
        every file on the way, so a folder of such chains is read in linear time.
        """
        parent: dict[Path, Path] = {}
        todo = [path]
        found: Optional[Path] = None
        while todo and found is None:
            node = todo.pop()
            for base in self.bases_of(node, framework):
                if base in changed or memo.get(base):
                    found = node
                    break
                if base not in parent and base != path and base not in memo:
                    parent[base] = node
                    if base.is_file():
                        todo.append(base)
        if found is None:
            memo.update(dict.fromkeys(parent, False))
        else:
            while found != path:  # the files between `path` and the changed base inherit from it too
                memo[found] = True
                found = parent[found]
        memo[path] = found is not None
        return memo[path]

    def dependents(
        self, changed: list[Path], roots: list[tuple[Path, bool]], skipped: Optional[list] = None
    ) -> tuple[list[Path], list[LintError]]:
        """Configs under ``roots`` (folder, recursive) that inherit (transitively) from one of ``changed``."""
        changed_set = {canonical(p) for p in changed}
        names = {p.stem for p in changed_set}  # `x` of x.py: new-style configs import bases as modules (`from .x import *`)
        found: list[Path] = []
        errors: list[LintError] = []
        seen: set[Path] = set()
        memo: dict[Path, bool] = {}
        for root, recursive in roots:
            for candidate in walk(root, include_bases=True, recursive=recursive, skipped=skipped):
                key = canonical(candidate)
                if key in seen or key in changed_set:
                    continue
                seen.add(key)
                try:
                    text = candidate.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                # Cheap filter first: a file that inherits from x.py mentions "x.py" somewhere up its chain.
                layout = self.recognise(candidate)
                if not (isinstance(layout, type) and issubclass(layout, Framework)):
                    continue
                framework = layout.name
                if not any(n in text for n in names) and "_base_" not in text.lower() and "read_base" not in text:
                    continue
                try:
                    if self.inherits(key, framework, changed_set, memo):
                        found.append(candidate)
                except ConfigError as exc:
                    if any(n in text for n in names):
                        errors.append(LintError(candidate, str(exc)))
        return found, errors


def _not_recognised(path: Path) -> str:
    """Why a named file is not linted: unreadable, or no layout atrous-advisor reads."""
    from atrous_advisor.configs.frameworks._yaml import Unreadable, top_mapping

    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror}"
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            top_mapping(text)
        except Unreadable as exc:
            from atrous_advisor.configs.detectron2 import parse_yaml

            try:  # the located reader says where: `x.yaml:5:3: unreadable YAML: …`
                parse_yaml(path, text)
            except ConfigError as located:
                return str(located)
            return f"{path}: unreadable YAML: {exc}"
    return (
        f"{path}: not a config layout atrous-advisor reads (MMSegmentation, mmengine new-style, Detectron2, "
        "PaddleSeg, smp config.json, or a yacs layout mapped in [tool.atrous-advisor])"
    )


def lint_paths(
    paths: list[Path], settings: Settings, roots: Iterable[Path] = (), overrides: Optional[dict[Path, str]] = None
) -> LintRun:
    linter = Linter(settings, overrides)
    run = LintRun()
    targets: dict[Path, tuple[Path, str, bool]] = {}
    named: list[Path] = []
    # Where to look for configs inheriting a named file: (folder, recursive). A base is shared across the
    # tree above its `_base_` folder; an ordinary config is inherited by its siblings (r101 from r50).
    search_roots: list[tuple[Path, bool]] = [(Path(r), True) for r in roots]
    skipped: dict[Path, SkippedFile] = {}
    special: list[tuple[Path, str]] = []  # FIFOs, sockets and devices met while walking

    def add(path: Path, writable: bool, is_named: bool = False) -> bool:
        """Queue a config; a file that is no config is counted as skipped. False when it is not a config."""
        layout = linter.recognise(path)
        key = canonical(path)
        if isinstance(layout, Skipped):
            skipped.setdefault(key, SkippedFile(path, layout.what, is_named))
            return False
        if layout is None:
            if not is_named:  # named ones are an error (below); walked ones are counted, or an error if unreadable
                why = _not_recognised(path)
                if ": unreadable YAML: " in why or ": cannot read: " in why:
                    run.errors.append(LintError(path, why))
                else:
                    skipped.setdefault(key, SkippedFile(path, "in no layout atrous-advisor reads", False, recognised=False))
            return False
        if key not in targets:
            targets[key] = (path, layout.name, writable)
        return True

    for path in paths:
        if path.is_dir():
            search_roots.append((path, True))
            configs = [add(found, True) for found in walk(path, skipped=special)]
            if not any(configs):  # a wrong folder in CI must not pass as "all checks passed"
                run.errors.append(LintError(path, f"{path}: no configs found in this folder"))
        elif path.is_file():
            named.append(path)
            layout = linter.recognise(path)
            if is_base_file(path):
                try:  # a base is not linted alone, but a broken base is still an error naming it
                    if isinstance(layout, type) and issubclass(layout, Framework):
                        linter.bases_of(path, layout.name)
                except ConfigError as exc:
                    run.errors.append(LintError(path, str(exc)))
                parts = canonical(path).parts
                top = Path(*parts[: parts.index("_base_")]) if "_base_" in parts else path.parent
                search_roots.append((top, True))
            else:
                if not add(path, True, is_named=True) and layout is None:
                    # Named, and no layout claims it: never "0 configs, all checks passed".
                    run.errors.append(LintError(path, _not_recognised(path)))
                search_roots.append((path.parent, False))
        elif special_file(path):
            run.errors.append(LintError(path, f"{path}: {special_file(path)}, not a config file; not opened"))
        else:
            run.errors.append(LintError(path, f"{path}: no such file or directory"))
    if named:
        recursive = sorted({canonical(r) for r, rec in search_roots if rec}, key=lambda p: len(p.parts))
        pruned = [r for i, r in enumerate(recursive) if not any(r.is_relative_to(o) for o in recursive[:i])]
        flat = {canonical(r) for r, rec in search_roots if not rec} - set(pruned)
        flat = {r for r in flat if not any(r.is_relative_to(o) for o in pruned)}
        dependents, errors = linter.dependents(
            named, [(r, True) for r in pruned] + [(r, False) for r in sorted(flat)], skipped=special
        )
        run.errors.extend(errors)
        for path in dependents:
            if not is_base_file(path):
                add(path, False)
        # A base that no config inherits: nothing was checked for it, and that is said, not passed silently.
        inherited: set[Path] = set()
        for path in dependents:
            layout = linter.recognise(path)
            if isinstance(layout, type) and issubclass(layout, Framework):
                try:
                    inherited |= linter.ancestors(canonical(path), layout.name)
                except ConfigError:
                    continue
        for path in named:
            if is_base_file(path) and canonical(path) not in inherited and not any(e.path == path for e in run.errors):
                skipped.setdefault(canonical(path), SkippedFile(
                    path, "a base file that no config under the searched folders inherits, so nothing was checked "
                    "(--root DIR searches another folder)", True))
    for path, kind in special:
        skipped.setdefault(canonical(path), SkippedFile(path, f"{kind}, not a config file; not opened", False, True))
    run.skipped = list(skipped.values())
    for key, (path, framework, writable) in targets.items():
        try:
            run.results.append(linter.lint_config(path, framework, writable))
        except ConfigError as exc:
            if not any(e.message == str(exc) for e in run.errors):  # a cycle is one error, whichever file met it
                run.errors.append(LintError(path, str(exc)))
        except RecursionError:
            run.errors.append(LintError(path, f"{path}: nested too deeply to evaluate"))
        except Exception as exc:  # a bug in a reader or rule must not stop the other files being linted
            run.errors.append(LintError(path, f"{path}: internal error, please report: {type(exc).__name__}: {exc}"))
    return run


# --- --fix / --diff ---------------------------------------------------------------------------------------


@dataclass
class FileFix:
    path: Path
    original: str
    fixed: str
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why a fix was not written


def compute_fixes(run: LintRun, settings: Settings, unsafe: bool = False, max_rounds: int = 8) -> list[FileFix]:
    """Fix each writable leaf one edit at a time, re-parsing and re-linting the edited text after each edit.

    One edit per round keeps two fixes from writing two ``model = dict(...)`` overrides (the second would
    rebind the name and drop the first). An edit is kept only if the edited text still parses and no longer
    carries the finding it fixes; otherwise it is dropped with the reason, and ``--fix`` never writes it.
    """
    from atrous_advisor.configs.fixes import Unfixable, apply_edits, edits_for

    out: list[FileFix] = []
    for result in run.results:
        if not any(d.fix for d in result.diagnostics):
            continue
        if not result.writable:
            continue
        try:
            with open(result.path, encoding="utf-8", newline="") as handle:  # keep CRLF line ends as they are
                original = handle.read()
        except (OSError, UnicodeDecodeError):
            continue
        fix = FileFix(result.path, original, original)

        def relint(text: str) -> ConfigResult:
            return Linter(settings, {result.path: text}).lint_config(result.path, result.framework, True)

        try:
            current = relint(original)
        except ConfigError:  # changed on disk since it was linted: fix nothing in it
            fix.skipped.append("the file changed since it was linted and no longer reads; run again")
            out.append(fix)
            continue
        tried: set = set()
        for _ in range(max_rounds):
            progressed = False
            for d in current.diagnostics:
                if d.fix is None:
                    continue
                key = (d.fix.target.keys, repr(d.fix.value))
                if key in tried:
                    continue
                tried.add(key)
                if d.fix.applicability == "unsafe" and not unsafe:
                    fix.skipped.append(f"{d.code}: {d.fix.title} is an unsafe fix (use --unsafe-fixes)")
                    continue
                try:
                    edits = edits_for(result.framework, d.fix.target, d.fix.value, result.path, fix.fixed)
                except Unfixable as exc:
                    fix.skipped.append(f"{d.code}: {exc}")
                    continue
                new_text = apply_edits(fix.fixed, edits)
                if new_text == fix.fixed:
                    continue
                try:
                    after = relint(new_text)
                except ConfigError as exc:
                    detail = str(exc)
                    for name in (str(canonical(result.path)), str(result.path)):  # it is the edited text, not the file
                        if detail.startswith(name + ":"):
                            detail = "at line " + detail[len(name) + 1 :]
                    fix.skipped.append(f"{d.code}: the edit would leave the file unreadable ({detail}); fix it by hand")
                    continue
                if any(a.code == d.code and a.fix is not None and a.fix.target.keys == d.fix.target.keys
                       for a in after.diagnostics):
                    fix.skipped.append(f"{d.code}: the edit did not take (the finding remains); fix it by hand")
                    continue
                fix.fixed, current = new_text, after
                fix.applied.append(d.fix.title)
                progressed = True
                break
            if not progressed:
                break
        out.append(fix)
    return out
