"""``lint --fix``: write the fixed configs without ever losing what the user owns.

- Each file is replaced atomically (``files.replace_contents``: temp file beside it, fsync, rename; a symlink
  stays a link and its target is replaced; permission bits kept). A kill leaves the old or the new content.
- Just before the rename the file is read again: if it is no longer what the fix was computed from (an
  editor saved it meanwhile), it is not written ("changed since read", exit 1).
- A file other configs inherit is not written: a ``_base_`` file, or a leaf that other configs extend. The
  check uses the resolved path, so a leaf that is a symlink into ``_base_/`` is caught. ``--fix-inherited``
  writes it anyway, for a user who means to change every config that inherits it.
- A write that fails (disk full, file size limit, permissions) leaves the file byte-identical (exit 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from atrous_advisor.configs.engine import FileFix, Linter, LintRun, framework_of, is_base_file, walk
from atrous_advisor.configs.settings import Settings
from atrous_advisor.configs.values import canonical
from atrous_advisor.errors import ConfigError
from atrous_advisor.files import FileChangedError, remove_stale_temp_files, replace_contents, sha256

Status = Literal["fixed", "changed", "inherited", "failed"]


@dataclass(frozen=True)
class Written:
    path: Path  # as linted (a symlink stays named as the user named it)
    status: Status
    message: str


def inherited_by(linter: Linter, paths: list[Path]) -> dict[Path, list[Path]]:
    """For each of ``paths``: the configs that inherit it, through its own name or the file a symlink names.

    Searched where a config's inheritors live: the tree above its ``_base_`` folder for a base, the folder of
    the file (and of the link) for any other. Each folder is walked once, each config parsed once.
    """
    names = {p: {canonical(p), Path(os.path.realpath(p))} for p in paths}
    roots: dict[Path, bool] = {}
    for path in paths:
        real = Path(os.path.realpath(path))
        if "_base_" in real.parts:
            top = Path(*real.parts[: real.parts.index("_base_")])
            roots[top] = True
        for folder in (real.parent, canonical(path).parent):
            roots.setdefault(folder, False)
    users: dict[Path, set[Path]] = {p: set() for p in paths}
    seen: set[Path] = set()
    for root, recursive in roots.items():
        for candidate in walk(root, include_bases=True, recursive=recursive):
            key = canonical(candidate)
            framework = framework_of(candidate)
            if key in seen or framework in (None, "smp"):  # every layout with bases (smp has none)
                continue
            seen.add(key)
            try:
                ancestors = linter.ancestors(candidate, framework)
            except ConfigError:  # an unreadable config inherits nothing we can see; lint reports it
                continue
            ancestors |= {Path(os.path.realpath(a)) for a in ancestors}
            for path, aliases in names.items():
                if ancestors & aliases and key not in aliases:
                    users[path].add(key)
    return {p: sorted(found) for p, found in users.items()}


def held_back(run: LintRun, settings: Settings) -> set[Path]:
    """The linted configs with a fix that ``--fix`` will not write because others inherit them (no ``[*]``)."""
    candidates = [r.path for r in run.results if r.writable and any(d.fix is not None for d in r.diagnostics)]
    if not candidates:
        return set()
    users = inherited_by(Linter(settings), candidates)
    return {p for p in candidates if users[p] or is_base_file(Path(os.path.realpath(p)))}


def fixable(run: LintRun, settings: Settings, fix_inherited: bool = False) -> Callable[[Any, Any], bool]:
    """Whether ``--fix`` (with ``--fix-inherited`` or not) would write a finding: the ``[*]`` mark, JSON's
    ``fixable``. The CLI and the Python API both ask this one function."""
    from atrous_advisor.configs.fixes import would_fix

    texts: dict = {}
    held = set() if fix_inherited else held_back(run, settings)
    return lambda result, d: result.path not in held and would_fix(result, d, texts)


def write_fixes(fixes: list[FileFix], settings: Settings, fix_inherited: bool = False) -> list[Written]:
    """Write every fix that changes its file; one ``Written`` per file, saying what happened."""
    changed = [f for f in fixes if f.fixed != f.original]
    users = {} if fix_inherited else inherited_by(Linter(settings), [f.path for f in changed])
    outcomes: list[Written] = []
    for fix in changed:
        real = Path(os.path.realpath(fix.path))
        if not fix_inherited and (users[fix.path] or is_base_file(real)):
            count = len(users[fix.path])
            why = f"it is inherited by {count} config{'s' if count != 1 else ''}" if count else \
                f"it is a base file ({real})"
            outcomes.append(Written(fix.path, "inherited",
                                    f"not fixed: {why}; use --fix-inherited to change it for all of them"))
            continue
        remove_stale_temp_files(real.parent)  # left by a run killed mid-write
        try:
            replace_contents(fix.path, fix.fixed.encode("utf-8"), expected_sha256=sha256(fix.original.encode("utf-8")))
        except FileChangedError:
            outcomes.append(Written(fix.path, "changed", "not fixed: the file changed since it was read; run again"))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            outcomes.append(Written(fix.path, "failed", f"not fixed: writing failed ({reason}); the file is unchanged"))
        else:
            outcomes.append(Written(fix.path, "fixed", f"fixed: {'; '.join(fix.applied)}"))
    return outcomes


def exit_code_after(outcomes: list[Written], lint_exit: int) -> int:
    """A failed write is an error (2); a file left unfixed because it changed is a finding still open (1)."""
    if any(o.status == "failed" for o in outcomes):
        return 2
    if any(o.status == "changed" for o in outcomes):
        return max(lint_exit, 1)
    return lint_exit
